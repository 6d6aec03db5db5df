# Energy per local day: Today (Wh since local midnight) and Yesterday, in NVS so that a
# reboot loses nothing. The day is the zone's (epx.tz: daylight saving included, a day of
# 23 or 25 hours). At midnight the part of the open window already counted goes to the
# day that ends, and is taken off the next close.


class Days:
    def __init__(self, nv, zone):
        self._nv = nv
        self._zone = zone  # .local(t): local seconds
        self.day = nv.get_int("day")  # local day number (days since the epoch), None: unknown
        self.today = nv.get_int("today", 0)  # closed windows since midnight, less what
        # the window open at midnight had counted before it
        y = nv.get_int("yesterday", -1)
        self.yesterday = None if y < 0 else y  # None: not known (off all of that day)

    def closed(self, wh):
        """An hour window closed with wh."""
        self.today += wh
        self._nv.set_int("today", self.today)

    def tick(self, now_s, open_wh):
        """now_s: the wall clock (None while not known); open_wh: the open window so far."""
        if now_s is None:
            return
        day = self._zone.local(now_s) // 86400
        if day == self.day:
            return
        if self.day is not None:  # a new day: the one just over is yesterday
            self.yesterday = self.today + open_wh if day == self.day + 1 else None
            self._nv.set_int("yesterday", -1 if self.yesterday is None else self.yesterday)
            self.today = -open_wh
        self.day = day
        self._nv.set_int("today", self.today)
        self._nv.set_int("day", day)

    def today_wh(self, open_wh):
        """Wh since local midnight, None while the date is not known."""
        return self.today + open_wh if self.day is not None else None
