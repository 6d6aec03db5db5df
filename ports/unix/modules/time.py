# The simulated ESP32 `time`: the unix port's, except sleep(), which there waits in real
# time; on the device every sleep follows the (simulated) device clock.
from utime import *
from utime import sleep_ms


def sleep(seconds):
    sleep_ms(int(seconds * 1000))
