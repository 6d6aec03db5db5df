"""epx.sntp in the simulated ESP32 (whose clock starts at 2000-01-01 at power-on, as the
chip's) against a real NTP server (tools/epx/sim/ntp.py): TLS to the broker only once the time is
known, failures logged and retried, UTC timestamps in logs and reports, the time kept
through a reset but not a power cycle."""

import datetime
import re

import pytest

from epx import build
from fwcode import last_json, run_code
from epx.sim.ntp import NtpServer, ntp_timestamp
from test_mqtt_epx import NAME, START_MS, boot

UTC = datetime.timezone.utc
STAMP = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"
LOG = f"stat/{NAME}/Log"
RETRY_MS = 15000 * 3 // 2  # the first retry, its jitter included


def seconds(stamp):
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def test_ntp_timestamps_are_rfc_5905s():
    # RFC 5905 section 6: era 0 starts 1900-01-01 00:00 UTC and era 1 at 2036-02-07
    # 06:28:16 UTC; RFC 868 gives 2,208,988,800 s for 1970-01-01. The firmware's constant
    # from 1900 to its 2000 epoch must agree.
    assert ntp_timestamp(datetime.datetime(1900, 1, 1, tzinfo=UTC)) == (0, 0)
    assert ntp_timestamp(datetime.datetime(1970, 1, 1, tzinfo=UTC)) == (2208988800, 0)
    assert ntp_timestamp(datetime.datetime(2036, 2, 7, 6, 28, 16, 500000, tzinfo=UTC)) == (0, 2**31)
    src = (build.ROOT / "modules/epx/sntp.py").read_text()
    delta = int(re.search(r"_NTP_TO_2000 = const\((\d+)\)", src).group(1))
    assert ntp_timestamp(datetime.datetime(2000, 1, 1, tzinfo=UTC)) == (delta, 0)


def test_tls_connects_only_after_sntp(device, broker_tls, mqtt_watch, test_ca, ntp):
    w = mqtt_watch(broker_tls)
    ntp.mode = "silent"
    dev = boot(device, broker_tls, files={"ca.der": test_ca.ca_der}, mqttbroker="localhost",
               mqttca="ca.der", ntpserver=ntp.server)
    dev.wait_console(r"mqtt: TLS waits for the time \(sntp\)")
    ntp.wait_requests(1)
    dev.advance(3000)  # no answer within 3 s: the round fails
    dev.wait_console(r"^\d+\.\d{3} W sntp: no time \(127\.0\.0\.1: TimeoutError\); retry in 15 s")
    assert "mqtt: up" not in dev.output() and not w.messages  # no TLS attempt meanwhile

    ntp.mode = "answer"
    dev.advance(RETRY_MS)
    m = dev.wait_console(rf"^{STAMP} \d+\.\d{{3}} I sntp: {STAMP} from 127\.0\.0\.1")
    assert abs((seconds(m.group(2)) - ntp.when).total_seconds()) <= 1
    assert w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", device=dev)
    dev.wait_console(rf"^{STAMP} \d+\.\d{{3}} I mqtt: up")


