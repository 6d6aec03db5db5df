# A voltage on an ADC pin (a battery through a divider, a sensor's output): machine.ADC
# reads it. set(volts) changes it; it survives resets (the host keeps the state).
import machine
from sim.models import PinModel


class Voltage(PinModel):
    def __init__(self, pin, volts=0.0, **args):
        super().__init__(**args)
        self.pin = pin
        self.set(volts)

    def set(self, volts):
        self.volts = volts
        machine.analog_uv[self.pin] = int(volts * 1000000)
        if getattr(self, "name", None):
            self.save({"volts": volts})

    def restore(self, state):
        self.set(state.get("volts", self.volts))
