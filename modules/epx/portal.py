# The captive portal's HTTP server: one page with the networks the device sees and the
# keys that take it to a broker, checked with config.txt's own parsers and described by
# their declarations (config.key's doc: label, unit, example, help). A good submission
# goes to the `submit` callback (which stores it and reboots); a bad one comes back with
# each error beside its field, every value kept. Requests are bounded: one buffer per
# connection slot, a deadline for the whole request, Connection: close after every answer;
# a page is rendered twice into that buffer (its length, then its bytes), never whole.
# A browser opens up to six connections to a host, most of them idle (preconnects): each
# waits for its request's first bytes before it takes a slot, and for a free slot then;
# a seventh gets 503, so that the portal keeps at most 7 of lwIP's 10 sockets (the DNS
# responder, MQTT and the time server need theirs).
import asyncio
from asyncio import core
from micropython import const

from epx import config, log

PORT = const(80)
_SLOTS = const(2)  # requests served at once; more wait for a slot
_CONNECTIONS = const(6)  # connections open at once (a browser's to one host); more get 503
_REQUEST_MAX = const(3072)  # request line, header and body
_REQUEST_MS = const(10000)  # a request not complete by then gets 408
_SCAN_MS = const(60000)  # scan results are this fresh at most
_DRAIN_READS = const(8)  # buffers of unread request taken before closing

