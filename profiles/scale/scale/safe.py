# Safe mode (a broken config.txt, a boot loop): the sensor cycle does not run, and a sensor
# without network has nothing to wait for awake. It sleeps its period and tries again: a
# battery drained by a safe mode that stays awake would need a visit, a config fixed over
# USB is picked up at the next wake. The period is declared here so that a boot loop, which
# does not even import the sensor, still knows it.
import machine

from epx import config, log

SLEEP_MIN = config.key("sleep", config.int_range(1, 1440), 60, "Sleep|min|60|Deep sleep between readings; 1-1440")


def setup():
    log.warn("safe mode: asleep for %d min" % SLEEP_MIN.value)
    machine.deepsleep(SLEEP_MIN.value * 60000)
