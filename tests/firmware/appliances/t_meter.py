# The energy meter's logic: start, hour windows, faults that must not lose energy.
import _simclock
from appliances import Wire
from pzem import PZEM
from sim.models import attach
from energy.meter import Meter, START_FAILED, RESET_FAILED, READ_FAILED

HOUR = 3600 * 1000
_simclock.scale(1e-6)  # device time moves by advance() only: exact windows on a busy host


def setup(**values):
    m = attach("uart2", "PZEM", args=values)
    return m, Meter(PZEM(Wire(m)))


def run(meter, seconds):
    # A tick each device second, as the appliance's every(1000): on the second whatever
    # the tick itself cost the chip (its UART exchange, its computation).
    for _ in range(seconds):
        meter.tick()
        _simclock.advance(1000 - _simclock.now_us() // 1000 % 1000)


def test_start_sequence():
    m, meter = setup(voltage=230.0, energy=500)
    run(meter, 2)  # address, read
    assert not meter.fresh and m.resets == 0
    run(meter, 1)  # the first reading, then the reset
    assert meter.fresh and meter.malfunction == 0
    assert m.resets == 1 and m.energy() == 0
    assert meter.reading("voltage") == 230.0


def test_hour_window():
    m, meter = setup(power=1200.0)
    run(meter, 3)  # started and reset at t=1 s, window ends at 3601 s
    run(meter, 3600)
    assert meter.windows == 1, meter.windows
    assert abs(meter.window_wh - 1200) <= 2, meter.window_wh
    run(meter, 3600)
    assert meter.windows == 2
    assert abs(meter.window_wh - 1200) <= 2, meter.window_wh
    assert m.resets == 3


def test_window_moved_onto_the_clock_hour():
    m, meter = setup(power=3600.0)
    run(meter, 3)
    assert abs(meter.window_left_ms() - HOUR) <= 3000
    meter.end_window_in(600 * 1000)  # the owner's clock hour is 10 min away
    run(meter, 602)  # closed by the first tick past its end
    assert meter.windows == 1 and abs(meter.window_wh - 600) <= 2, meter.window_wh
    run(meter, 3600)  # then whole hours from there
    assert meter.windows == 2 and abs(meter.window_wh - 3600) <= 2, meter.window_wh


def test_read_fault_mid_hour_loses_nothing():
    m, meter = setup(power=600.0)
    run(meter, 1800)
    m.set_fault("silent")
    run(meter, 600)
    assert meter.malfunction == READ_FAILED
    assert not meter.fresh and meter.reading("power") is None
    m.set_fault(None)
    run(meter, 1203)
    assert meter.malfunction == 0
    assert meter.windows == 1 and abs(meter.window_wh - 600) <= 2, meter.window_wh


def test_read_fault_at_window_end_postpones_close():
    m, meter = setup(power=3600.0)
    run(meter, 3590)
    m.set_fault("badcrc")
    run(meter, 70)
    assert meter.windows == 0
    m.set_fault(None)
    run(meter, 2)
    assert meter.windows == 1
    # the window ran a minute long; the next one ends on time: no Wh lost or counted twice
    first = meter.window_wh
    assert abs(first - 3660) <= 3, first
    run(meter, 3600)
    assert meter.windows == 2 and abs(first + meter.window_wh - 7200) <= 3, meter.window_wh


def test_reset_failure_retried_and_subtracted():
    m, meter = setup(power=1000.0)
    run(meter, 3)
    m.set_fault("noreset")
    run(meter, 3602)
    assert meter.windows == 1 and meter.malfunction == RESET_FAILED
    # Reads still succeed, but no reading is published while the meter is in Malfunction.
    assert meter.fresh and meter.reading("power") is None
    run(meter, 1800)
    assert m.energy() > 1400  # the meter still counts from the last good reset
    m.set_fault(None)
    run(meter, 1798)
    assert meter.malfunction == 0 and meter.reading("power") == 1000.0
    assert meter.windows == 2 and abs(meter.window_wh - 1000) <= 3, meter.window_wh
    assert m.energy() < 1000


def test_start_failure_retried_after_ten_minutes():
    m, meter = setup()
    m.set_fault("silent")
    run(meter, 2)
    assert meter.malfunction == START_FAILED and "address" in meter.error
    m.set_fault(None)
    run(meter, 590)
    assert meter.malfunction == START_FAILED
    run(meter, 20)
    assert meter.malfunction == 0 and meter.fresh


def test_reboot_resumes_window_from_kept_base():
    m, meter = setup(power=1000.0)
    run(meter, 1803)  # half an hour after the reset
    kept = meter.base
    assert kept == 0
    # reboot: a new Meter with the kept base neither resets nor loses the half hour
    meter = Meter(PZEM(Wire(m)), base=kept)
    run(meter, 3603)
    assert m.resets == 2  # the start's and the window close's
    assert meter.windows == 1 and abs(meter.window_wh - 1500) <= 3, meter.window_wh


def test_kept_base_above_counter_means_meter_was_zeroed():
    m, meter = setup(power=1000.0, energy=10)
    meter = Meter(PZEM(Wire(m)), base=5000)
    run(meter, 3)
    assert meter.base == 0 and m.resets == 0


# Energy per local day (energy.days): the day boundary at local midnight, exact to the Wh
# even when an hour window spans midnight, kept across a reboot.
from energy.days import Days
from epx.nvram import NVRAM
from epx.tz import Zone

DAY = 86400
MIDNIGHT = 20089 * DAY  # 2025-01-01 00:00 UTC: (date(2025, 1, 1) - date(1970, 1, 1)).days in CPython


def test_days_split_a_window_at_local_midnight():
    nv = NVRAM("t_days1")
    d = Days(nv, Zone("<UTC>-1"))  # UTC+1: local midnight is 23:00 UTC
    assert d.today_wh(0) is None and d.yesterday is None  # no date yet
    d.closed(100)  # a window before the date was known counts for today
    d.tick(MIDNIGHT - 2 * 3600, 0)  # 22:00 UTC = 23:00 local
    assert d.today_wh(0) == 100
    d.closed(300)
    d.tick(MIDNIGHT - 3600 - 1, 40)  # one second before local midnight, 40 Wh in the window
    assert d.today_wh(40) == 440
    d.tick(MIDNIGHT - 3600, 50)  # local midnight: 50 Wh of the open window were yesterday's
    assert d.yesterday == 450 and d.today_wh(50) == 0
    d.closed(120)  # that window closes with 120 Wh: 70 of them today
    assert d.today_wh(0) == 70
    again = Days(NVRAM("t_days1"), Zone("<UTC>-1"))  # a reboot: the same from NVS
    assert (again.today_wh(0), again.yesterday, again.day) == (70, 450, d.day)


def test_days_after_a_day_off_and_without_a_date():
    d = Days(NVRAM("t_days2"), Zone("UTC0"))
    d.tick(MIDNIGHT + 100, 0)
    d.closed(10)
    d.tick(None, 5)  # the clock lost (a power cycle, no SNTP yet): nothing moves
    assert d.today_wh(5) == 15
    d.tick(MIDNIGHT + 2 * DAY + 100, 0)  # two days later: yesterday was not seen
    assert d.yesterday is None and d.today_wh(0) == 0
