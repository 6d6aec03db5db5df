# Placeholder: the simulated ESP32 machine module (issue 3).
from umachine import *


class Pin:
    IRQ_RISING = 1

    def __init__(self, *args, **kwargs):
        pass

    def irq(self, handler=None, trigger=IRQ_RISING):
        self.handler = handler


def disable_irq():
    return 0


def enable_irq(state):
    pass