def test_sntp_failure_is_logged_and_retried_with_backoff(device, broker, mqtt_watch, ntp):
    ntp.mode = "unsynchronised"  # a kiss-o'-death: stratum 0, leap 3
    w = mqtt_watch(broker)
    with NtpServer(ntp.when, mode="silent") as silent:  # asked second: the device moved on
        dev = boot(device, broker, ntpserver=f"{ntp.server},{silent.server}")
        w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", device=dev)  # no TLS: no wait
        silent.wait_requests(1)
        dev.advance(3000)  # the second server never answers
        dev.wait_console(r"W sntp: no time \(127\.0\.0\.1: ValueError server not synchronised "
                         r"\(stratum 0\); 127\.0\.0\.1: TimeoutError\); retry in 15 s")
        ntp.mode = "stray"  # the origin timestamp is not our request's transmit time
        dev.advance(RETRY_MS)
        silent.wait_requests(2)
        dev.advance(3000)
        dev.wait_console(r"sntp: no time \(127\.0\.0\.1: ValueError not an answer to our "
                         r"request; 127\.0\.0\.1: TimeoutError\); retry in 30 s")
        ntp.mode = "answer"
        dev.advance(30000 * 3 // 2)
        dev.wait_console(rf"sntp: {STAMP} from 127\.0\.0\.1")
        assert len(ntp.requests) == 3 and len(silent.requests) == 2  # one round, one retry each


def test_time_and_timestamps_survive_a_reset_but_not_a_power_cycle(
        device, broker_tls, mqtt_watch, test_ca, ntp):
    w = mqtt_watch(broker_tls)
    dev = boot(device, broker_tls, files={"ca.der": test_ca.ca_der}, mqttbroker="localhost",
               mqttca="ca.der", ntpserver=ntp.server)
    w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", device=dev)
    ntp.mode = "silent"  # from now on the device has only its RTC
    mark = w.mark()
    w.publish(f"cmnd/{NAME}/Crash", "timer")  # the crash path: a reset
    boot2 = dev.wait_boot(2, timeout=20)
    dev.wait_console("netapp ready", boot=2, timeout=20)
    dev.advance(START_MS)
    when = [ntp.when - datetime.timedelta(seconds=5), ntp.when + datetime.timedelta(minutes=5)]
    _, reboot, _ = w.wait_for(LOG, lambda p: p.startswith("reboot: "), since=mark, device=dev)
    m = re.fullmatch(rf"reboot: exception ZeroDivisionError: .* \(after \d+ s, at {STAMP}\)", reboot)
    assert m and when[0] <= seconds(m.group(1)) <= when[1], reboot
    _, trace, _ = w.wait_for(LOG, lambda p: p.startswith("exception: "), since=mark, device=dev)
    assert re.match(rf"exception: at {STAMP}\nTraceback", trace), trace
    _, booted, _ = w.wait_for(LOG, lambda p: p.startswith("boot "), since=mark, device=dev)
    assert re.search(rf": hard reset, at {STAMP}$", booted), booted
    assert boot2["reset_cause"] == 2
    # TLS went up on the RTC's time alone: the NTP server answered once, before the reset.
    assert "TLS waits" not in dev.output(boot=2) and ntp.answered == 1

    dev.power_cycle()
    dev.wait_boot(3)
    dev.wait_console("netapp ready", boot=3)
    dev.advance(START_MS)
    dev.wait_console(r"^\d+\.\d{3} I mqtt: TLS waits for the time", boot=3)
    assert not re.search(rf"^{STAMP} ", dev.output(boot=3), re.M)


@pytest.mark.parametrize("text, error", [
    ("pool.ntp.org:0", "'pool.ntp.org:0' is not host or host:port"),
    ("a:b:123", "'a:b:123' is not host or host:port"),
    (":123", "':123' is not host or host:port"),
    ("a b c d e", "1 to 4 servers"),
])
def test_ntpserver_is_checked(tmp_path, text, error):
    fw = build.build_unix("coreunit")[0]
    (tmp_path / "config.txt").write_text(f"ssid x\nntpserver {text}\n")
    out = last_json(run_code(fw, "import sys;sys.path[:]=['.frozen'];import json\n"
                             "from epx import config, sntp\nconfig.load()\n"
                             "print(json.dumps([config.errors, sntp.SERVERS.value]))", tmp_path))
    assert out[0] == [f"config.txt:2: ntpserver: {error}"]
    assert out[1] == [["pool.ntp.org", 123]]  # the default stays


def test_ntpserver_list(tmp_path):
    fw = build.build_unix("coreunit")[0]
    (tmp_path / "config.txt").write_text("ssid x\nntpserver 10.0.0.1, time.example:1123\n")
    out = last_json(run_code(fw, "import sys;sys.path[:]=['.frozen'];import json\n"
                             "from epx import config, sntp\nconfig.load()\n"
                             "print(json.dumps([config.errors, sntp.SERVERS.value]))", tmp_path))
    assert out == [[], [["10.0.0.1", 123], ["time.example", 1123]]]
