"""Switch profile pieces inside the host firmware (tests/firmware/switchunit.py): the
program language, debounce and long press, command payloads, the board table, and the
viper 74HC165/595 transfer against the chip models."""

import json

import pytest

from epx import build
from fwcode import boot_env, last_json, run_code

ENTRY = "import sys;sys.path[:]=['.frozen'];import json\n"


@pytest.fixture(scope="module")
def fw():
    return build.build_unix("switchunit")[0]


def run(fw, tmp_path, code):
    """Run `code` in the firmware; it prints one JSON value, returned."""
    return last_json(run_code(fw, ENTRY + code, tmp_path))


PROGRAM = """
from switch import program as p
def compile(text, ni=4, no=4):
    try:
        return p.compile(text, ni, no)
    except p.ProgramError as e:
        return str(e)
"""


def test_program_compiles_kinds_and_phases(fw, tmp_path):
    out = run(fw, tmp_path, PROGRAM + """
pr = compile(' 0:P:-0/+0 ; 1:t:+0,+1/-1;2:R:-2/+2,-3;;3:P:/+3 ;')
print(json.dumps({str(k): [v[0], v[1]] for k, v in pr.rules.items()}))
""")
    assert out == {"0": ["P", [[0, 1], [1, 0]]], "1": ["T", [[3, 0], [0, 2]]],
                   "2": ["R", [[0, 4], [4, 8]]], "3": ["P", [[0, 0], [8, 0]]]}


def test_next_phase_follows_the_outputs(fw, tmp_path):
    out = run(fw, tmp_path, PROGRAM + """
pr = compile('0:P:-0,-1/+0,-1/-0,+1/+0,+1')
seen, o = [], 0
for _ in range(5):
    ph = pr.next_phase(0, o); o = pr.apply(0, ph, o); seen.append([ph, o])
seen.append(pr.next_phase(0, 0b0011))
pr = compile('0:P:+0/+1')
seen.append(pr.next_phase(0, 0))  # matches no phase: phase 0 + 1
print(json.dumps(seen))
""")
    assert out[:5] == [[1, 1], [2, 2], [3, 3], [0, 0], [1, 1]]
    assert out[5] == 0
    assert out[6] == 1


@pytest.mark.parametrize("text,error", [
    ("0:P:+4", "statement 1 '0:P:+4': output 4 out of range (0..3)"),
    ("0:P:+256", "output 256 out of range"),
    ("4:P:+1", "input 4 out of range (0..3)"),
    ("99999999999999999999:P:+1", "out of range"),
    ("0:X:+1", "kind 'X' is not P, T or R"),
    ("0:R:+1", "kind R needs 2 phases"),
    ("0:P:+1;0:T:-1", "statement 2 '0:T:-1': input 0 programmed twice"),
    ("0:P:+1,,-0", "empty step"),
    ("0:P:*1", "must start with + or -"),
    ("0:P:+-1", "output '-1' is not a number"),
    ("0:P:+1,-1", "output 1 twice"),
    ("0:P", "expected input:kind:phases"),
    ("a:P:+1", "input 'a' is not a number"),
    ("", "no statements"),
    (" ; ", "no statements"),
])
def test_program_errors_are_text(fw, tmp_path, text, error):
    out = run(fw, tmp_path, PROGRAM + "print(json.dumps(compile(%r)))" % text)
    assert isinstance(out, str) and error in out


def test_default_program_pairs_inputs_with_outputs(fw, tmp_path):
    out = run(fw, tmp_path, PROGRAM + """
t = p.default_text(8, 6)
pr = compile(t, 8, 6)
print(json.dumps([t, sorted(pr.rules)]))
""")
    assert out[0] == "0:P:-0/+0;1:P:-1/+1;2:P:-2/+2;3:P:-3/+3;4:P:-4/+4;5:P:-5/+5"
    assert out[1] == [0, 1, 2, 3, 4, 5]


def test_commands_accept_every_spelling_and_nothing_else(fw, tmp_path):
    out = run(fw, tmp_path, """
from switch.command import on_off
good = [b'on', b'ON', b'On', b'1', b'up', b'UP', b' on\\n', b'off', b'OFF', b'0', b'down', b'Down']
bad = [b'', b'2', b'onn', b'true', b'\\xff\\xfe', b'o n', b'-1', b'1.0', b'of']
print(json.dumps([[on_off(x) for x in good], [on_off(x) for x in bad]]))
""")
    assert out[0] == [1] * 7 + [0] * 5
    assert out[1] == [None] * 9


