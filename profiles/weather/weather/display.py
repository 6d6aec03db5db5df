# The SSD1306 page: the three values (or "-" when withdrawn), altitude from the pressure
# (1013 hPa at sea level, as the original), IP or "no net", MQTT state, malfunction code.
SEA_LEVEL_HPA = 1013.0


def altitude(hpa):
    return 44330 * (1 - (hpa / SEA_LEVEL_HPA) ** (1 / 5.255))


def _value(fmt, v):
    return "-" if v is None else fmt % v


class Page:
    def __init__(self, oled, station, ip, mqtt_state):
        self.oled = oled
        self.station = station
        self._ip = ip
        self._mqtt = mqtt_state

    def refresh(self):
        """Draw and send; an absent display is retried by the driver."""
        fb = self.oled
        st = self.station
        fb.fill(0)
        fb.text(_value("%.1f C", st.temperature), 0, 0)
        fb.text(_value("%.1f %%", st.humidity), 0, 8)
        fb.text(_value("%.1f hPa", st.pressure), 0, 16)
        fb.text(_value("alt %.0f m", None if st.pressure is None else altitude(st.pressure)), 0, 24)
        fb.text(self._ip() or "no net", 0, 40)
        fb.text("MQTT " + self._mqtt(), 0, 48)
        if st.malfunction:
            fb.text("ERR 0x%02x" % st.malfunction, 0, 56)
        return fb.show()
