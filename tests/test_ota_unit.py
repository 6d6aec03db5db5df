"""OTA building blocks inside the host firmware: HMAC-SHA256 against CPython's hmac (RFC 4231),
the streaming app image check against images written by esptool's classes, the strict HTTP
client against Python's http.server (and hostile servers), and the partition writer on a
simulated flash."""

import hashlib
import hmac
import struct

import pytest
from esptool.bin_image import ELFSection, ESP32FirmwareImage, ESP32S3FirmwareImage

from epx.ota import image_sha256
from epx.sim import appimage, bootloader
from epx.sim.flash import Flash
from epx.sim.net import free_port
from httpkit import FileServer, RawServer
from mqttkit import Script

FIRMWARE = "ota_unit"

RFC4231 = [  # (key, data) of test cases 1-7; the MACs come from CPython's hmac
    (b"\x0b" * 20, b"Hi There"),
    (b"Jefe", b"what do ya want for nothing?"),
    (b"\xaa" * 20, b"\xdd" * 50),
    (bytes(range(1, 26)), b"\xcd" * 50),
    (b"\x0c" * 20, b"Test With Truncation"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First"),
    (b"\xaa" * 131, b"This is a test using a larger than block-size key and a larger than block-size "
                    b"data. The key needs to be hashed before being used by the HMAC algorithm."),
]


PRELUDE = """
import json, network
def out(*a): print(json.dumps(a))
wlan = network.WLAN(network.STA_IF)
wlan.active(True)
wlan.connect('epx-sim', None)  # the simulated world's access point
while not wlan.isconnected():
    pass
"""


def run(tmp_path, code, env=None, timeout=30):
    """Run code in the firmware (WiFi up); return the JSON values it printed, in order."""
    s = Script(PRELUDE + code + "\nout('end')\n",
               tmp_path, name=FIRMWARE, env=env)
    try:
        got = []
        while True:
            m = s.next(timeout)
            if m == ["end"]:
                return got
            if isinstance(m, list):
                got.append(m)
    finally:
        s.close()


def test_hmac_rfc4231(tmp_path):
    got = run(tmp_path, f"""
from epx import hmac
for k, d in {RFC4231!r}:
    h = hmac.HMAC(k)
    h.update(d[:7]); h.update(d[7:])
    two = h.digest()
    out(hmac.digest(k, d).hex(), two.hex(), hmac.compare_digest(hmac.digest(k, d), two))
out(hmac.compare_digest(b'ab', b'ac'), hmac.compare_digest(b'ab', b'a'))
""")
    for (k, d), (one, parts, same) in zip(RFC4231, got):
        assert one == parts == hmac.new(k, d, hashlib.sha256).hexdigest()
        assert same is True
    assert got[-1] == [False, False]


# --- app images --------------------------------------------------------------------

EXE = bytes(range(256)) * 40 + b"tail"


def host_image(version="otaunit-1.0", exe=EXE, **desc):
    return appimage.build(exe, version, **desc)


def multi_segment_image(version="otaunit-1.0", kind=ESP32FirmwareImage):
    """An image laid out like an ESP-IDF app: DROM (descriptor first), IRAM, DRAM, IROM."""
    img = kind()
    img.entrypoint = 0x40080400
    img.flash_mode, img.flash_size_freq = 2, 0x20
    desc = appimage.descriptor(version, b"x")
    img.segments = [
        ELFSection(b".flash.rodata", 0x3F400020, desc + bytes(1024), 0),
        ELFSection(b".dram0.data", 0x3FFB0000, b"\x11" * 64, 0),
        ELFSection(b".iram0.text", 0x40080000, b"\x22" * 1000, 0),
        ELFSection(b".flash.text", 0x400D0020, b"\x33" * 3000, 0),
    ]
    data = img.save(None)
    return data


def check(tmp_path, images, chunk=4096):
    """appimage.Check on each image, fed `chunk` bytes at a time: (version, project) or error."""
    names = []
    for i, data in enumerate(images):
        (tmp_path / f"img{i}").write_bytes(data)
        names.append(f"img{i}")
    return [tuple(r) for r in run(tmp_path, f"""
from epx import appimage
for name in {names!r}:
    data = open(name, 'rb').read()
    c = appimage.Check()
    try:
        for i in range(0, len(data), {chunk}):
            c.feed(memoryview(data)[i:i + {chunk}])
        out(*c.finish())
    except ValueError as e:
        out('error', str(e))
""")]


def test_valid_images_any_chunking(tmp_path):
    images = [host_image(), multi_segment_image("p-2")]
    for chunk in (1, 7, 100, 4096, 1 << 20):
        assert check(tmp_path, images, chunk) == [("otaunit-1.0", "epx", 0), ("p-2", "epx", 0)]


def corrupt(data, at, value=None):
    b = bytearray(data)
    b[at] = b[at] ^ 0xFF if value is None else value
    return bytes(b)


def test_bad_images(tmp_path):
    img = host_image()
    n = len(img)
    # esptool computes the checksum and digest; we break one thing at a time.
    no_digest = corrupt(img, 23, 0)[:-32]
    cases = {
        "magic byte 0x00": corrupt(img, 0, 0),
        "chip id 5, not esp32": corrupt(img, 12, 5),
        "checksum": corrupt(img, 24 + 8 + 300),  # executable byte: checksum and digest wrong
        "checksum 0x": corrupt(img, n - 33),  # the checksum byte itself
        "appended SHA-256": corrupt(img, n - 1),
        "truncated at": img[:-1],
        "after the end": img + b"\0",
        "no appended SHA-256": no_digest,
        "no app descriptor": corrupt(img, 32, 0),
        "0 segments": corrupt(img, 1, 0),
        "outside the ESP32 memory map": bytes(img[:24]) + struct.pack("<I", 0x10000000) + img[28:],
        "not aligned with its offset": bytes(img[:24]) + struct.pack("<I", 0x3F400040) + img[28:],
        "truncated at 10": img[:10],
    }
    got = check(tmp_path, list(cases.values()))
    for (want, _), result in zip(cases.items(), got):
        assert result[0] == "error" and want in result[1], (want, result)
    # an image esptool writes for another chip is refused from its header
    assert "chip id 9, not esp32" in check(tmp_path, [multi_segment_image(kind=ESP32S3FirmwareImage)])[0][1]


def test_host_tool_reads_esp_idf_like_images():
    from epx import ota
    from epx.errors import EpxError

    img = ota.load_image(multi_segment_image("h2o-1.2.0-4-gabc"))
    assert (img.version, img.profile) == ("h2o-1.2.0-4-gabc", "h2o")
    for bad in (multi_segment_image()[:-1], multi_segment_image() + b"\xff"):
        with pytest.raises(EpxError):
            ota.load_image(bad)


def test_checker_agrees_with_esptool_on_sim_images(tmp_path):
    img = host_image("x-1")
    desc, exe = appimage.read(img)
    assert exe == EXE and desc["version"] == "x-1"
    assert check(tmp_path, [img]) == [("x-1", "epx", 0)]
    # the secure version is read from the descriptor esptool's image carries
    assert check(tmp_path, [host_image("x-2", secure_version=7)]) == [("x-2", "epx", 7)]


# --- HTTP --------------------------------------------------------------------------

@pytest.fixture
def servers():
    made = []

    def make(root=None, raw=()):
        s = FileServer(root) if root is not None else RawServer(*raw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


GET = """
import asyncio, hashlib
from epx import http
async def get(url, timeout=2000):
    try:
        r = await http.get(url, timeout)
        h = hashlib.sha256()
        buf = bytearray(1000)
        n = 0
        while True:
            k = await r.readinto(buf)
            if not k:
                break
            h.update(memoryview(buf)[:k])
            n += k
        await r.close()
        return ['ok', n, h.digest().hex()]
    except asyncio.TimeoutError:
        return ['timeout']
    except Exception as e:
        return ['error', type(e).__name__, str(e)]
"""


def get_all(tmp_path, urls):
    return run(tmp_path, GET + f"""
for u in {urls!r}:
    out(*asyncio.run(get(u)))
""")


def test_http_get(tmp_path, servers):
    body = bytes(range(256)) * 3000 + b"end"
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "img").write_bytes(body)
    (tmp_path / "www" / "empty").write_bytes(b"")
    files = servers(root=tmp_path / "www")

    def raw(*parts):
        return servers(raw=list(parts)).url()

    ok = b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\n"
    got = get_all(tmp_path, [
        files.url(), files.url("/empty"), files.url("/missing"),
        raw(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"),
        raw(b"HTTP/1.1 302 Found\r\nLocation: http://x/\r\n\r\n"),
        raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        raw(b"HTTP/1.0 200 OK\r\n\r\nno length"),
        raw(ok + b"0123"),  # closes early
        raw(ok + b"0123", None),  # stalls
        raw(b"HTTP/1.0 200 OK\r\n", None),  # stalls in the header
        raw(b"HTTP/1.0 200 OK\r\nX: " + b"y" * 2000 + b"\r\n\r\n"),
        raw(b"SSH-2.0-OpenSSH\r\n\r\n"),
        raw(b"HTTP/1.0 200 OK\r\ncontent-length:  10 \r\n\r\n", b"01234", b"56789"),
        "https://127.0.0.1/x", f"http://127.0.0.1:{free_port()}/x",
    ])
    assert got[0] == ["ok", len(body), hashlib.sha256(body).hexdigest()]
    assert got[1] == ["ok", 0, hashlib.sha256(b"").hexdigest()]
    assert got[2] == ["error", "HTTPError", "HTTP 404"]
    assert got[3] == ["error", "HTTPError", "HTTP 500"]
    assert got[4] == ["error", "HTTPError", "HTTP 302: redirects are not followed"]
    assert got[5] == ["error", "HTTPError", "Transfer-Encoding is not supported"]
    assert got[6] == ["error", "HTTPError", "no Content-Length"]
    assert got[7] == ["error", "HTTPError", "body ended after 4 of 10 bytes"]
    assert got[8] == ["timeout"]
    assert got[9] == ["timeout"]
    assert got[10] == ["error", "HTTPError", "HTTP header longer than 1024 bytes"]
    assert got[11] == ["error", "HTTPError", "not an HTTP response"]
    assert got[12] == ["ok", 10, hashlib.sha256(b"0123456789").hexdigest()]
    assert got[13] == ["error", "ValueError", "URL must start with http://"]
    assert got[14][0] == "error" and got[14][1] == "OSError"


# --- the partition writer ---------------------------------------------------------

WRITE = """
import asyncio, binascii, esp32
from epx import otawrite
running = esp32.Partition(esp32.Partition.RUNNING)
target = running.get_next_update()
def accept(version, project, secure_version):
    if not version.startswith('otaunit-'):
        raise otawrite.Refused('not for this profile: ' + version)
async def write(url, size, sha):
    try:
        return ['ok', await otawrite.write(target, url, size, binascii.unhexlify(sha), accept,
                                           timeout_ms=1000)]
    except otawrite.Refused as e:
        return ['refused', str(e)]
out(target.info()[4])
"""


def test_write_partition(tmp_path, servers):
    dev = tmp_path / "dev"
    dev.mkdir()
    flash = Flash.create(dev / "flash.bin")
    old = host_image("otaunit-0.9")
    flash.write("ota_0", old)
    bootloader.boot(flash)  # otadata: ota_0 valid
    otadata = flash.read("otadata")
    new = host_image("otaunit-1.0", exe=EXE * 30)
    www = tmp_path / "www"
    www.mkdir()
    (www / "new").write_bytes(new)
    (www / "other").write_bytes(host_image("h2o-1.0"))
    (www / "badsum").write_bytes(corrupt(new, 24 + 8 + 256 + 8 + 5))
    (www / "baddigest").write_bytes(corrupt(new, len(new) - 7))
    files = servers(root=www)
    sha = image_sha256(new)
    stall = servers(raw=[f"HTTP/1.0 200 OK\r\nContent-Length: {len(new)}\r\n\r\n".encode(),
                         new[:9000], None]).url()
    cases = [
        (files.url("/other"), len(host_image("h2o-1.0")), image_sha256(host_image("h2o-1.0"))),
        (files.url("/new"), len(new), "00" * 32),
        (files.url("/new"), len(new) + 1, sha),
        (files.url("/badsum"), len(new), image_sha256((www / "badsum").read_bytes())),
        (files.url("/baddigest"), len(new), sha),  # a flipped byte in the appended SHA-256
        (files.url("/new"), len(new), hashlib.sha256(new).hexdigest()),  # the whole file's
        (stall, len(new), sha),
        (files.url("/missing"), len(new), sha),
        (files.url("/new"), 4 << 20, sha),
        (files.url("/new"), len(new), sha),
    ]
    got = run(tmp_path, WRITE + f"""
for url, size, sha in {cases!r}:
    out(*asyncio.run(write(url, size, sha)))
""", env={"EPX_SIM_DIR": str(dev)})
    assert got[0] == ["ota_1"]
    results = got[1:]
    assert results[0] == ["refused", "not for this profile: h2o-1.0"]
    assert results[1] == ["refused", "SHA-256 of the image does not match the request"]
    assert results[2] == ["refused", f"server sends {len(new)} bytes, the request says {len(new) + 1}"]
    assert results[3][0] == "refused" and "checksum" in results[3][1]
    assert results[4] == ["refused", "image: appended SHA-256 does not match"]
    assert results[5] == ["refused", "SHA-256 of the image does not match the request"]
    assert results[6] == ["refused", f"download stalled at 9000 of {len(new)} bytes"]
    assert results[7] == ["refused", "download: HTTP 404"]
    assert results[8][0] == "refused" and "does not fit" in results[8][1]
    assert results[9] == ["ok", "otaunit-1.0"]
    assert flash.read("ota_1", size=len(new)) == new
    assert flash.read("ota_0", size=len(old)) == old
    assert flash.read("otadata") == otadata  # the writer never switches the boot partition


def test_epx_ota_asks_at_the_first_of_several_broker_nodes(tmp_path):
    from epx import ota

    path = tmp_path / "config.txt"
    path.write_text("mqttname t\nota_key k\nmqttbroker mq1.lan:1884, mq2.lan\nmqttport 1999\n")
    t = ota.target(str(path))
    assert (t.broker, t.port) == ("mq1.lan", 1884)
    path.write_text("mqttname t\nota_key k\nmqttbroker mq2.lan,mq1.lan:1884\nmqttport 1999\n")
    t = ota.target(str(path))
    assert (t.broker, t.port) == ("mq2.lan", 1999)  # a node without a port: mqttport
