"""The fallback access point and its setup portal (issue 13, part 1), on the real firmware
in the simulated device: the host joins the device's soft AP as a phone would (with its
WPA2 password) and reaches the portal's HTTP server and DNS responder where the simulator
binds them (Device.portal_address(), dns_address()).

- a real browser (the distribution's chromium through selenium and chromium-driver)
  drives the page as a person would: the device's name, profile, version and MAC; the
  networks the device's scan sees, tapped to choose one; the open-network switch; an error
  beside its field with the passwords kept (and shown on request); a good submission that
  says where the device will appear and reboots it onto the simulated WiFi and the test
  broker; a configured device refuses a change without the access point's password;
- the page at a phone's size (390x844) and a desktop's (1280x800): screenshots kept in
  build/artifacts/portal/, no sideways scrolling on the phone, and axe-core (npm, run in
  the page) finds no serious or critical accessibility violation;
- DNS: every A query, whatever the name, is answered with the access point's address
  (encoded and decoded by dnslib, an independent implementation of RFC 1035);
- 1,000 malformed requests (seeded) each get a clear 4xx answer and leave the device
  serving, on its first boot, with its config untouched.
"""

import json
import random
import re
import socket
from pathlib import Path

import pytest

from browserkit import browser  # noqa: F401 (the fixture)
from devconfig import config_text
from epx.sim.net import read_until_closed

AP_PASSWORD = "portal-pass-42"
AP_IP = "192.168.4.1"  # ESP-IDF's soft AP address (esp_netif default for WIFI_AP)
HOME = {"ssid": "home-net", "password": "correct horse battery", "channel": 6, "rssi": -48}
NEIGHBOUR = {"ssid": "neighbour", "password": "not-yours-123", "channel": 11, "rssi": -80}
CAFE = {"ssid": "cafe-free", "password": None, "channel": 1, "rssi": -67}
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "build" / "artifacts" / "portal"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"  # ci/setup.sh (package.json)
NETWORK_DELAY_MS = 13000  # app's network start (12 s) and a second


def open_portal(dev, configured=False):
    """Boot `dev` until its access point is open; join it. The AP's name."""
    dev.wait_boot(1)
    mark = dev.console_mark()
    dev.advance(NETWORK_DELAY_MS)
    if configured:  # apfallback 1: a minute without the network, and a check period
        dev.advance(70000)
    name = dev.wait_console(r"ap: (\S+) open, portal on http://192\.168\.4\.1/", since=mark).group(1)
    dev.join_ap(AP_PASSWORD)
    return name


def http(addr, raw, timeout=30):
    """Send raw bytes, read the answer until the device closes."""
    with socket.create_connection(addr, timeout=timeout) as s:
        s.sendall(raw)
        return read_until_closed(s)


def status(response):
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", response)
    return int(m.group(1)) if m else None


def form(**fields):
    from urllib.parse import urlencode

    body = urlencode(fields).encode()
    return (b"POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n" % (AP_IP.encode(), len(body))) + body


# --- the soft AP and DNS ---------------------------------------------------------------

def test_unconfigured_device_opens_a_wpa2_access_point_named_after_it(device):
    dev = device("bare", config=f"appassword {AP_PASSWORD}\n")
    name = open_portal(dev)
    tail = dev.mac[-4:]  # the AP's MAC is the station's + 1 (ESP32 efuse MAC layout)
    assert name == "bare-%04x" % ((int(tail, 16) + 1) & 0xFF | int(tail, 16) & 0xFF00)
    with pytest.raises(Exception, match="wrong password"):
        dev.join_ap("not-the-password", station="stranger")


def test_a_browsers_six_connections_are_all_served(device):
    # A browser opens up to six connections to the portal, most of them idle at first
    # (preconnects), and sends its request on whichever: every one is answered with the
    # page however many wait. A seventh while six are open is told to try again: the
    # portal keeps 7 of lwIP's 10 sockets at most (with its DNS responder: 8).
    dev = device("bare", config=f"appassword {AP_PASSWORD}\n")
    open_portal(dev)
    addr = dev.portal_address()
    get = b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % AP_IP.encode()
    conns = [socket.create_connection(addr, timeout=30) for _ in range(6)]
    try:
        extra = http(addr, get)
        assert status(extra) == 503, extra[:200]
        assert dev.call("state")["sockets"] <= 8
        answers = []
        for s in reversed(conns):  # the last one opened asks first
            s.sendall(get)
            answers.append(status(read_until_closed(s)))
        assert answers == [200] * 6
    finally:
        for s in conns:
            s.close()




