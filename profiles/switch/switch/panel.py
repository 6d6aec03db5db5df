# The switch board at work: polled inputs run the program, outputs change and are kept.
import struct
from switch import keep
from switch import program as prog
from switch.inputs import LONG, PRESS, RELEASE, Debouncer

_INPUTS_TAG = "swinputs"  # RTC memory: the debounced inputs, to see a flip during a reset

_EVENTS = {  # (kind, input event) -> event text
    (prog.PUSH, PRESS): "P",
    (prog.PUSH, LONG): "L",
    (prog.TOGGLE, PRESS): "T+",
    (prog.TOGGLE, 0): "T-",
    (prog.FOLLOW, PRESS): "R+",
    (prog.FOLLOW, 0): "R-",
}


class Panel:
    """board: hardware.*Board; kept: keep.Kept of the outputs; on_output(i, value) and
    on_event(input, text) tell the world."""

    def __init__(self, board, kept, debounce_ms, longpress_ms, on_output, on_event):
        self.board = board
        self.kept = kept
        self.debounce_ms = debounce_ms
        self.longpress_ms = longpress_ms
        self.on_output = on_output
        self.on_event = on_event
        self.program = None
        self.outputs = 0
        self._events = []
        self.debouncer = None

    def start(self, program, now):
        """Restore the outputs, drive them, start debouncing. After a reset the outputs
        come back exactly as they were, and an input flipped during the reset counts; after
        a power cycle (NVS) the inputs in R mode win."""
        self.program = program
        outputs = 0
        for i, v in enumerate(self.kept.values):
            outputs |= (1 if v else 0) << i
        raw = self.board.read()
        before = keep.rtc_read(_INPUTS_TAG) if self.kept.from_rtc else None
        if before is not None and len(before) == 4:
            flipped = raw ^ struct.unpack("<I", before)[0]
            events = [(i, PRESS if raw >> i & 1 else RELEASE)
                      for i in range(self.board.n_inputs) if flipped >> i & 1]
            outputs = self._run(events, outputs)
        elif not self.kept.from_rtc:
            for i in program.rules:
                if program.kind(i) == prog.FOLLOW:
                    outputs = program.apply(i, raw >> i & 1, outputs)
        self.debouncer = Debouncer(self.board.n_inputs, self.debounce_ms, self.longpress_ms,
                                   raw, now)
        self._keep_inputs()
        self.outputs = outputs
        self.board.write(outputs)
        for i in range(self.board.n_outputs):
            self._keep(i)

    def _keep(self, i):
        value = self.outputs >> i & 1
        if self.kept.values[i] != value:
            self.kept.set(i, value)

    def _keep_inputs(self):
        keep.rtc_write(_INPUTS_TAG, struct.pack("<I", self.debouncer.stable))

    def poll(self, now):
        events = self.debouncer.update(self.board.read(), now, self._events)
        if not events:
            return
        outputs = self._run(events, self.outputs)
        events.clear()
        self._keep_inputs()
        self.set_outputs(outputs)

    def _run(self, events, outputs):
        """The outputs after the program ran (input, PRESS/RELEASE/LONG) events."""
        for input, what in events:
            kind = self.program.kind(input) or prog.PUSH
            text = _EVENTS.get((kind, what))
            if text is None:
                continue  # a push button's release, a long hold of a switch
            if input in self.program.rules:
                if kind == prog.FOLLOW:
                    phase = 1 if what == PRESS else 0
                elif what == LONG:
                    phase = 0
                else:
                    phase = self.program.next_phase(input, outputs)
                outputs = self.program.apply(input, phase, outputs)
            self.on_event(input, text)
        return outputs

    def set_output(self, i, value):
        bit = 1 << i
        self.set_outputs(self.outputs | bit if value else self.outputs & ~bit)

    def set_outputs(self, outputs):
        changed = outputs ^ self.outputs
        if not changed:
            return
        self.outputs = outputs
        self.board.write(outputs)
        for i in range(self.board.n_outputs):
            if changed >> i & 1:
                self._keep(i)
                self.on_output(i, outputs >> i & 1)
