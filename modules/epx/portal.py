# The captive portal's HTTP server: one page with the networks the device sees and the
# keys that take it to a broker, checked with config.txt's own parsers. A good submission
# goes to the `submit` callback (which stores it and reboots); a bad one comes back with
# each error beside its field. Requests are bounded: one buffer per connection slot, a
# deadline for the whole request, Connection: close after every answer.
import asyncio
from micropython import const

from epx import config, log

PORT = const(80)
_SLOTS = const(2)  # connections served at once; more get 503
_REQUEST_MAX = const(3072)  # request line, header and body
_REQUEST_MS = const(10000)  # a request not complete by then gets 408
_SCAN_MS = const(60000)  # scan results are this fresh at most
_DRAIN_READS = const(8)  # buffers of unread request taken before closing

# (key, label, secret): the keys the page offers besides the profile's required ones.
CORE = (
    ("ssid", "WiFi network", False),
    ("password", "WiFi password (None: an open network)", True),
    ("mqttbroker", "MQTT broker host", False),
    ("mqttport", "MQTT broker port", False),
    ("mqttuser", "MQTT user", False),
    ("mqttpassword", "MQTT password", True),
    ("mqttname", "Device name (MQTT)", False),
    ("ota_key", "OTA key", True),
)
AUTH = "appassword"  # the form field a configured device requires

_REASONS = {200: "OK", 302: "Found", 400: "Bad Request", 403: "Forbidden",
            404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
            411: "Length Required", 413: "Content Too Large",
            431: "Request Header Fields Too Large",
            503: "Service Unavailable"}


class BadRequest(Exception):
    def __init__(self, status, text):
        self.status = status
        self.text = text


def escape(text):
    """Text for HTML content and quoted attribute values."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def unquote(data):
    """application/x-www-form-urlencoded bytes -> bytes; ValueError on a bad % escape."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        c = data[i]
        if c == 0x25:  # %
            two = bytes(data[i + 1:i + 3])
            if len(two) != 2 or any(d not in b"0123456789abcdefABCDEF" for d in two):
                raise ValueError("bad %-escape")
            out.append(int(two, 16))
            i += 3
        else:
            out.append(0x20 if c == 0x2B else c)  # + is a space
            i += 1
    return bytes(out)


def parse_form(body):
    """{name: str} of a urlencoded body; BadRequest for bad escapes, non-UTF-8, repeats."""
    fields = {}
    for part in bytes(body).split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        try:
            name = unquote(name).decode()
            value = unquote(value).decode()
        except ValueError:  # UnicodeError is one
            raise BadRequest(400, "the form is not UTF-8 text in %-escapes")
        if name in fields:
            raise BadRequest(400, "field %s repeated" % escape(name[:32]))
        fields[name] = value
    return fields


def read_config(path=config.FILE):
    """The lines of config.txt ([] when there is none) and {key: raw value}."""
    lines = []
    values = {}
    try:
        with open(path) as f:
            for line in f:
                lines.append(line.rstrip("\r\n"))
                parts = line.strip().split(None, 1)
                if parts and parts[0][0] != "#":
                    values[parts[0]] = parts[1] if len(parts) > 1 else ""
    except (OSError, UnicodeError):
        pass
    return lines, values


def merge(lines, changes):
    """config.txt's text with `changes` ({key: value, or None to drop the line}) applied:
    a key's line rewritten where it was, new keys at the end, the rest kept."""
    out = []
    done = set()
    for line in lines:
        parts = line.strip().split(None, 1)
        name = parts[0] if parts else ""
        if name in changes:
            if name not in done and changes[name] is not None:
                out.append("%s %s" % (name, changes[name]))
            done.add(name)
        else:
            out.append(line)
    for name, value in changes.items():
        if name not in done and value is not None:
            out.append("%s %s" % (name, value))
    return "\n".join(out) + "\n"


def _control(text):
    for c in text:
        if c < " " or "\x7f" <= c <= "\x9f":
            return True
    return False