DEBOUNCE = """
from switch.inputs import Debouncer, PRESS, RELEASE, LONG
def feed(d, samples, poll=15):
    events, t = [], 0
    for raw in samples:
        for e in d.update(raw, t, []):
            events.append([t, e[0], e[1]])
        t += poll
    return events
"""


def test_debounce_needs_the_level_to_hold(fw, tmp_path):
    out = run(fw, tmp_path, DEBOUNCE + """
d = Debouncer(2, 50, 1000)
# input 0 bounces (1,0,1,0) then holds; input 1 glitches for one poll only
samples = [1, 0, 1, 0, 1, 1, 1, 1, 1, 3, 1, 1, 1, 0, 0, 0, 0, 0]
print(json.dumps(feed(d, samples)))
""")
    # press counts 50 ms after the last bounce (t=60 -> 120); release at 195 -> 255
    assert out == [[120, 0, 1], [255, 0, 0]]


def test_long_press_once_per_hold(fw, tmp_path):
    out = run(fw, tmp_path, DEBOUNCE + """
d = Debouncer(1, 50, 1000)
samples = [1] * 100 + [0] * 10 + [1] * 10 + [0] * 10
print(json.dumps(feed(d, samples, poll=15)))
""")
    press, long_, release = out[0], out[1], out[2]
    assert press == [45, 0, 1] or press == [60, 0, 1]
    assert long_[2] == 2 and long_[0] - press[0] >= 1000 and long_[0] - press[0] < 1015
    assert release[2] == 0
    assert [e[2] for e in out] == [1, 2, 0, 1, 0]  # a short press has no long press


def test_debounce_zero_and_wraparound(fw, tmp_path):
    out = run(fw, tmp_path, """
from switch.inputs import Debouncer
from time import ticks_add
t0 = ticks_add(0, -30)  # ticks wrap during the press
d = Debouncer(1, 20, 100, now=t0)
ev = []
for k in range(14):
    d.update(1, ticks_add(t0, 10 * k), ev)
d0 = Debouncer(1, 0, 100)
ev0 = d0.update(1, 0, [])
print(json.dumps([ev, ev0]))
""")
    assert out[0] == [[0, 1], [0, 2]]
    assert out[1] == [[0, 1]]


def test_board_table(fw, tmp_path):
    out = run(fw, tmp_path, """
from switch import boards
r = {n: [boards.n_inputs(b), boards.n_outputs(b)] for n, b in boards.BOARDS.items()}
try:
    boards.board('nope')
except ValueError as e:
    r['error'] = str(e)
print(json.dumps(r))
""")
    assert out.pop("error").startswith("unknown driver 'nope'")
    assert out == {"Direct4": [4, 4], "dtwonder2": [2, 2], "dtwonder4": [4, 4],
                   "hoffer6": [8, 6], "minir4": [2, 1], "dtwonder8": [8, 8]}


CHAIN = """
from sim import models
import shiftreg
def chain(nbits=8, **kw):
    o = models.attach('pins', 'HC595', args=dict(ser=13, clk=14, latch=15, nbits=nbits, **kw))
    i = models.attach('pins', 'HC165', args=dict(clk=14, load=32, qh=16, nbits=nbits))
    c = shiftreg.Chain(14, nbits=nbits, load=32, qh=16, ser=13, latch=15)
    return c, i, o
"""


def test_shift_registers_read_and_latch(fw, tmp_path):
    out = run(fw, tmp_path, CHAIN + """
c, i, o = chain()
r = []
i.set_inputs(0b10100101); r.append(c.transfer())
r.append(o.history[:])                      # a read latches nothing
r.append(c.write(0b11000011)); r.append(o.latched); r.append(o.history[:])
i.set_input(1, 1); r.append(c.transfer()); r.append(o.latched)
r.append(o.shift)                            # the 595s still hold the outputs
print(json.dumps(r))
""")
    assert out == [0b10100101, [], 0b10100101, 0b11000011, [0b11000011],
                   0b10100111, 0b11000011, 0b11000011]


def test_shift_register_chain_of_three(fw, tmp_path):
    out = run(fw, tmp_path, CHAIN + """
c, i, o = chain(24)
i.set_inputs(0x813C05)
print(json.dumps([c.write(0x5AC381), o.latched, c.transfer()]))
""")
    assert out == [0x813C05, 0x5AC381, 0x813C05]


def test_chain_is_bounded(fw, tmp_path):
    # That the transfer is viper code is checked on the compiled bytecode (test_viper_emitter).
    out = run(fw, tmp_path, """
import shiftreg
try:
    shiftreg.Chain(14, nbits=25)
except ValueError as e:
    print(json.dumps(str(e)))
""")
    assert "1..24" in out


