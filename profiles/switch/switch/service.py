# The switch appliance: config keys, the panel on a poll timer, and its MQTT face.
from machine import Pin
from time import ticks_ms

from epx import config, log, loop, mqtt, pins
from epx.nvram import NVRAM
from switch import boards, command, hardware, keep, program
from switch.panel import Panel


def _driver(text):
    # A driver is a PCB with its ESP32 wired: its outputs are whatever the PCB made safe
    # at boot, but every pin must exist on this board.
    spec = boards.board(text)  # ValueError names the known drivers
    for n, driven in boards.gpios(spec):
        why = pins.check(n, pins.OUT if driven else pins.IN)
        if why:
            raise ValueError("%s: %s" % (text, why))
    return text


DRIVER = config.key("driver", _driver, doc="Board||dtwonder8|Direct4, dtwonder2, dtwonder4, hoffer6, minir4 or dtwonder8")
POLL = config.key("poll", config.int_range(1, 1000), 15, "Input poll|ms|15|1-1000")
DEBOUNCE = config.key("debounce", config.int_range(0, 10000), 50, "Debounce|ms|50|A change counts once it held this long; 0-10000")
LONGPRESS = config.key("longpress", config.int_range(50, 60000), 1000, "Long press|ms|1000|A button held this long; 50-60000")

_LED_MS = const(500)
_CHECK_S = const(60)
_FORCE_S = const(600)
# The original's event codes stay on stat/<n>/Manual<k>/Event; Home Assistant's event entity
# wants JSON and shows each as a human event type.
_EVENT_TYPES = {"P": "press", "L": "long_press", "T+": "toggle_on", "T-": "toggle_off",
                "R+": "on", "R-": "off"}
_CODES = ("P", "L", "T+", "T-", "R+", "R-")
_EVENTS = [_EVENT_TYPES[c] for c in _CODES]
_EVENT_JSON = '{"event_type": "{{ {%s}[value] }}"}' % ", ".join(
    "'%s': '%s'" % (c, _EVENT_TYPES[c]) for c in _CODES)

panel = None
_program_pubs = ()  # Program and ProgramCompilation: answered at once on an upload
_states = []  # the State publications, checked at once on a change
_nv = None
compilation = "Success"


def _compile(text):
    b = panel.board
    return program.compile(text, b.n_inputs, b.n_outputs)


def _load_program():
    """The program in NVS, else the default; a broken one is reported and replaced."""
    global compilation
    b = panel.board
    text = _nv.get_str("program")
    if text is not None:
        try:
            return _compile(text)
        except program.ProgramError as e:
            compilation = "stored program: %s" % e
            log.error("program: " + compilation)
    return _compile(program.default_text(b.n_inputs, b.n_outputs))


def setup():
    global panel, _nv, _program_pubs
    mqtt.describe("Light switch board")
    _nv = NVRAM("switch")
    spec = boards.board(DRIVER.value)
    n_out = boards.n_outputs(spec)
    kept = keep.Kept(_nv, "switch", n_out)
    kept.load()
    outputs = 0
    for i, v in enumerate(kept.values):
        outputs |= (1 if v else 0) << i
    board = hardware.open_board(DRIVER.value, outputs)
    panel = Panel(board, kept, DEBOUNCE.value, LONGPRESS.value, _output_changed, _event)
    panel.start(_load_program(), ticks_ms())
    loop.every(POLL.value, _poll)
    if "led" in spec:
        _status_led(*spec["led"])
    for i in range(n_out):
        _declare_output(i)
    for k in range(board.n_inputs):
        # Events are one-off messages; this publication only announces them to Home Assistant.
        mqtt.pub("Manual%d/Event" % k, lambda: None, check_s=3600, force_s=0,
                 ha={"component": "event", "event_types": _EVENTS, "value_template": _EVENT_JSON,
                     "name": "Button %d" % k})
    _program_pubs = (
        mqtt.pub("ProgramCompilation", lambda: compilation, "%s", check_s=_CHECK_S, force_s=_FORCE_S,
                 ha={"name": "Program compilation", "entity_category": "diagnostic"}),
        mqtt.pub("Program", lambda: panel.program.text, "%s", check_s=_CHECK_S, force_s=_FORCE_S))
    mqtt.sub("Program", _on_program)
    log.info("switch: %s, %d inputs, %d outputs %s, restored from %s" % (
        DRIVER.value, board.n_inputs, n_out, bin(panel.outputs),
        "RTC memory" if kept.from_rtc else "NVS"))


def _declare_output(i):
    name = "%d/State" % i
    _states.append(mqtt.pub(name, lambda: panel.outputs >> i & 1, "%d", check_s=_CHECK_S,
                            force_s=_FORCE_S,
                            ha={"component": "switch", "command_topic": mqtt.topic("cmnd", name),
                                "name": "Output %d" % i,
                                "payload_on": "1", "payload_off": "0"}))
    mqtt.sub(name, lambda text: _on_state(i, text))


def _status_led(pin, active_low):
    # On while the broker is connected, blinking while it is not.
    led = Pin(pin, Pin.OUT, value=active_low)
    blink = [0]

    def show():
        blink[0] ^= 1
        led.value((1 if mqtt.connected else blink[0]) ^ active_low)

    loop.every(_LED_MS, show)


def _poll():
    panel.poll(ticks_ms())


def _output_changed(i, value):
    _states[i].check()


def _event(input, text):
    mqtt.publish("Manual%d/Event" % input, text)


def _on_state(i, text):
    value = command.on_off(text)
    if value is None:
        raise ValueError("not on/1/up or off/0/down")  # reported on stat/<n>/Log
    panel.set_output(i, value)


def _on_program(text):
    global compilation
    try:
        new = _compile(text)
    except program.ProgramError as e:
        compilation = str(e)
        log.warn("program rejected: " + compilation)
    else:
        _nv.set_str("program", text)
        panel.program = new
        compilation = "Success"
    for p in _program_pubs:
        p.check(True)
