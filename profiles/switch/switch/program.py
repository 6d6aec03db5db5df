# The input program: which outputs each input switches, and how.
#
#   program   = statement (";" statement)*          blank statements are skipped
#   statement = input ":" kind ":" phase ("/" phase)*
#   phase     = [step ("," step)*]                  an empty phase changes nothing
#   step      = ("+" | "-") output
#
# Kinds: P push button (press: next phase; held `longpress`: phase 0), T toggle switch
# (each edge: next phase), R follow (on: phase 1, off: phase 0). The next phase is the
# phase after the first one the outputs already match (phase 0 when none matches).
PUSH = "P"
TOGGLE = "T"
FOLLOW = "R"
_MIN_PHASES = {PUSH: 1, TOGGLE: 1, FOLLOW: 2}


class ProgramError(ValueError):
    pass


class Program:
    """A compiled program: per input, its kind and phases as (on, off) output masks."""

    def __init__(self, text, rules):
        self.text = text
        self.rules = rules  # input -> (kind, [(on_mask, off_mask), ...])

    def kind(self, input):
        rule = self.rules.get(input)
        return rule[0] if rule else None

    def next_phase(self, input, outputs):
        phases = self.rules[input][1]
        for i, (on, off) in enumerate(phases):
            if outputs & on == on and not outputs & off:
                return (i + 1) % len(phases)
        return 1 % len(phases)

    def apply(self, input, phase, outputs):
        """The outputs after `input` goes to `phase`."""
        on, off = self.rules[input][1][phase]
        return (outputs | on) & ~off


def _number(text, what, limit):
    if not text or not text.isdigit():
        raise ProgramError("%s %r is not a number" % (what, text))
    n = int(text)
    if n >= limit:
        raise ProgramError("%s %d out of range (0..%d)" % (what, n, limit - 1))
    return n


def _phase(text, n_outputs):
    on = off = 0
    for step in text.split(","):
        step = step.strip()
        if not step:
            if text.strip():
                raise ProgramError("empty step in phase %r" % text)
            continue
        if step[0] not in "+-":
            raise ProgramError("step %r must start with + or -" % step)
        bit = 1 << _number(step[1:].strip(), "output", n_outputs)
        if (on | off) & bit:
            raise ProgramError("output %s twice in phase %r" % (step[1:].strip(), text))
        if step[0] == "+":
            on |= bit
        else:
            off |= bit
    return on, off


def compile(text, n_inputs, n_outputs):
    """The Program for `text`; ProgramError says what is wrong and where."""
    rules = {}
    for number, statement in enumerate(text.split(";"), 1):
        if not statement.strip():
            continue
        try:
            parts = statement.split(":")
            if len(parts) != 3:
                raise ProgramError("expected input:kind:phases")
            input = _number(parts[0].strip(), "input", n_inputs)
            if input in rules:
                raise ProgramError("input %d programmed twice" % input)
            kind = parts[1].strip().upper()
            if kind not in _MIN_PHASES:
                raise ProgramError("kind %r is not P, T or R" % parts[1].strip())
            phases = [_phase(p, n_outputs) for p in parts[2].split("/")]
            if len(phases) < _MIN_PHASES[kind]:
                raise ProgramError("kind %s needs %d phases" % (kind, _MIN_PHASES[kind]))
            rules[input] = (kind, phases)
        except ProgramError as e:
            raise ProgramError("statement %d %r: %s" % (number, statement.strip(), e))
    if not rules:
        raise ProgramError("no statements")
    return Program(text, rules)


def default_text(n_inputs, n_outputs):
    """Each input a push button toggling the output of the same number."""
    return ";".join("%d:P:-%d/+%d" % (i, i, i) for i in range(min(n_inputs, n_outputs)))
