# The switch boards, one row each (config key `driver`). GPIO boards: inputs as
# (pin, active_low), outputs as pins (active high). Shift-register boards: `chain`, the
# pins of 74HC165 (inputs) and 74HC595 (outputs) chains on one clock (see shiftreg.Chain).
BOARDS = {
    "Direct4": {
        "inputs": ((26, 1), (34, 1), (33, 1), (35, 1)),
        "outputs": (17, 16, 32, 12),
        "led": (2, 0),
    },
    "dtwonder2": {
        "inputs": ((36, 1), (39, 1)),
        "outputs": (16, 2),
    },
    "dtwonder4": {
        "inputs": ((36, 1), (39, 1), (33, 1), (35, 1)),
        "outputs": (16, 2, 32, 12),
    },
    "hoffer6": {
        "inputs": ((36, 0), (39, 0), (32, 0), (33, 0), (25, 0), (26, 0), (27, 0), (14, 0)),
        "outputs": (4, 16, 17, 18, 19, 23),
        "led": (2, 0),
    },
    "minir4": {
        "inputs": ((27, 1), (0, 1)),
        "outputs": (26,),
        "led": (19, 1),
    },
    "dtwonder8": {
        # Dingtian-style: CLK 14 clocks both chains; 32 loads the 165s (SH/LD, the
        # original's "OE"), 15 latches the 595s (RCLK, the original's "INH").
        "chain": {"clk": 14, "load": 32, "qh": 16, "ser": 13, "latch": 15, "nbits": 8},
        "n_inputs": 8,
        "n_outputs": 8,
        "inputs_active_low": 1,
    },
}


def board(name):
    try:
        return BOARDS[name]
    except KeyError:
        raise ValueError("unknown driver %r (known: %s)" % (name, ", ".join(sorted(BOARDS))))


def n_inputs(b):
    return b.get("n_inputs") or len(b["inputs"])


def n_outputs(b):
    return b.get("n_outputs") or len(b["outputs"])


def gpios(b):
    """Every GPIO the board wires, as (gpio, driven): inputs False, outputs True."""
    if "chain" in b:
        c = b["chain"]
        return [(c["clk"], True), (c["load"], True), (c["ser"], True), (c["latch"], True),
                (c["qh"], False)]
    found = [(n, False) for n, _ in b["inputs"]] + [(n, True) for n in b["outputs"]]
    if "led" in b:
        found.append((b["led"][0], True))
    return found
