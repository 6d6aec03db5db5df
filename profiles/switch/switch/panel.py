# The switch board at work: polled inputs run the program, outputs change and are kept.
from switch import program as prog
from switch.inputs import LONG, PRESS, Debouncer

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
        """Restore the outputs (inputs in R mode win over NVS: after a reset the outputs
        come back exactly as they were), drive them, start debouncing."""
        self.program = program
        outputs = 0
        for i, v in enumerate(self.kept.values):
            outputs |= (1 if v else 0) << i
        raw = self.board.read()
        for i in program.rules:
            if program.kind(i) == prog.FOLLOW and not self.kept.from_rtc:
                outputs = program.apply(i, raw >> i & 1, outputs)
        self.debouncer = Debouncer(self.board.n_inputs, self.debounce_ms, self.longpress_ms,
                                   raw, now)
        self.outputs = outputs
        self.board.write(outputs)
        for i in range(self.board.n_outputs):
            self._keep(i)

    def _keep(self, i):
        value = self.outputs >> i & 1
        if self.kept.values[i] != value:
            self.kept.set(i, value)

    def poll(self, now):
        events = self.debouncer.update(self.board.read(), now, self._events)
        if not events:
            return
        outputs = self.outputs
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
        events.clear()
        self.set_outputs(outputs)

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