LWIP_MAX_SOCKETS = 10  # CONFIG_LWIP_MAX_SOCKETS: ESP-IDF's default, the port's sdkconfig keeps it


def test_a_browsers_six_connections_are_served_with_mqtt_up(device, broker, mqtt_watch, ntp):
    """Safe mode (a bad key, the network keys good) keeps MQTT up and opens the access
    point at once. A browser's six connections (idle preconnects, then all asking at once)
    all get the whole page, a seventh is told to try again, and the MQTT session stays the
    same one. With six open
    the device holds 9 of lwIP's 10 sockets (MQTT; the portal's listener and six; the DNS
    responder): one is left for the time server's next round or an update check."""
    name = "den"
    w = mqtt_watch(broker)
    dev = device("bare", config=config_text(broker, name, appassword=AP_PASSWORD,
                                            apfallback="soon", ntpserver=ntp.server))
    open_portal(dev)
    w.wait_for(f"stat/{name}/LWT", lambda p: p == "Online", timeout=60, device=dev)
    dev.wait_console(r"sntp: .* from ")
    addr = dev.portal_address()
    get = b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % AP_IP.encode()
    conns = [socket.create_connection(addr, timeout=30) for _ in range(6)]
    try:
        seventh = http(addr, get)  # answered once the six before it are the device's
        in_use = dev.call("state")["sockets"]
        for s in conns:
            s.sendall(get)
        answers = [read_until_closed(s) for s in conns]
    finally:
        for s in conns:
            s.close()
    assert status(seventh) == 503, seventh[:200]
    assert in_use == LWIP_MAX_SOCKETS - 1
    assert [status(a) for a in answers] == [200] * 6
    assert all(a.rstrip().endswith(b"</html>") for a in answers), [a[-80:] for a in answers]
    mark = w.mark()
    w.publish(f"cmnd/{name}/OTA", "getversion")
    w.wait_for(f"stat/{name}/Log", lambda p: "bare-" in p, since=mark, device=dev)
    assert len(re.findall(r"mqtt: up", dev.output())) == 1, dev.output()
    assert (f"stat/{name}/LWT", b"Offline", False) not in w.messages
    assert len(dev.boots) == 1