# (legend, keys): what the page offers besides the profile's required keys.
GROUPS = (
    ("WiFi", ("ssid", "password")),
    ("MQTT", ("mqttbroker", "mqttport", "mqttuser", "mqttpassword")),
    ("This device", ("mqttname", "ota_key")),
)
SECRET = ("password", "mqttpassword", "ota_key", "appassword")
OPEN = "open"  # the form's "open network" switch: password None
MORE = "More settings"  # the keys that have a default, folded away
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
    field (None: nothing); name and mac (bytes): the device's, shown on the page; ap_mac:
    the access point's, which names it after the new mqttname."""

    def __init__(self, scan, submit, password=None, name="", mac=b"", ap_mac=None):
        self._scan = scan
        self._submit = submit
        self._password = password
        self._name = name
        self._mac = mac
        self._ap_mac = ap_mac
        self._networks = []
        self._scanned = None
        self._bufs = [bytearray(_REQUEST_MAX) for _ in range(_SLOTS)]
        self._free = list(range(_SLOTS))
        self._freed = asyncio.Event()
        self._open = 0
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

    def groups(self):
        """[(legend, [key, ...])]: the declared keys of GROUPS, the profile's required keys
        (its name the legend), then MORE: every other key that has a default."""
        from epx.version import PROFILE

        out = []
        have = set()
        for legend, names in GROUPS:
            names = [n for n in names if n in config._keys]
            have.update(names)
            out.append((legend, names))
        keys = config._keys.items()
        extra = [n for n, k in keys if k.required and n not in have]
        if extra:
            out.append(("%s settings" % PROFILE, extra))
        more = [n for n, k in keys if not k.required and n not in have and shown(k.default)]
        if more:
            out.append((MORE, more))
        return out

    def fields(self):
        """Every field's key, in the page's order."""
        return [n for _, names in self.groups() for n in names]

    # --- one connection ----------------------------------------------------------------

    async def _client(self, reader, writer):
        self._open += 1
        try:
            if self._open > _CONNECTIONS:
                self.refused += 1
                return await self._close(writer, self._spare,
                                         *self._page_error(503, "busy: try again"))
            try:
                slot = await asyncio.wait_for_ms(self._slot(reader), _REQUEST_MS)
            except asyncio.TimeoutError:
                return await self._close(writer, self._spare, *self._timed_out())
            try:
                await self._serve(reader, writer, self._bufs[slot])
            finally:
                self._free.append(slot)
                self._freed.set()
        finally:
            self._open -= 1

    async def _slot(self, reader):
        # A slot once the request has begun (an idle connection takes none) and one is free.
        await _readable(reader)
        while not self._free:
            self._freed.clear()
            await self._freed.wait()
        return self._free.pop()

    def _timed_out(self):
        return self._page_error(408, "the request did not end in %d s" % (_REQUEST_MS // 1000))

    async def _serve(self, reader, writer, buf):
        try:
            status, body = await asyncio.wait_for_ms(self._request(reader, buf), _REQUEST_MS)
        except asyncio.TimeoutError:
            status, body = self._timed_out()
        except BadRequest as e:
            status, body = self._page_error(e.status, e.text)
        await self._close(writer, buf, status, body)

    async def _close(self, writer, buf, status, body):
        # body: bytes, or a function giving the page's pieces (str), rendered twice: once
        # for its length, once into buf, sent each time buf is full.
        headers = "Location: /\r\n" if status == 302 else ""
        if callable(body):
            length = 0
            for piece in body():
                length += len(piece.encode())
        else:
            length = len(body)
        try:
            writer.write(("HTTP/1.0 %d %s\r\nContent-Type: text/html; charset=utf-8\r\n"
                          "Content-Length: %d\r\nCache-Control: no-store\r\n%s"
                          "Connection: close\r\n\r\n" % (
                              status, _REASONS[status], length, headers)).encode())
            if callable(body):
                await asyncio.wait_for_ms(self._send(writer, buf, body()), _REQUEST_MS)
            else:
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

    async def _send(self, writer, buf, pieces):
        mv = memoryview(buf)
        fill = 0
        for piece in pieces:
            data = memoryview(piece.encode())
            while len(data):
                n = min(len(data), len(buf) - fill)
                mv[fill:fill + n] = data[:n]
                fill += n
                data = data[n:]
                if fill == len(buf):
                    writer.write(buf)  # what the socket does not take now is copied
                    await writer.drain()
                    fill = 0
        writer.write(mv[:fill])
        await writer.drain()

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
        known = set(fields)
        known.add(AUTH)
        known.add(OPEN)
        for name in form:
            if name not in known:
                raise BadRequest(400, "no field %s" % escape(name[:32]))
        errors = {}
        if self._password is not None and not _same(form.get(AUTH, ""), self._password):
            errors[AUTH] = "the access point's password is needed to change this device"
            return 403, self._page(form, errors)
        lines, current = read_config()
        if form.get(OPEN):
            form["password"] = "None"
        changes = {}
        for name in fields:
            k = config._keys[name]
            if name not in form:  # not sent: its line stays as it is
                if k.required and name not in current:
                    errors[name] = "required"
                continue
            value = form[name].strip()
            if not value:
                if name in SECRET and name in current:
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
            for e in self._submit(merge(lines, changes)):
                key = _key_of(e)
                key = key if key in known else "_"
                errors[key] = errors[key] + "; " + e if key in errors else e
        if errors:
            return 400, self._page(form, errors)
        log.info("portal: config.txt submitted")
        for name, value in changes.items():
            current[name] = value
        return 200, lambda: self._done(current)

    def networks(self):
        from time import ticks_diff, ticks_ms

        if self._scanned is None or ticks_diff(ticks_ms(), self._scanned) > _SCAN_MS:
            self._networks = self._scan()
            self._scanned = ticks_ms()
        return self._networks

    def _page(self, form=None, errors=None):
        """The setup page's pieces (a function: _close renders it twice)."""
        form = form or {}
        errors = errors or {}
        current = read_config()[1]
        return lambda: self._render(form, errors, current)

    def _render(self, form, errors, current):
        from epx.version import PROFILE, VERSION

        yield _HEAD
        yield "<h1>Set up %s</h1><p id=device>Profile %s, firmware %s<br>MAC %s</p>" % (
            escape(self._name or PROFILE), escape(PROFILE), escape(VERSION),
            ":".join("%02x" % b for b in self._mac))
        if "_" in errors:
            yield "<p class=err id=err-config role=alert>%s</p>" % escape(errors["_"])
        if errors:
            yield "<p class=err role=alert>Nothing was saved: see the fields marked below.</p>"
        yield '<form id=f method=post action="/" novalidate>'
        for legend, names in self.groups():
            folded = legend == MORE
            if folded:
                yield "<details id=more%s><summary>%s</summary>" % (
                    " open" if any(n in errors for n in names) else "", MORE)
                legend = "Optional: empty is the default"
            yield "<fieldset><legend>%s</legend>" % escape(legend)
            if names and names[0] == "ssid":
                yield from self._networks_list()
            for name in names:
                yield from self._field(name, form, current, errors)
                if name == "ssid":
                    if form:
                        on = bool(form.get(OPEN))
                    else:
                        on = current.get("password") == "None"
                    yield ('<p class=sw><input type=checkbox id=open name=open value=1%s>'
                           '<label for=open>Open network (no password)</label></p>') % (
                        " checked" if on else "")
            yield "</fieldset>"
            if folded:
                yield "</details>"
        if self._password is not None:
            yield "<fieldset><legend>Allowed to change it?</legend>"
            yield from self._field(AUTH, {}, {}, errors)
            yield "</fieldset>"
        yield "<button type=submit id=save>Save and restart</button></form>"
        yield _SCRIPT

    def _networks_list(self):
        nets = self.networks()
        yield "<p class=help id=nets-help>Tap your network, or type its name.</p><ul id=networks>"
        for ssid, rssi, open_ in nets:
            e = escape(ssid)
            yield ('<li><button type=button class=net data-ssid="%s" data-open=%d>'
                   '<span>%s</span> <small>%d dBm, %s</small></button></li>' % (
                       e, open_, e, rssi, "open" if open_ else "secured"))
        if not nets:
            yield "<li>No network found.</li>"
        yield "</ul>"

    def _field(self, name, form, current, errors):
        k = config._keys[name]
        label, unit, example, help_ = k.about(name)
        secret = name in SECRET
        if secret:  # kept after an error, never read back from config.txt
            value = escape(form.get(name, ""))
        else:
            value = escape(form.get(name, current.get(name, "")))
        required = k.required or name == AUTH
        default = "" if required else shown(k.default)
        err = errors.get(name)
        yield '<div class=field><label for="%s">%s%s%s</label>' % (
            name, escape(label), ' <span class=unit>(%s)</span>' % escape(unit) if unit else "",
            ' <span class=req>required</span>' if required else "")
        yield '<p class=help id="h-%s">%s%s%s</p>' % (
            name, escape(help_), ". Default: %s" % escape(default) if default else "",
            ". Set: leave empty to keep" if secret and name in current else "")
        yield '<div class=row><input id="%s" name="%s" type=%s value="%s"' % (
            name, name, "password" if secret else "text", value)
        if (example or default) and not secret:
            yield ' placeholder="%s"' % escape("e.g. " + example if example else default)
        yield (' autocomplete=off autocapitalize=none spellcheck=false '
               'aria-describedby="h-%s%s"%s%s>' % (
                   name, " err-%s" % name if err else "", " required" if required else "",
                   " aria-invalid=true" if err else ""))
        if secret:
            yield ('<button type=button class=show data-for="%s" aria-controls="%s" '
                   'aria-pressed=false>Show</button>' % (name, name))
        yield "</div>"
        if err:
            yield '<p class=err id="err-%s">%s</p>' % (name, escape(err))
        yield "</div>"

    def _done(self, values):
        name = values.get("mqttname", "")
        yield _HEAD
        yield ("<h1>Saved</h1><div class=card><p id=done>The device restarts and joins %s. This access "
               "point closes: join your own network again.</p>" % escape(values.get("ssid", "")))
        yield "<h2>Where to find it</h2><ul id=where>"
        yield ("<li>On the MQTT broker %s as <b>%s</b>: stat/%s/LWT says Online within a "
               "minute.</li>" % (escape(values.get("mqttbroker", "")), escape(name), escape(name)))
        ha = config._keys.get("homeassistant")
        if ha is None or ha.value:
            yield ("<li>In Home Assistant (its MQTT integration): Settings, Devices &amp; "
                   "services, MQTT, the device <b>%s</b>.</li>" % escape(name))
        yield "</ul><h2>If it does not appear</h2><p id=fallback>"
        if self._password is not None:
            trial = config._keys.get("configtrial")
            yield ("The change is on trial: without the broker within %s min the device goes "
                   "back to the config it had." % (trial.value if trial else 5))
        else:
            from epx import ap

            fallback = config._keys.get("apfallback")
            again = ap.essid(name, self._ap_mac) if name and self._ap_mac else self._name
            yield ("Without its network for %s min the device opens its access point "
                   "again: join %s and check the values." % (
                       fallback.value if fallback else 5, escape(again)))
        yield "</p></div></body></html>"

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


def shown(value):
    """A parsed value as config.txt says it: the defaults the page and the docs show."""
    if value is None or value == "":
        return ""
    if value is True or value is False:
        return "1" if value else "0"
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return "%s:%d" % value if value[1] else value[0]
    if isinstance(value, (list, tuple)):
        return ",".join(shown(v) for v in value)
    return str(value)


_HEAD = ('<!DOCTYPE html><html lang=en><head><meta charset=utf-8>'
         '<meta name=viewport content="width=device-width,initial-scale=1">'
         '<title>epx setup</title><style>'
         '*{box-sizing:border-box}'
         'body{font:16px/1.45 system-ui,sans-serif;max-width:34em;margin:0 auto;'
         'padding:.75em;color:#1d1d1f;background:#eef0f3}'
         'h1{font-size:1.5em;margin:.3em 0 0}h2{font-size:1.15em;margin:1.2em 0 .3em}'
         '#device{color:#444;margin:.2em 0 1em;font-size:.9em}'
         'fieldset,.card{border:0;background:#fff;border-radius:.8em;padding:.3em 1em 1em;'
         'margin:0 0 1em;box-shadow:0 1px 3px #0002}'
         'legend{float:left;width:100%;font-weight:700;font-size:1.1em;padding:.6em 0 0}'
         '.field{clear:both;margin-top:1em}label{font-weight:600}'
         '.help{margin:.1em 0 .3em;color:#444;font-size:.88em}'
         '.row{display:flex;gap:.4em;align-items:center}'
         '.row input{flex:1;min-width:0}'
         'input[type=text],input[type=password]{font:inherit;padding:.6em;'
         'border:1px solid #767676;border-radius:.4em;background:#fff}'
         'input[aria-invalid]{border:2px solid #b3261e}'
         '.unit{color:#444;font-weight:400}'
         '.req{font-size:.8em;font-weight:400;color:#fff;background:#555;padding:0 .4em;'
         'border-radius:.3em;margin-left:.3em}'
         '.err{color:#b3261e;font-weight:600;margin:.3em 0}'
         'button{font:inherit;padding:.55em .9em;border-radius:.4em;border:1px solid #767676;'
         'background:#f7f7f7;color:#1d1d1f}'
         '#save{width:100%;background:#0b57d0;border-color:#0b57d0;color:#fff;font-weight:700;'
         'padding:.8em}'
         '#networks{list-style:none;padding:0;margin:0 0 .5em;clear:both}'
         '.net{width:100%;display:flex;justify-content:space-between;text-align:left;'
         'margin:.25em 0;background:#fff}.net small{color:#444}'
         '.sw{margin:.8em 0 0;display:flex;gap:.5em;align-items:center}'
         '.sw input{width:1.3em;height:1.3em}'
         'summary{font-weight:700;padding:.6em 0;cursor:pointer}'
         '</style></head><body>')
_SCRIPT = ('<script>var f=document.getElementById("f"),o=document.getElementById("open"),'
           'p=document.getElementById("password");'
           'function sync(){if(o&&p){p.disabled=o.checked}}'
           'document.querySelectorAll(".net").forEach(function(b){b.onclick=function(){'
           'f.ssid.value=b.dataset.ssid;if(o){o.checked=b.dataset.open=="1";sync()}'
           '(o&&!o.checked&&p?p:f.ssid).focus()}});'
           'document.querySelectorAll(".show").forEach(function(b){b.onclick=function(){'
           'var i=document.getElementById(b.dataset.for),s=i.type=="password";'
           'i.type=s?"text":"password";b.textContent=s?"Hide":"Show";'
           'b.setAttribute("aria-pressed",s)}});'
           'if(o){o.onchange=sync;sync()}</script></body></html>')


def _readable(stream):
    # Wait until the stream has bytes (or its end) to read, reading none.
    yield core._io_queue.queue_read(stream.s)
