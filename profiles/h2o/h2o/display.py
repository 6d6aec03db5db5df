# The SSD1306 page: level bar (half height on a malfunction, blinking while water flows),
# IP or "no net", MQTT state, uptime, malfunction code or estimate, flow.
from epx.loop import uptime_ms


def uptime(ms):
    s = ms // 1000
    d, s = divmod(s, 86400)
    return "up %dd %02d:%02d:%02d" % (d, s // 3600, s // 60 % 60, s % 60)


class Page:
    def __init__(self, oled, tank, flow, unit, estimate, ip, mqtt_state):
        self.oled = oled
        self.tank = tank
        self.flow = flow
        self.unit = unit
        self._estimate = estimate  # callable -> text
        self._ip = ip  # callable -> text or None
        self._mqtt = mqtt_state  # callable -> text
        self._blink = False

    def malfunction(self):
        return self.tank.malfunction | self.flow.malfunction

    def draw(self):
        fb = self.oled
        w = fb.width
        fb.fill(0)
        pct = self.tank.level_pct or 0
        fault = self.malfunction()
        rate = self.flow.rate
        self._blink = bool(rate) and not self._blink
        height = 6 if fault else 12
        if not self._blink:
            fb.rect(0, 0, w, height, 1)
        fb.fill_rect(0, 0, int(w * pct / 100), height, 1)
        fb.text(self._ip() or "no net", 0, 16)
        fb.text("MQTT " + self._mqtt(), 0, 24)
        fb.text(uptime(uptime_ms()), 0, 32)
        fb.text("ERR 0x%02x" % fault if fault else self._estimate() or "", 0, 40)
        fb.text("-" if rate is None else "%.1f %s/min" % (rate, self.unit), 0, 48)

    def refresh(self):
        """Draw and send (every second); an absent display is retried by the driver,
        and not drawn for meanwhile."""
        if not self.oled.due():
            return False
        self.draw()
        return self.oled.show()