def test_dns_answers_every_name_with_the_access_point_address(device):
    dnslib = pytest.importorskip("dnslib", reason="dnslib (test extra) encodes the queries")
    dev = device("bare", config=f"appassword {AP_PASSWORD}\n")
    open_portal(dev)
    addr = dev.dns_address()
    rng = random.Random(13)
    names = ["connectivitycheck.gstatic.com", "captive.apple.com", "www.msftconnecttest.com",
             "example.org"] + ["%s.test" % "".join(rng.choice("abcdefghij") for _ in range(rng.randint(1, 40)))
                               for _ in range(20)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(30)
        for name in names:
            q = dnslib.DNSRecord.question(name, "A")
            s.sendto(q.pack(), addr)
            reply = dnslib.DNSRecord.parse(s.recv(512))
            assert reply.header.id == q.header.id and reply.header.qr == 1
            assert reply.header.rcode == dnslib.RCODE.NOERROR
            assert [str(r.rname).rstrip(".") for r in reply.rr] == [name]
            assert [(r.rtype, str(r.rdata)) for r in reply.rr] == [(dnslib.QTYPE.A, AP_IP)]
            assert str(reply.q.qname).rstrip(".") == name
        # Another type: an answer without records (a phone then asks for A).
        q = dnslib.DNSRecord.question("example.org", "AAAA")
        s.sendto(q.pack(), addr)
        reply = dnslib.DNSRecord.parse(s.recv(512))
        assert reply.header.id == q.header.id and reply.rr == [] and reply.header.rcode == 0
        # A query carrying an EDNS record: the answer is still one A record.
        q = dnslib.DNSRecord.question("edns.test", "A")
        q.add_ar(dnslib.EDNS0())
        s.sendto(q.pack(), addr)
        reply = dnslib.DNSRecord.parse(s.recv(512))
        assert [str(r.rdata) for r in reply.rr] == [AP_IP]
        # Garbage is dropped, and the responder goes on answering.
        for junk in (b"", b"\x00", b"\xff" * 12, q.pack()[:15], bytes(rng.randrange(256) for _ in range(300))):
            s.sendto(junk, addr)
        q = dnslib.DNSRecord.question("after.junk", "A")
        s.sendto(q.pack(), addr)
        reply = dnslib.DNSRecord.parse(s.recv(512))
        assert reply.header.id == q.header.id and [str(r.rdata) for r in reply.rr] == [AP_IP]


def test_profile_required_keys_are_on_the_page(device):
    """The page offers the profile's required keys (h2o: unit, capacity, levelsensors,
    flowpulserate) besides the network ones."""
    dev = device("h2o", config=f"appassword {AP_PASSWORD}\n")
    open_portal(dev)
    page = http(dev.portal_address(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status(page) == 200
    names = set(re.findall(rb'<input id="\w+" name="(\w+)"', page))
    assert {b"ssid", b"password", b"mqttbroker", b"mqttport", b"mqttuser", b"mqttpassword",
            b"mqttname", b"ota_key", b"unit", b"capacity", b"levelsensors", b"flowpulserate"} <= names
    assert b"appassword" not in names  # unconfigured: joining the AP was the proof
    # Each field in words from its declaration (profiles/h2o/h2o/service.py, epx.mqtt): the
    # label, a required mark, the help, the unit, an example; a default where there is one.
    text = page.decode()
    assert re.search(r'<label for="capacity">Tank capacity <span class=unit>\(volume unit\)</span> '
                     r'<span class=req>required</span></label>'
                     r'<p class=help id="h-capacity">The tank&#39;s volume</p>', text)
    assert 'placeholder="e.g. 20,40,60,80,100"' in text and "<span class=unit>(%)</span>" in text
    assert "<span class=unit>(pulses/s per volume unit/min)</span>" in text
    assert '<label for="mqttport">MQTT port</label>' in text  # optional: no mark
    assert re.search(r'<p class=help id="h-maxflow">[^<]*Default: 60</p>', text)
    assert re.search(r'<p class=help id="h-mqttkeepalive">[^<]*Default: 30</p>', text)
    assert "flowpulserate</label>" not in text and ">capacity<" not in text  # no raw names


# --- the browser -------------------------------------------------------------------------

def fill(b, **values):
    from selenium.webdriver.common.by import By

    for name, value in values.items():
        field = b.find_element(By.NAME, name)
        field.clear()
        field.send_keys(str(value))


def submit(b):
    """Click the submit button and wait (bounded) until the answer's page replaced this one."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    page = b.find_element(By.TAG_NAME, "html")
    b.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(b, 60).until(expected_conditions.staleness_of(page))


def text_of(b, css):
    """The text of the element `css` on the page, None if there is none."""
    from selenium.webdriver.common.by import By

    found = b.find_elements(By.CSS_SELECTOR, css)
    return found[0].text if found else None


def wait_text(b, css):
    """The text of the element `css`, once the page has it (a bounded wait)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(b, 60).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))).text


def value_of(b, name):
    from selenium.webdriver.common.by import By

    return b.find_element(By.NAME, name).get_attribute("value")


def click(b, css):
    from selenium.webdriver.common.by import By

    b.find_element(By.CSS_SELECTOR, css).click()


