# A POSIX TZ string, as ESPHome's `timezone` and glibc's TZ take it:
#     CET-1CEST,M3.5.0,M10.5.0/3      std name, offset (hours west of UTC), dst name[, its
#                                     offset], then the rules: Mm.w.d (week w, 5 = last, of
#                                     month m, weekday d, 0 = Sunday), Jn (1-365, no Feb 29)
#                                     or n (0-365), each with /time (local, 02:00 if none).
# Times are the device's epoch seconds; years and weekdays come from time.gmtime/mktime,
# so the same code serves an epoch of 1970 or of 2000.
import time

_DAY = const(86400)


class Zone:
    def __init__(self, text):
        self.text = text
        s = _Scanner(text)
        s.name()
        self.std = -s.offset(True)  # seconds east of UTC
        self.dst = None
        if s.more() and s.peek() != ",":
            s.name()
            o = s.offset(False)
            self.dst = self.std + 3600 if o is None else -o
            if not s.more():  # no rules: as glibc, the US rules
                s = _Scanner(",M3.2.0,M11.1.0")
            self.start = s.rule()
            self.end = s.rule()
        if s.more():
            raise ValueError("%s: unexpected %r" % (text, s.rest()))

    def utcoffset(self, t):
        """Seconds east of UTC in force at t (device epoch seconds, UTC)."""
        if self.dst is None:
            return self.std
        year = time.gmtime(t + self.std)[0]
        start = _when(year, self.start) - self.std  # the change to summer time, in std time
        end = _when(year, self.end) - self.dst  # the change back, in summer time
        if start < end:
            summer = start <= t < end
        else:  # southern hemisphere: summer across the new year
            summer = not end <= t < start
        return self.dst if summer else self.std

    def local(self, t):
        return t + self.utcoffset(t)


def _leap(y):
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def _month_days(y, m):
    return 29 if m == 2 and _leap(y) else (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[m - 1]


def _when(year, rule):
    # Local seconds (device epoch) at which the rule falls in that year.
    kind, a, b, c, at = rule
    jan1 = time.mktime((year, 1, 1, 0, 0, 0, 0, 0))
    if kind == "J":
        day = jan1 + (a - 1 + (1 if _leap(year) and a >= 60 else 0)) * _DAY
    elif kind == "n":
        day = jan1 + a * _DAY
    else:  # Mm.w.d
        first = time.mktime((year, a, 1, 0, 0, 0, 0, 0))
        weekday = (time.gmtime(first)[6] + 1) % 7  # gmtime: Monday 0; POSIX: Sunday 0
        d = 1 + (c - weekday) % 7 + (b - 1) * 7
        while d > _month_days(year, a):
            d -= 7
        day = first + (d - 1) * _DAY
    return day + at


class _Scanner:
    def __init__(self, text):
        self.text = text
        self.i = 0

    def more(self):
        return self.i < len(self.text)

    def peek(self):
        return self.text[self.i]

    def rest(self):
        return self.text[self.i:]

    def _fail(self, what):
        raise ValueError("%s: %s expected at %r" % (self.text, what, self.rest()))

    def name(self):
        t, i = self.text, self.i
        if self.more() and t[i] == "<":
            j = t.find(">", i)
            if j < 0:
                self._fail("'>'")
            self.i = j + 1
            return
        j = i
        while j < len(t) and t[j].isalpha():
            j += 1
        if j - i < 3:
            self._fail("a zone name of 3 letters or more")
        self.i = j

    def _number(self):
        t, j = self.text, self.i
        while j < len(t) and t[j].isdigit():
            j += 1
        if j == self.i:
            self._fail("a number")
        n = int(t[self.i:j])
        self.i = j
        return n

    def offset(self, required, limit=24):
        # [+-]hh[:mm[:ss]] -> seconds (positive west of UTC, as POSIX writes it)
        if not self.more() or not (self.peek().isdigit() or self.peek() in "+-"):
            if required:
                self._fail("an offset")
            return None
        sign = 1
        if self.peek() in "+-":
            sign = -1 if self.peek() == "-" else 1
            self.i += 1
        s = self._number() * 3600
        if s > limit * 3600:
            self._fail("hours up to %d" % limit)
        for unit in (60, 1):
            if self.more() and self.peek() == ":":
                self.i += 1
                s += self._number() * unit
        return sign * s

    def _expect(self, c):
        if not self.more() or self.peek() != c:
            self._fail(repr(c))
        self.i += 1

    def rule(self):
        self._expect(",")
        if self.more() and self.peek() == "M":
            self.i += 1
            m = self._number()
            self._expect(".")
            w = self._number()
            self._expect(".")
            d = self._number()
            if not (1 <= m <= 12 and 1 <= w <= 5 and 0 <= d <= 6):
                self._fail("Mm.w.d with m 1-12, w 1-5, d 0-6")
            rule = ["M", m, w, d]
        elif self.more() and self.peek() == "J":
            self.i += 1
            n = self._number()
            if not 1 <= n <= 365:
                self._fail("Jn with n 1-365")
            rule = ["J", n, 0, 0]
        else:
            n = self._number()
            if n > 365:
                self._fail("n 0-365")
            rule = ["n", n, 0, 0]
        at = 7200
        if self.more() and self.peek() == "/":
            self.i += 1
            at = self.offset(True, 167)
        return tuple(rule + [at])
