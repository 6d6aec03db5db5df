# A minimal appliance: stat/<n>/Value (set by cmnd/<n>/Set), a QoS 1 counter, and a
# command that fails inside the loop (for the crash path).
from epx import loop, mqtt

value = [0]
count = [0]


def _set(text):
    value[0] = int(text)  # ValueError on garbage: reported as a bad command


def _count(text):
    count[0] += 1
    mqtt.publish("Counted", str(count[0]), qos=1)


def _crash(text):
    if text == "now":
        1 / 0  # in the command callback itself
    loop.later(0, lambda: 1 / 0)


def setup():
    mqtt.pub("Value", lambda: value[0], "%d", check_s=1, force_s=600,
             ha=("temperature", "°C"))
    mqtt.pub("Volume", lambda: value[0] * 1.5, "%.1f", check_s=5, force_s=600, retain=True,
             qos=1, ha={"device_class": "volume", "unit_of_measurement": "L"})
    mqtt.pub("Tick", lambda: loop.uptime_ms() // 10000, "%d", check_s=1, force_s=600, qos=1)
    mqtt.sub("Set", _set)
    mqtt.sub("Count", _count)
    mqtt.sub("Crash", _crash)
    print("netapp ready")
