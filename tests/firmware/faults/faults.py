# Test-only: a profile's service plus cmnd/<n>/Fault, so a test can make the firmware fail
# the ways a product fails: hang the loop (the watchdog resets the chip), raise in a
# callback (the crash path), soft reset. Frozen only into tests/firmware/swfault.py and rlfault.py.
import machine

from epx import loop, mqtt


def _raise():
    raise RuntimeError("fault injected")


def _fault(text):
    if text == "hang":
        print("fault: hang")
        while True:  # the loop never turns again: only the watchdog ends this
            pass
    if text == "raise":
        loop.later(0, _raise)  # an exception in the loop: the crash path
        return
    if text == "soft":
        machine.soft_reset()
    raise ValueError("hang, raise or soft")


def setup(service):
    service.setup()
    mqtt.sub("Fault", _fault)
