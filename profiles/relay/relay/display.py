# The SSD1306 page: each relay on or off with the time it has left, then IP and MQTT.
from time import ticks_ms


def left_text(ms):
    s = (ms + 999) // 1000
    if s >= 3600:
        return "%d:%02d:%02d" % (s // 3600, s // 60 % 60, s % 60)
    return "%d:%02d" % (s // 60, s % 60)


class Page:
    def __init__(self, oled, relays, ip, mqtt_state):
        self.oled = oled
        self.relays = relays
        self._ip = ip  # callable -> text or None
        self._mqtt = mqtt_state  # callable -> text

    def draw(self):
        fb = self.oled
        fb.fill(0)
        now = ticks_ms()
        r = self.relays
        y = 0
        for i in range(len(r.deadline)):
            if r.is_on(i):
                fb.text("%d on  %s" % (i, left_text(r.left_ms(i, now))), 0, y)
            else:
                fb.text("%d off" % i, 0, y)
            y += 8
        fb.text(self._ip() or "no net", 0, 48)
        fb.text("MQTT " + self._mqtt(), 0, 56)

    def refresh(self):
        """Draw and send (every second); an absent display is retried by the driver."""
        self.draw()
        return self.oled.show()
