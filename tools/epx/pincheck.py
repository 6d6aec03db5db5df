"""The pin check of `epx esp32-check`: every pin key a profile's frozen code declares
(`pins.key(...)` / `pins.keys(...)` calls), with the board's default (boards/<b>/board.py
PINS) and the value its config.txt.example sets, judged by modules/epx/pins.py itself, the
rules the firmware applies when it parses config.txt."""

import ast
import importlib.util
import sys
from pathlib import Path

from .paths import BOARDS, ROOT, rel

PINS_PY = ROOT / "modules" / "epx" / "pins.py"


def _load(path, name, board=None):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    saved = sys.modules.get("board")
    if board is not None:
        sys.modules["board"] = board
    try:
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            sys.modules.pop("board", None)
        else:
            sys.modules["board"] = saved
    return module


def declared(paths):
    """(key, many, use, source) for each pins.key/pins.keys call with a literal key name."""
    found = []
    for path in paths:
        if not str(path).endswith(".py"):
            continue
        tree = ast.parse(Path(path).read_text(), str(path))
        for node in ast.walk(tree):
            f = node.func if isinstance(node, ast.Call) else None
            if (isinstance(f, ast.Attribute) and f.attr in ("key", "keys")
                    and isinstance(f.value, ast.Name) and f.value.id == "pins"
                    and len(node.args) >= 2 and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[1], ast.Attribute)):
                found.append((node.args[0].value, f.attr == "keys", node.args[1].attr,
                              f"{rel(path)}:{node.lineno}"))
    return found


def _example(profile):
    """{key: (line number, value)} of profiles/<profile>/config.txt.example."""
    path = ROOT / "profiles" / profile / "config.txt.example"
    lines = {}
    if path.is_file():
        for n, line in enumerate(path.read_text().splitlines(), 1):
            parts = line.strip().split(None, 1)
            if parts and not parts[0].startswith("#"):
                lines[parts[0]] = (n, parts[1] if len(parts) > 1 else "")
    return path, lines


def check(profile, board, paths):
    """The errors, one line each, of the profile's pins on the board (empty: all good)."""
    b = _load(BOARDS / board / "board.py", "board")
    rules = _load(PINS_PY, "epx_pins", board=b)
    example, lines = _example(profile)
    errors = []
    for name, many, use, where in declared(paths):
        parse = (rules.parse_list if many else rules.parse)(getattr(rules, use))
        default = b.PINS.get(name)
        if default is None:
            errors.append(f"{rel(BOARDS / board / 'board.py')}: PINS has no default for {name} "
                          f"(declared at {where})")
        else:
            text = ",".join(str(n) for n in default) if many else str(default)
            try:
                parse(text)
            except ValueError as e:
                errors.append(f"{rel(BOARDS / board / 'board.py')}: PINS: {name}: {e}")
        if name in lines:
            n, text = lines[name]
            try:
                parse(text)
            except ValueError as e:
                errors.append(f"{rel(example)}:{n}: {name}: {e} (on {board})")
    return errors
