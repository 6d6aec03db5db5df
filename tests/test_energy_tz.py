"""The energy appliance's local time (epx.tz, a POSIX TZ string as ESPHome's `timezone`)
and its days (energy.days) inside the host firmware, against CPython's zoneinfo: the UTC
offset at every second around each daylight-saving change, and Today and Yesterday across
both changes (a day of 23 and of 25 hours). Each zone's POSIX string is the footer of its
compiled tzfile (RFC 8536), the system's tz database."""

import calendar
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from appliance_units import appliances_firmware  # noqa: F401 (fixture)
from fwcode import last_json, run_code

ZONES = ("Europe/Berlin", "America/New_York", "Australia/Sydney", "America/St_Johns",
         "Asia/Kolkata", "America/Sao_Paulo")
YEARS = (2025, 2026, 2027)
PRELUDE = "import sys;sys.path[:]=['.frozen'];import json;from epx.tz import Zone\n"


def posix(zone):
    """The POSIX TZ string at the end of the zone's tzfile (RFC 8536, version 2+ footer)."""
    for folder in ("/usr/share/zoneinfo",):
        path = Path(folder) / zone
        if path.exists():
            return path.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[1].decode()
    pytest.skip("no tz database")


def changes(zone, year):
    """UTC seconds of each change of the zone's offset in year (zoneinfo), by the hour."""
    t = int(datetime(year, 1, 1, tzinfo=timezone.utc).timestamp())
    end = int(datetime(year + 1, 1, 1, tzinfo=timezone.utc).timestamp())
    out = []
    last = offset(zone, t)
    while t < end:
        t += 900
        now = offset(zone, t)
        if now != last:
            out.append(t)
            last = now
    return out


def offset(zone, t):
    return int(datetime.fromtimestamp(t, ZoneInfo(zone)).utcoffset().total_seconds())


def device_epoch(exe, tmp_path):
    """Unix seconds of the firmware's epoch (the ESP32 port's: 2000-01-01)."""
    y, mo, d, h, mi, s = last_json(run_code(exe, "import time,json;print(json.dumps(time.gmtime(0)[:6]))", tmp_path))
    return calendar.timegm((y, mo, d, h, mi, s))


def on_device(exe, tmp_path, code, instants):
    """The firmware's answers for unix instants, given to it in its own epoch."""
    e = device_epoch(exe, tmp_path)
    return last_json(run_code(exe, PRELUDE + code % ([t - e for t in instants],), tmp_path))


@pytest.mark.parametrize("zone", ZONES)
def test_offsets_at_each_change(appliances_firmware, zone, tmp_path):
    text = posix(zone)
    instants = [t + d for y in YEARS for c in changes(zone, y) for t in (c,)
                for d in (-3601, -1, 0, 1, 3600)]
    instants += [int(datetime(y, m, 15, tzinfo=timezone.utc).timestamp()) for y in YEARS
                 for m in range(1, 13)]
    got = on_device(appliances_firmware, tmp_path,
                    "z=Zone(%r);print(json.dumps([z.utcoffset(t) for t in %%r]))" % text, instants)
    expected = [offset(zone, t) for t in instants]
    assert got == expected, (text, [(t, g, e) for t, g, e in zip(instants, got, expected) if g != e])
    if zone not in ("Asia/Kolkata", "America/Sao_Paulo"):  # no daylight saving now
        assert len(set(expected)) == 2  # the check sees both offsets


def test_a_wrong_rule_is_caught(appliances_firmware, tmp_path):
    # Berlin's rule with the change back on the 4th Sunday, not the last: a week early in
    # 2027 (October has five Sundays), so the offsets differ on those days.
    text = "CET-1CEST,M3.5.0,M10.4.0/3"
    instants = [c + 3600 * 24 * -3 for c in changes("Europe/Berlin", 2027)]
    got = on_device(appliances_firmware, tmp_path,
                    "z=Zone(%r);print(json.dumps([z.utcoffset(t) for t in %%r]))" % text, instants)
    assert got != [offset("Europe/Berlin", t) for t in instants]


@pytest.mark.parametrize("text", ["", "CE", "CET", "CET-1CEST,M3.5.0", "CET-1CEST,M13.5.0,M10.5.0/3",
                                  "CET-1CEST,M3.5.0,M10.5.0/3x", "CET-25"])
def test_bad_strings_are_refused(appliances_firmware, text, tmp_path):
    code = PRELUDE + ("try:\n Zone(%r);print(json.dumps(None))\n"
                      "except ValueError as e:\n print(json.dumps(str(e)))") % text
    assert last_json(run_code(appliances_firmware, code, tmp_path)) is not None


DAYS = """from energy.days import Days
class NV(dict):
    def get_int(self, k, d=None): return self.get(k, d)
    def set_int(self, k, v): self[k] = v
z = Zone(%r)
d = Days(NV(), z)
out = []
for t in %%r:
    d.tick(t, 0)
    out.append((d.today_wh(0), d.yesterday))
    d.closed(1)  # 1 Wh an hour
print(json.dumps(out))
"""


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Sydney"])
def test_today_and_yesterday_across_both_changes(appliances_firmware, zone, tmp_path):
    """1 Wh each hour of UTC: Yesterday is the hours of the local day before, 23 after
    the spring change, 25 after the autumn one, 24 otherwise (zoneinfo counts them)."""
    z = ZoneInfo(zone)
    for change in changes(zone, 2026):
        day = datetime.fromtimestamp(change, z).date()
        start = int(datetime.combine(day - timedelta(days=2), datetime.min.time(), z).timestamp())
        end = int(datetime.combine(day + timedelta(days=3), datetime.min.time(), z).timestamp())
        hours = list(range(start, end, 3600))
        rows = on_device(appliances_firmware, tmp_path, DAYS % posix(zone), hours)
        for t, (today, yesterday) in zip(hours, rows):
            local = datetime.fromtimestamp(t, z)
            midnight = datetime.combine(local.date(), datetime.min.time(), z)
            before = datetime.combine(local.date() - timedelta(days=1), datetime.min.time(), z)
            assert today == (t - int(midnight.timestamp())) // 3600, (zone, local)
            if yesterday is not None:
                assert yesterday == (int(midnight.timestamp()) - int(before.timestamp())) // 3600, (zone, local)
        lengths = {y for _, y in rows if y is not None}
        assert lengths == {24, 23} or lengths == {24, 25}, lengths