PANEL = """
from machine import Pin
from switch import hardware, keep, panel, program
from epx.nvram import NVRAM
log = []
def make(driver='Direct4', text=None, debounce=50, longpress=1000, now=0):
    board = hardware.open_board(driver, 0)
    kept = keep.Kept(NVRAM('switch'), 'switch', board.n_outputs)
    kept.load()
    p = panel.Panel(board, kept, debounce, longpress,
                    lambda i, v: log.append(['out', i, v]), lambda i, t: log.append(['ev', i, t]))
    text = text or program.default_text(board.n_inputs, board.n_outputs)
    p.start(program.compile(text, board.n_inputs, board.n_outputs), now)
    return p
def outs(pins=(17, 16, 32, 12)):
    return [Pin._level(n) for n in pins]
def hold(p, pin, level, t0, ms, poll=15):
    Pin._drive(pin, level)
    t = t0
    while t < t0 + ms:
        p.poll(t)
        t += poll
    return t
"""


def run_boot(fw, tmp_path, code, cause):
    return last_json(run_code(fw, ENTRY + code, tmp_path, env=boot_env(cause)))


def test_push_buttons_toggle_and_long_press_clears(fw, tmp_path):
    out = run_boot(fw, tmp_path, PANEL + """
for n in (26, 34, 33, 35): Pin._drive(n, 1)     # active low: released
p = make(text='0:P:-0,-1/+0/+1;1:P:-1/+1')
r = [outs()]
t = hold(p, 26, 0, 0, 100); t = hold(p, 26, 1, t, 100); r.append(outs())   # press: phase 1
t = hold(p, 26, 0, t, 100); t = hold(p, 26, 1, t, 100); r.append(outs())   # phase 2
t = hold(p, 26, 0, t, 1500); r.append(outs()); t = hold(p, 26, 1, t, 100)  # long: phase 0
t = hold(p, 34, 0, t, 30); t = hold(p, 34, 1, t, 100)   # shorter than debounce
t = hold(p, 34, 0, t, 80); t = hold(p, 34, 1, t, 100); r.append(outs())
print(json.dumps([r, log]))
""", 1)
    r, log = out
    assert r == [[0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]]
    assert [e for e in log if e[0] == "ev"] == [["ev", 0, "P"], ["ev", 0, "P"], ["ev", 0, "P"],
                                                ["ev", 0, "L"], ["ev", 1, "P"]]
    assert ["out", 0, 1] in log and ["out", 1, 1] in log


