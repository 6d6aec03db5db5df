"""One line per long step on stdout, saying what it does and what it usually costs, so a
first run that takes minutes is never silent."""

import sys


def say(text):
    print(f"epx: {text}", file=sys.stdout, flush=True)