def test_browser_sets_up_a_new_device(device, broker, mqtt_watch, browser):
    from selenium.webdriver.common.by import By

    dev = device("bare", config=f"appassword {AP_PASSWORD}\n")
    dev.wait_boot(1)
    dev.call("wifi.set", aps=[HOME, NEIGHBOUR, CAFE])
    ap_name = open_portal(dev)
    host, port = dev.portal_address()
    w = mqtt_watch(broker)

    browser.get(f"http://{host}:{port}/")
    networks = wait_text(browser, "#networks")
    assert networks.splitlines() == ["home-net", "-48 dBm, secured", "cafe-free", "-67 dBm, open",
                                     "neighbour", "-80 dBm, secured"], networks
    assert text_of(browser, "h1") == f"Set up {ap_name}"
    mac = ":".join(dev.mac[i:i + 2] for i in range(0, 12, 2))
    assert text_of(browser, "#device") == f"Profile bare, firmware {dev.boots[0]['version']}\nMAC {mac}"
    # Tapping a network chooses it; an open one flips the switch and needs no password.
    click(browser, '.net[data-ssid="cafe-free"]')
    assert value_of(browser, "ssid") == "cafe-free"
    assert browser.find_element(By.ID, "open").is_selected()
    assert not browser.find_element(By.ID, "password").is_enabled()
    click(browser, '.net[data-ssid="home-net"]')
    assert value_of(browser, "ssid") == "home-net"
    assert not browser.find_element(By.ID, "open").is_selected()
    assert browser.switch_to.active_element.get_attribute("id") == "password"
    fill(browser, password=HOME["password"], mqttbroker=broker.host, mqttport=70000,
         mqttname="kitchen", mqttpassword="broker-secret")
    submit(browser)
    # The port's error, beside its field; nothing stored, the device still on its first
    # boot; every value kept, the passwords too (hidden until asked).
    assert "70000 is out of range 1..65535" in wait_text(browser, "#err-mqttport")
    assert text_of(browser, "#err-ssid") is None and text_of(browser, "#err-mqttbroker") is None
    assert browser.find_element(By.ID, "mqttport").get_attribute("aria-invalid") == "true"
    assert dev.files()["config.txt"] == f"appassword {AP_PASSWORD}\n".encode()
    assert value_of(browser, "ssid") == "home-net" and value_of(browser, "mqttname") == "kitchen"
    assert value_of(browser, "password") == HOME["password"]
    assert value_of(browser, "mqttpassword") == "broker-secret"
    field = browser.find_element(By.ID, "password")
    assert field.get_attribute("type") == "password"
    click(browser, '.show[data-for="password"]')
    assert field.get_attribute("type") == "text"
    assert browser.find_element(By.CSS_SELECTOR, '.show[data-for="password"]').text == "Hide"

    fill(browser, mqttport=broker.port)
    submit(browser)
    assert "joins home-net" in wait_text(browser, "#done")
    where = text_of(browser, "#where")
    assert f"On the MQTT broker {broker.host} as kitchen: stat/kitchen/LWT says Online" in where
    assert "In Home Assistant" in where and "the device kitchen" in where
    # Its access point would then be named after its new name, the MAC's tail the same.
    assert f"join kitchen-{ap_name[-4:]} and" in text_of(browser, "#fallback")
    dev.wait_boot(2, timeout=30)
    dev.advance(NETWORK_DELAY_MS)
    w.wait_for("stat/kitchen/LWT", lambda p: p == "Online", timeout=60, device=dev)
    config = dev.files()["config.txt"].decode()
    assert f"appassword {AP_PASSWORD}\n" in config and "ssid home-net\n" in config
    assert f"mqttport {broker.port}\n" in config and "mqttpassword broker-secret\n" in config


def test_the_open_network_switch_writes_password_none(device):
    """Ticked, the switch stands for `password None` (the parser's open network): nobody
    types None; the password field, disabled then, is not sent."""
    dev = device("bare", config=f"appassword {AP_PASSWORD}\n")
    open_portal(dev)
    answer = http(dev.portal_address(), form(ssid="cafe-free", open="1", mqttbroker="10.0.0.2",
                                             mqttname="cafe"))
    assert status(answer) == 200 and b"joins cafe-free" in answer, answer
    dev.wait_boot(2, timeout=30)
    config = dev.files()["config.txt"].decode()
    assert "password None\n" in config and "ssid cafe-free\n" in config


def axe_violations(b):
    """axe-core's serious and critical violations of the page: [(rule id, node count, help)]."""
    if not AXE.is_file():
        pytest.skip("axe-core is not installed (ci/setup.sh: npm install from package.json)")
    b.execute_script(AXE.read_text())
    result = b.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(done, e => done({error: String(e)}));")
    assert "error" not in result, result
    return [(v["id"], len(v["nodes"]), v["help"]) for v in result["violations"]
            if v["impact"] in ("serious", "critical")]


