# An analog voltage on a pin (a battery divider, a sensor output), for machine.ADC.
from sim.models import PinModel


class Voltage(PinModel):
    def __init__(self, pin, uv=0, **args):
        super().__init__(**args)
        self.pin = pin
        self.uv = uv
        self.supply(pin)

    def voltage(self, pin):
        return self.uv

    # host side (model.call)
    def set(self, uv):
        self.uv = int(uv)