def test_toggle_and_follow_kinds_and_bounces(fw, tmp_path):
    out = run_boot(fw, tmp_path, PANEL + """
for n in (26, 34, 33, 35): Pin._drive(n, 1)
p = make(text='0:T:-0/+0;1:R:-1,-2/+1,+2')
r = []
t = hold(p, 26, 0, 0, 100); r.append(outs())            # T on
t = hold(p, 26, 1, t, 100); r.append(outs())            # T off: each edge is a phase
for k in range(4):                                      # bouncing: 15 ms flips, no change
    t = hold(p, 34, k % 2, t, 15)
t = hold(p, 34, 1, t, 100); r.append(outs())
t = hold(p, 34, 0, t, 100); r.append(outs())            # R on: phase 1
p.set_output(1, 0); r.append(outs())                     # MQTT may override
t = hold(p, 34, 1, t, 100); r.append(outs())            # R off: phase 0
print(json.dumps([r, [e for e in log if e[0] == 'ev']]))
""", 1)
    r, events = out
    assert r == [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert events == [["ev", 0, "T+"], ["ev", 0, "T-"], ["ev", 1, "R+"], ["ev", 1, "R-"]]


def test_outputs_restore_from_rtc_then_nvs_and_follow_wins(fw, tmp_path):
    first = PANEL + """
for n in (26, 34, 33, 35): Pin._drive(n, 1)
p = make(text='0:P:-0/+0;1:P:-1/+1;2:R:-2/+2')
p.set_output(0, 1); p.set_output(3, 1)
print(json.dumps(outs()))
"""
    assert run_boot(fw, tmp_path, first, 1) == [1, 0, 0, 1]
    nvs = json.loads((tmp_path / "nvs.json").read_text())["switch"]
    assert nvs == {"0": ["i32", 1], "3": ["i32", 1]}  # written on change only
    # RTC memory says otherwise (a reset came between the RTC and the NVS write): a
    # watchdog reset believes RTC memory, and NVS catches up.
    again = PANEL + """
from switch import keep
import struct
keep.rtc_write('switch', struct.pack('<4i', 0, 1, 0, 1))
print(json.dumps(1))
"""
    run_boot(fw, tmp_path, again, 3)
    boot = PANEL + """
Pin._drive(26, 1); Pin._drive(34, 1); Pin._drive(33, 0); Pin._drive(35, 1)  # input 2 on
p = make(text='0:P:-0/+0;1:P:-1/+1;2:R:-2/+2')
r = outs()
p.set_output(2, 0)                        # MQTT overrides the R switch
print(json.dumps([r, log]))
"""
    # RTC memory, and input 2 flipped during the reset: it counts as a flip
    assert run_boot(fw, tmp_path, boot, 3) == [[0, 1, 1, 1], [["ev", 2, "R+"], ["out", 2, 0]]]
    # RTC memory, no input changed: exactly as it was (the override stays)
    assert run_boot(fw, tmp_path, boot, 3)[0] == [0, 1, 0, 1]
    (tmp_path / "rtc.bin").unlink()                          # a power cycle
    assert run_boot(fw, tmp_path, boot, 1)[0] == [0, 1, 1, 1]   # NVS, and R input 2 wins


def test_chain_board_restores_without_a_latch_glitch(fw, tmp_path):
    code = CHAIN.replace("def chain", "def _chain") + PANEL + """
o = models.attach('pins', 'HC595', args=dict(ser=13, clk=14, latch=15))
i = models.attach('pins', 'HC165', args=dict(clk=14, load=32, qh=16))
i.set_inputs(0xFF)                       # active low: all released
k = keep.Kept(NVRAM('switch'), 'switch', 8)
k.load()
for n in (2, 5): k.set(n, 1)
o.shift = o.latched = 0b00100100          # what the 595s held before the reset
p = make('dtwonder8')
r = [o.history[:], o.latched]
t = hold(p, 0, 0, 0, 0)
i.set_input(7, 0)
for t in range(0, 120, 15): p.poll(t)
r.append(o.history[:]); r.append(o.shift)
print(json.dumps(r))
"""
    out = run_boot(fw, tmp_path, code, 3)
    assert out[0] == [0b00100100] and out[1] == 0b00100100   # one latch, same value
    assert out[2] == [0b00100100, 0b10100100]                 # input 7 toggled output 7
    assert out[3] == 0b10100100                               # reads keep the outputs shifted


def test_every_board_opens_reads_and_writes(fw, tmp_path):
    out = run(fw, tmp_path, """
from machine import Pin
from sim import models
from switch import boards, hardware
models.attach('pins', 'HC595', args=dict(ser=13, clk=14, latch=15))
chips = models.attach('pins', 'HC165', args=dict(clk=14, load=32, qh=16))
chips.set_inputs(0b11111110)   # active low: input 0 pressed
r = {}
for name, spec in boards.BOARDS.items():
    b = hardware.open_board(name, 0)
    for i, (n, low) in enumerate(spec.get('inputs', ())):
        Pin._drive(n, (i == 0) ^ low)      # input 0 active, the others not
    everything = (1 << b.n_outputs) - 1
    b.write(everything)
    if 'outputs' in spec:
        on = [Pin._level(n) for n in spec['outputs']]
    else:
        on = models.by_name['HC595@pins'].latched
    r[name] = [b.read(), on]
    b.write(0)
    # Boards are never swapped on a device: give the next one its pads free (outputs are
    # held pads, kept through resets).
    for n, low in spec.get('inputs', ()):
        Pin._drive(n, None)
    for n in spec.get('outputs', ()):
        Pin(n, Pin.IN, hold=False)
print(json.dumps(r))
""")
    for name, (inputs, on) in out.items():
        assert inputs == 1, name
        assert on == 0xFF if name == "dtwonder8" else on == [1] * len(on), name


def test_output_enable_held_until_the_first_latch(fw, tmp_path):
    out = run(fw, tmp_path, """
from sim import models
import shiftreg
o = models.attach('pins', 'HC595', args=dict(ser=13, clk=14, latch=15, oe=4))
c = shiftreg.Chain(14, load=32, qh=16, ser=13, latch=15, oe=4)
r = [o.outputs()]            # a board pull-up keeps OE high: outputs off
c.out = 0b1001
c.transfer()
r.append(o.outputs())        # reads do not enable them
c.write(0b1001)
r.append(o.outputs())
print(json.dumps(r))
""")
    assert out == [None, None, 0b1001]