def screenshot(b, name, width, height):
    """The whole page at that window size, in build/artifacts/portal/: the path."""
    b.set_window_size(width, height)
    page = b.execute_script("return document.documentElement.scrollHeight")
    b.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": max(height, page), "deviceScaleFactor": 1, "mobile": width < 600})
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}-{width}x{height}.png"
    b.save_screenshot(str(path))
    b.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    print(f"screenshot: {path}")
    return path


SIZES = ((390, 844), (1280, 800))


def test_browser_page_on_a_phone_and_a_desktop(device, broker, browser):
    """The h2o page (the most fields) at both sizes: blank, with errors, and the page after
    saving; screenshots kept, the phone's without sideways scrolling, and axe-core finds no
    serious or critical violation in any of them."""
    dev = device("h2o", config=f"appassword {AP_PASSWORD}\n")
    dev.wait_boot(1)
    dev.call("wifi.set", aps=[HOME, NEIGHBOUR, CAFE])
    open_portal(dev)
    host, port = dev.portal_address()
    report = {}
    for width, height in SIZES:
        browser.set_window_size(width, height)
        browser.get(f"http://{host}:{port}/")
        wait_text(browser, "#networks")
        click(browser, "#more summary")  # the keys that have defaults, unfolded
        assert browser.execute_script("return document.documentElement.scrollWidth") <= width
        screenshot(browser, "setup", width, height)
        report[f"setup-{width}"] = axe_violations(browser)
        fill(browser, capacity="lots", levelsensors="50,20", mqttport=99999, password="short")
        submit(browser)
        wait_text(browser, "#err-capacity")
        assert browser.execute_script("return document.documentElement.scrollWidth") <= width
        screenshot(browser, "errors", width, height)
        report[f"errors-{width}"] = axe_violations(browser)
    click(browser, '.net[data-ssid="home-net"]')
    fill(browser, password=HOME["password"], mqttbroker=broker.host, mqttport=broker.port,
         mqttname="tank", unit="L", capacity=1500, levelsensors="20,50,100", flowpulserate=7.5)
    submit(browser)
    assert "joins home-net" in wait_text(browser, "#done")
    for width, height in SIZES:
        screenshot(browser, "saved", width, height)
        report[f"saved-{width}"] = axe_violations(browser)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "axe.json").write_text(json.dumps(report, indent=1))
    print(f"axe-core report: {ARTIFACTS / 'axe.json'}")
    assert all(v == [] for v in report.values()), report
    # The checks fail where they must: a field without a label, a line too wide for a phone.
    browser.execute_script("document.body.insertAdjacentHTML('beforeend', "
                           "'<input id=unlabelled><p style=\"width:600px\">wide</p>')")
    assert "label" in [v[0] for v in axe_violations(browser)]
    browser.set_window_size(*SIZES[0])
    assert browser.execute_script("return document.documentElement.scrollWidth") > SIZES[0][0]


def test_browser_configured_device_needs_the_ap_password(device, broker, browser):
    config = config_text(broker, "cellar", ssid="home-net", password=HOME["password"],
                         appassword=AP_PASSWORD, apfallback=1)
    dev = device("bare", config=config)
    dev.wait_boot(1)
    dev.call("wifi.set", aps=[NEIGHBOUR])  # home-net is gone
    open_portal(dev, configured=True)
    host, port = dev.portal_address()
    browser.get(f"http://{host}:{port}/")
    assert wait_text(browser, "#networks").startswith("neighbour")
    for wrong in ("", "portal-pass-41"):
        fill(browser, mqttname="intruder", appassword=wrong)
        submit(browser)
        assert "password is needed" in wait_text(browser, "#err-appassword")
        assert dev.files()["config.txt"] == config.encode()
    assert dev.boots[-1]["boot"] == 1 and len(dev.boots) == 1


