"""Relay profile logic inside the host firmware: TurnOnWithTimeout payloads, clamping,
auto-off, and the time left across resets and power cycles."""

import pytest

from epx import build
from fwcode import boot_env, last_json, run_code

ENTRY = "import sys;sys.path[:]=['.frozen'];import json\n"

RELAYS = """
from machine import Pin
from switch import keep
from relay import relays
from epx.nvram import NVRAM
PINS = (25, 26, 27, 33)
log = []
def make(now=0, max_s=(600, 86400, 86400, 86400)):
    nv = NVRAM('relay')
    state = keep.Kept(nv, 'relay', 4); state.load()
    left = keep.Kept(nv, 'relayt', 4, 't'); left.load()
    r = relays.Relays(PINS, max_s, state, left, lambda i, on: log.append([i, on]))
    r.start(now)
    return r
def levels():
    return [Pin._level(n) for n in PINS]
"""


@pytest.fixture(scope="module")
def fw():
    return build.build_unix("switchunit")[0]


def run(fw, tmp_path, code, cause=1):
    return last_json(run_code(fw, ENTRY + RELAYS + code, tmp_path, env=boot_env(cause)))


def test_payloads(fw, tmp_path):
    out = run(fw, tmp_path, """
print(json.dumps([relays.seconds(x) for x in
    [b'10', b' 10 ', b'+5', b'-3', b'0', b'1.5', b'abc', b'', b'1e3', b'\\xff', b'- 1', b'0x10']]))
""")
    assert out == [10, 10, 5, -3, 0, None, None, None, None, None, None, None]


def test_turn_on_clamp_restart_and_off(fw, tmp_path):
    out = run(fw, tmp_path, """
r = make()
res = [levels()]                                   # active low: all off
res.append(r.command(0, b'100000', 0)); res.append(r.left_ms(0, 0))    # clamped to 600 s
res.append(levels())
res.append(r.command(1, b'bogus', 0)); res.append(r.is_on(1))         # ignored
r.command(2, b'30', 0)
r.tick(29000); res.append(r.is_on(2))
r.command(2, b'30', 20000)                         # restarts the timer
r.tick(31000); res.append(r.is_on(2))
r.tick(50000); res.append(r.is_on(2))
r.command(0, b'-5', 51000); res.append(r.is_on(0))  # negative: off
r.command(3, b'10', 0); r.command(3, b'0', 1); res.append(r.is_on(3))
res.append(levels())
print(json.dumps([res, log]))
""")
    res, log = out
    assert res[0] == [1, 1, 1, 1]
    assert res[1:4] == [True, 600000, [0, 1, 1, 1]]
    assert res[4:6] == [False, False]
    assert res[6:9] == [True, True, False]
    assert res[9:11] == [False, False]
    assert res[11] == [1, 1, 1, 1]
    assert log == [[0, True], [2, True], [2, False], [0, False], [3, True], [3, False]]


def test_time_left_survives_watchdog_reset_and_power_cycle(fw, tmp_path):
    run(fw, tmp_path, """
r = make()
r.command(1, b'600', 0)
for t in range(0, 300001, 1000): r.tick(t)         # 5 minutes pass
print(json.dumps(r.left_ms(1, 300000)))
""")
    out = run(fw, tmp_path, """
r = make(now=7)
print(json.dumps([levels(), r.left_ms(1, 7)]))
""", cause=3)
    assert out[0] == [1, 0, 1, 1]
    assert 299000 <= out[1] <= 300000                 # about 5 minutes left
    (tmp_path / "rtc.bin").unlink()
    out = run(fw, tmp_path, "r = make()\nprint(json.dumps([levels(), r.left_ms(1, 0)]))", cause=1)
    assert out == [[1, 0, 1, 1], 300000]              # power cycle: what was left at the reset


def test_expired_relay_stays_off_after_reset(fw, tmp_path):
    run(fw, tmp_path, """
r = make()
r.command(0, b'5', 0)
r.tick(6000)
print(json.dumps(r.is_on(0)))
""")
    out = run(fw, tmp_path, "r = make()\nprint(json.dumps([levels(), log]))", cause=3)
    assert out == [[1, 1, 1, 1], []]