class Portal:
    """The HTTP server on port 80 until close(). scan() -> [(ssid, rssi, open)];
    submit(text) checks a whole config.txt text and stores it (then reboots), or returns
    its errors; password: what a configured device requires in the form's appassword
    field (None: nothing)."""

    def __init__(self, scan, submit, password=None):
        self._scan = scan
        self._submit = submit
        self._password = password
        self._networks = []
        self._scanned = None
        self._bufs = [bytearray(_REQUEST_MAX) for _ in range(_SLOTS)]
        self._free = list(range(_SLOTS))
        self._spare = bytearray(256)  # for draining a refused connection
        self.served = 0
        self.refused = 0
        self._server = None

    async def start(self):
        self._server = await asyncio.start_server(self._client, "0.0.0.0", PORT, backlog=_SLOTS)
        return self

    def close(self):
        if self._server is not None:
            self._server.close()
            self._server = None

    def fields(self):
        """(key, label, secret) of every field: the core ones, then the profile's required."""
        keys = [f for f in CORE if f[0] in config._keys]
        have = set(f[0] for f in CORE)
        for name, k in config._keys.items():
            if k.required and name not in have:
                keys.append((name, name, False))
        return keys

    # --- one connection ----------------------------------------------------------------

    async def _client(self, reader, writer):
        if not self._free:
            self.refused += 1
            await self._close(writer, self._spare, *self._page_error(503, "busy: try again"))
            return
        slot = self._free.pop()
        try:
            try:
                status, body = await asyncio.wait_for_ms(
                    self._request(reader, self._bufs[slot]), _REQUEST_MS)
            except asyncio.TimeoutError:
                status, body = self._page_error(408, "the request did not end in %d s" % (
                    _REQUEST_MS // 1000))
            except BadRequest as e:
                status, body = self._page_error(e.status, e.text)
            await self._close(writer, self._bufs[slot], status, body)
        finally:
            self._free.append(slot)

    async def _close(self, writer, buf, status, body):
        headers = "Location: /\r\n" if status == 302 else ""
        try:
            writer.write(("HTTP/1.0 %d %s\r\nContent-Type: text/html; charset=utf-8\r\n"
                          "Content-Length: %d\r\nCache-Control: no-store\r\n%s"
                          "Connection: close\r\n\r\n" % (
                              status, _REASONS[status], len(body), headers)).encode())
            writer.write(body)
            await asyncio.wait_for_ms(writer.drain(), _REQUEST_MS)
        except (OSError, asyncio.TimeoutError):
            pass  # the station left
        # Closed with unread bytes, TCP resets the connection and the answer with it: take
        # what the station has sent (a refused request's rest), without waiting for more.
        for _ in range(_DRAIN_READS):
            try:
                if not writer.s.readinto(buf):
                    break
            except OSError:
                break
        try:
            await writer.wait_closed()
        except OSError:
            pass
        self.served += 1

    async def _request(self, reader, buf):
        mv = memoryview(buf)
        fill = 0
        while True:
            end = buf.find(b"\r\n\r\n", 0, fill)
            if end >= 0:
                break
            if fill == len(buf):
                raise BadRequest(431, "the request header is longer than %d bytes" % len(buf))
            n = await reader.readinto(mv[fill:])
            if not n:
                raise BadRequest(400, "the request ended in its header")
            fill += n
        try:
            head = bytes(mv[:end]).decode()
        except UnicodeError:
            raise BadRequest(400, "the request header is not UTF-8 text")
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or _control(head.replace("\r\n", "")):
            raise BadRequest(400, "not an HTTP/1 request line")
        method, path = parts[0], parts[1]
        length = None
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            name = name.lower()
            if not sep or not name or " " in name or "\t" in name:
                raise BadRequest(400, "a header line without a name")
            value = value.strip()
            if name == "content-length":
                if length is not None or not value.isdigit() or len(value) > 6:
                    raise BadRequest(400, "a bad Content-Length")
                length = int(value)
            elif name == "transfer-encoding":
                raise BadRequest(411, "a form needs a Content-Length, not a Transfer-Encoding")
        if method == "GET":
            if path != "/":  # a phone's captive portal check: send it to the page
                return 302, b""
            return 200, self._page()
        if method != "POST":
            raise BadRequest(405, "only GET and POST")
        if path != "/":
            raise BadRequest(404, "nothing there")
        if length is None:
            raise BadRequest(411, "a form needs a Content-Length")
        start = end + 4
        if start + length > len(buf):
            raise BadRequest(413, "the form is longer than %d bytes" % (len(buf) - start))
        while fill < start + length:
            n = await reader.readinto(mv[fill:start + length])
            if not n:
                raise BadRequest(400, "the form ended after %d of %d bytes" % (
                    fill - start, length))
            fill += n
        return self._post(parse_form(mv[start:start + length]))

    # --- the form ------------------------------------------------------------------------

    def _post(self, form):
        fields = self.fields()
        known = set(f[0] for f in fields)
        known.add(AUTH)
        for name in form:
            if name not in known:
                raise BadRequest(400, "no field %s" % escape(name[:32]))
        errors = {}
        if self._password is not None and not _same(form.get(AUTH, ""), self._password):
            errors[AUTH] = "the access point's password is needed to change this device"
            return 403, self._page(form, errors)
        lines, current = read_config()
        changes = {}
        for name, _, secret in fields:
            value = form.get(name, "").strip()
            k = config._keys[name]
            if not value:
                if secret and name in current:
                    continue  # an empty secret field keeps the secret
                if k.required:
                    errors[name] = "required"
                else:
                    changes[name] = None
                continue
            if _control(value):  # a line break would be a line of its own in config.txt
                errors[name] = "control characters are not allowed"
                continue
            try:
                k.parse(value)
            except ValueError as e:
                errors[name] = str(e)
                continue
            changes[name] = value
        if not errors:
            # The whole file checked and stored by submit(); what it refuses, it says why.
            names = set(f[0] for f in fields)
            for e in self._submit(merge(lines, changes)):
                key = _key_of(e)
                key = key if key in names else "_"
                errors[key] = errors[key] + "; " + e if key in errors else e
        if errors:
            return 400, self._page(form, errors)
        log.info("portal: config.txt submitted")
        return 200, self._page_done(changes.get("ssid") or current.get("ssid", ""))

    def networks(self):
        from time import ticks_diff, ticks_ms

        if self._scanned is None or ticks_diff(ticks_ms(), self._scanned) > _SCAN_MS:
            self._networks = self._scan()
            self._scanned = ticks_ms()
        return self._networks

    def _page(self, form=None, errors=None):
        form = form or {}
        errors = errors or {}
        _, current = read_config()
        out = [_HEAD, "<h1>Set up this device</h1>"]
        if "_" in errors:
            out.append('<p class=err id=err-config>%s</p>' % escape(errors["_"]))
        out.append("<h2>WiFi networks in range</h2><ul id=networks>")
        nets = self.networks()
        for ssid, rssi, open_ in nets:
            out.append("<li>%s, %d dBm%s</li>" % (escape(ssid), rssi, ", open" if open_ else ""))
        out.append("</ul><datalist id=nets>")
        for net in nets:
            out.append('<option value="%s">' % escape(net[0]))
        out.append('</datalist><form id=f method=post action="/">')
        for name, label, secret in self.fields():
            out.append(self._field(name, label, secret, form, current, errors))
        if self._password is not None:
            out.append(self._field(AUTH, "Access point password (required)", True, {}, {},
                                   errors))
        out.append("<button type=submit>Save and restart</button></form></body></html>")
        return "".join(out).encode()

    def _field(self, name, label, secret, form, current, errors):
        if secret:
            value = ""
            hint = ' placeholder="(set: leave empty to keep)"' if name in current else ""
        else:
            value = escape(form.get(name, current.get(name, "")))
            hint = ""
        err = errors.get(name)
        if name == "ssid":
            hint += " list=nets"
        return ('<p><label for="%s">%s</label><br><input id="%s" name="%s" type=%s '
                'value="%s"%s>%s</p>' % (
                    name, escape(label), name, name, "password" if secret else "text", value,
                    hint, '<br><span class=err id="err-%s">%s</span>' % (name, escape(err))
                    if err else ""))

    def _page_done(self, ssid):
        return ("%s<h1>Saved</h1><p id=done>The device restarts and joins %s.</p>"
                "</body></html>" % (_HEAD, escape(ssid))).encode()

    def _page_error(self, status, text):
        if status == 302:
            return 302, b""
        return status, ("%s<h1>%d %s</h1><p id=error>%s</p><p><a href=\"/\">Back</a></p>"
                        "</body></html>" % (_HEAD, status, _REASONS[status], text)).encode()


def _key_of(error):
    # config.txt:3: mqttport: ... -> mqttport
    parts = error.split(": ")
    return parts[1] if len(parts) > 2 and " " not in parts[1] else None


def _same(a, b):
    # Compared in time independent of where they differ.
    a = a.encode()
    b = b.encode()
    diff = len(a) ^ len(b)
    for i in range(len(a)):
        diff |= a[i] ^ b[i % len(b)]
    return diff == 0


_HEAD = ('<!DOCTYPE html><html><head><meta charset=utf-8>'
         '<meta name=viewport content="width=device-width,initial-scale=1">'
         '<title>epx setup</title><style>body{font-family:sans-serif;max-width:30em;margin:1em}'
         '.err{color:#b00}</style></head><body>')