def test_portal_closes_when_the_old_network_is_back(device, broker, mqtt_watch):
    """While the portal serves, the station keeps trying its network; once it is up the
    access point closes (no server there any more) and the device is online."""
    config = config_text(broker, "cellar", ssid="home-net", password=HOME["password"],
                         appassword=AP_PASSWORD, apfallback=1)
    dev = device("bare", config=config)
    dev.wait_boot(1)
    dev.call("wifi.set", aps=[NEIGHBOUR])
    open_portal(dev, configured=True)
    assert status(http(dev.portal_address(), b"GET / HTTP/1.0\r\n\r\n")) == 200
    w = mqtt_watch(broker)
    mark = dev.console_mark()
    dev.call("wifi.set", aps=[NEIGHBOUR, HOME])
    # The next attempt comes after its backoff (60 s at most), then a check: in steps,
    # no further than needed.
    for _ in range(14):
        dev.advance(5000)
        if re.search(r"ap: closed, the broker is back", dev.output()):
            break
    dev.wait_console(r"ap: closed, the broker is back", since=mark)
    w.wait_for("stat/cellar/LWT", lambda p: p == "Online", timeout=60, device=dev)
    assert dev.portal_address() is None and dev.dns_address() is None
    with pytest.raises(Exception, match="no access point"):
        dev.join_ap(AP_PASSWORD, station="late")
    assert len(dev.boots) == 1, dev.output()


def configured_on_portal(device, broker, **keys):
    """A configured device whose network (home-net) is gone, its portal open and joined."""
    config = config_text(broker, "cellar", ssid="home-net", password=HOME["password"],
                         appassword=AP_PASSWORD, apfallback=1, configtrial=1, **keys)
    dev = device("bare", config=config)
    dev.wait_boot(1)
    dev.call("wifi.set", aps=[NEIGHBOUR])
    open_portal(dev, configured=True)
    return dev, config


def test_configured_device_tries_a_portal_change_as_a_candidate(device, broker, mqtt_watch):
    """With the access point's password, a change is staged as a candidate and booted; it
    brings MQTT up on the new network and becomes config.txt (the other keys kept)."""
    dev, config = configured_on_portal(device, broker)
    w = mqtt_watch(broker)
    answer = http(dev.portal_address(), form(ssid="neighbour", password=NEIGHBOUR["password"],
                                             mqttbroker=broker.host, mqttport=broker.port,
                                             mqttname="cellar", appassword=AP_PASSWORD))
    assert status(answer) == 200 and b"joins neighbour" in answer, answer
    dev.wait_boot(2, timeout=30)
    dev.advance(NETWORK_DELAY_MS)
    w.wait_for("stat/cellar/LWT", lambda p: p == "Online", timeout=60, device=dev)
    dev.wait_console(r"config: candidate kept", timeout=30)
    new = dev.files()["config.txt"].decode()
    assert "ssid neighbour\n" in new and f"appassword {AP_PASSWORD}\n" in new and "apfallback 1\n" in new


def test_a_wrong_wifi_password_from_the_portal_falls_back(device, broker):
    """The candidate's WiFi password is wrong: no MQTT within configtrial (1 min), so the
    device goes back to the config it had, and its portal opens again as before."""
    dev, config = configured_on_portal(device, broker)
    answer = http(dev.portal_address(), form(ssid="neighbour", password="wrong-password-9",
                                             mqttbroker=broker.host, mqttport=broker.port,
                                             mqttname="cellar", appassword=AP_PASSWORD))
    assert status(answer) == 200, answer
    dev.wait_boot(2, timeout=30)
    for _ in range(20):  # a minute of trial, then the reboot back
        if len(dev.boots) > 2:
            break
        dev.advance(5000)
    dev.wait_boot(3, timeout=30)
    dev.wait_console(r"config: candidate dropped", boot=3, timeout=30)
    assert dev.files()["config.txt"] == config.encode()


# --- malformed requests ------------------------------------------------------------------

GOOD_GET = b"GET / HTTP/1.1\r\nHost: 192.168.4.1\r\n\r\n"


def malformed(rng):
    """One malformed request: (shape, bytes to send, close our side after sending, the
    statuses that are a clear answer to it)."""
    shape = rng.choice(("oversized header", "oversized body", "oversized field", "non-UTF-8 header",
                        "non-UTF-8 form", "CRLF in a field", "header injection", "bad method",
                        "bad Content-Length", "short body", "garbage", "bad escape",
                        "unknown field", "repeated field", "no Content-Length", "chunked"))
    junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    if shape == "oversized header":
        return shape, b"GET / HTTP/1.1\r\nX-Pad: " + b"a" * rng.randint(3100, 9000) + b"\r\n\r\n", False, {431}
    if shape == "oversized body":
        return shape, b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % rng.randint(3100, 10 ** 6), False, {413}
    if shape == "oversized field":
        return shape, form(ssid="x" * rng.randint(2000, 3000)), False, {413, 400}
    if shape == "non-UTF-8 header":
        return shape, b"GET / HTTP/1.1\r\nHost: \xff\xfe" + junk + b"\r\n\r\n", False, {400}
    if shape == "non-UTF-8 form":
        body = b"ssid=%FF%FE" + b"%%%02X" % rng.randrange(0x80, 0x100)
        return shape, b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body, False, {400}
    if shape == "CRLF in a field":  # would be a line of its own in config.txt
        evil = rng.choice(("home\r\nmqttbroker evil.example", "x\nota_key stolen", "a\rb"))
        return shape, form(ssid=evil, mqttbroker="127.0.0.1", mqttname="n"), False, {400}
    if shape == "header injection":
        return shape, b"GET / HTTP/1.1\r\nHost: a\nX-Injected: 1\r\n\r\n", False, {400}
    if shape == "bad method":
        m = rng.choice((b"PUT", b"DELETE", b"get", b"G ET", b"OPTIONS", b"TRACE", b"CONNECT", junk[:8].replace(b" ", b"")))
        return shape, m + b" / HTTP/1.1\r\nHost: a\r\n\r\n", False, {400, 405}
    if shape == "bad Content-Length":
        cl = rng.choice((b"abc", b"-1", b"1e3", b" ", b"99999999999", b"5\r\nContent-Length: 5"))
        return shape, b"POST / HTTP/1.1\r\nContent-Length: " + cl + b"\r\n\r\nssid=", False, {400, 413}
    if shape == "short body":
        return shape, b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nssid=abc", True, {400}
    if shape == "garbage":
        return shape, junk + b"\r\n\r\n", False, {400, 405}
    if shape == "bad escape":
        body = rng.choice((b"ssid=%G1", b"ssid=%4", b"ssid=abc%", b"%zz=1"))
        return shape, b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body, False, {400}
    if shape == "unknown field":
        return shape, form(ssid="a", **{"x" + junk.hex()[:8]: "1"}), False, {400}
    if shape == "repeated field":
        body = b"ssid=a&ssid=b"
        return shape, b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body, False, {400}
    if shape == "no Content-Length":
        return shape, b"POST / HTTP/1.1\r\nHost: a\r\n\r\nssid=a", False, {411}
    return shape, b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nssid=\r\n0\r\n\r\n", False, {411}


def clear_error(response, expected):
    """A clear answer: a complete 4xx HTML page with the expected status, saying why."""
    head, _, body = response.partition(b"\r\n\r\n")
    length = re.search(rb"(?i)\r\ncontent-length: (\d+)", head)
    return (status(response) in expected and 400 <= status(response) < 500 and length is not None
            and int(length.group(1)) == len(body) and b"text/html" in head and len(body) > 20)


def test_1000_malformed_requests_leave_the_device_serving(device):
    config = f"appassword {AP_PASSWORD}\n"
    dev = device("bare", config=config)
    open_portal(dev)
    addr = dev.portal_address()
    # The check fails where it must: a good page is no clear error, nor a 4xx of another kind.
    assert not clear_error(http(addr, GOOD_GET), {200, 400})
    assert not clear_error(http(addr, b"PUT / HTTP/1.1\r\n\r\n"), {400})
    rng = random.Random(1300)
    shapes = {}
    for i in range(1000):
        if i % 50 == 49:  # a request that never ends: a trickle, then device time passes
            shape, expected = "never ends", {408}
            with socket.create_connection(addr, timeout=30) as s:
                s.sendall(b"POST / HTTP/1.1\r\nContent-Length: 500\r\n")
                dev.advance(4000)
                s.sendall(b"X-Slow: 1\r\n")  # still within the request: no answer yet
                dev.advance(7000)
                response = read_until_closed(s)
        else:
            shape, raw, half_close, expected = malformed(rng)
            with socket.create_connection(addr, timeout=30) as s:
                try:
                    s.sendall(raw)
                    if half_close:
                        s.shutdown(socket.SHUT_WR)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the device answered and closed before taking it all: fine
                try:
                    response = read_until_closed(s)
                except ConnectionResetError:  # it closed with our bytes unread: the answer
                    response = b""  # came first; not a clear one, so it fails below
        assert clear_error(response, expected), (i, shape, response[:300])
        shapes[shape] = shapes.get(shape, 0) + 1
    assert len(shapes) == 17 and min(shapes.values()) >= 20, shapes
    # Still serving the page, on the first boot, nothing written.
    assert status(http(addr, GOOD_GET)) == 200
    assert len(dev.boots) == 1 and "exit" not in dev.boots[0]
    assert dev.files()["config.txt"] == config.encode()
    assert "Traceback" not in dev.output()


# --- always reachable ------------------------------------------------------------------------

def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_access_point_opens_when_the_broker_is_out_of_reach_with_wifi_up(device, broker):
    """WiFi is up, the broker never answers: after apfallback minutes the access point opens
    all the same (the station stays on its network)."""
    dev = device("bare", config=config_text(broker, "attic", mqttport=closed_port(),
                                            appassword=AP_PASSWORD, apfallback=1))
    open_portal(dev, configured=True)
    assert re.search(r"net: up", dev.output()), dev.output()
    assert not re.search(r"mqtt: up", dev.output())
    assert status(http(dev.portal_address(), b"GET / HTTP/1.0\r\n\r\n")) == 200
    assert len(dev.boots) == 1


@pytest.mark.parametrize("port", ["0", "70000"])
def test_a_broken_mqttport_opens_the_access_point_where_it_is_mended(port, device, broker,
                                                                     mqtt_watch):
    """A port no broker has puts the device in safe mode (it tries the default port, in
    vain): the access point opens at once, and the portal's change brings it to its broker."""
    dev = device("bare", config=config_text(broker, "porty", mqttport=port,
                                            appassword=AP_PASSWORD))
    dev.wait_console(r"safe mode: config.txt broken", timeout=30)
    name = open_portal(dev)
    assert name.startswith("porty-")
    w = mqtt_watch(broker)
    answer = http(dev.portal_address(), form(ssid="epx-sim", mqttbroker=broker.host,
                                             mqttport=broker.port, mqttname="porty",
                                             appassword=AP_PASSWORD))
    assert status(answer) == 200, answer
    dev.wait_boot(2, timeout=30)
    dev.advance(NETWORK_DELAY_MS)
    w.wait_for("stat/porty/LWT", lambda p: p == "Online", timeout=60, device=dev)
    dev.wait_console(r"config: candidate kept", boot=2, timeout=30)
    assert f"mqttport {broker.port}\n".encode() in dev.files()["config.txt"]


def test_a_config_that_lost_its_appassword_opens_with_the_one_the_device_had(device):
    """config.txt turned to garbage (its appassword with it): the access point opens with the
    last appassword the device ran with, kept in NVS."""
    from epx.sim import provision
    from epx.sim.device import Device

    dev = device("bare", config=f"ssid epx-sim\npassword None\nmqttbroker 127.0.0.1\n"
                                f"mqttport {closed_port()}\nmqttname kept\nappassword {AP_PASSWORD}\n")
    dev.wait_boot(1)
    dev.advance(NETWORK_DELAY_MS)
    dev.wait_console(r"mqtt: ")
    assert dev.nvs()["epx"]["appassword"][0] == "blob"
    dev.stop()
    provision.into_device(dev.folder, {"config.txt": bytes(range(256)) * 3})
    again = Device(dev.folder).start()  # the same flash and NVS
    try:
        again.wait_console(r"safe mode: config.txt broken", timeout=30)
        assert open_portal(again).startswith("bare-")
        assert status(http(again.portal_address(), b"GET / HTTP/1.0\r\n\r\n")) == 200
    finally:
        again.stop()
