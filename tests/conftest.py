"""Fixtures: host firmware per profile, a real mosquitto, a fault-injecting proxy, simulated
devices and an MQTT watcher. Everything lives in pytest's temp dirs and free loopback
ports, so `pytest -n 2` works; every process started here is killed at teardown."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from epx import build  # noqa: E402
from epx.sim import appimage, net  # noqa: E402
from epx.sim.device import Device  # noqa: E402
from epx.sim.medium import Medium  # noqa: E402
from brokerkit import MqttWatch, Proxy, TestCA  # noqa: E402


# --- firmware ------------------------------------------------------------------------

class Firmware:
    """A profile's host firmware: the executable, its version and its app image."""

    def __init__(self, profile, exe, version, executable):
        self.profile, self.exe, self.version = profile, Path(exe), version
        self.executable = executable  # stripped bytes, as taken right after the build
        self.image = appimage.build(executable, version)


@pytest.fixture(scope="session")
def firmware():
    """firmware(profile) -> Firmware (.exe, .version, .image: its host app image), built
    once per session; the build's own file locks serialise xdist workers."""
    built = {}

    def get(profile):
        if profile not in built:
            exe, _ = build.build_unix(profile)
            # Under the build's lock: another worker may be relinking this profile.
            with build.locked(build.BUILD / f".unix-{profile}.lock"):
                version = (exe.parent / "version.txt").read_text().strip()
                executable = appimage.stripped(exe)
            built[profile] = Firmware(profile, exe, version, executable)
        return built[profile]

    return get


# --- network -------------------------------------------------------------------------

@pytest.fixture
def broker():
    """A real mosquitto on a free loopback port (anonymous)."""
    with net.Broker() as b:
        yield b


@pytest.fixture(scope="module")
def module_broker():
    """One mosquitto for a whole test module (tests must not rely on its retained state)."""
    with net.Broker() as b:
        yield b


@pytest.fixture
def broker_auth():
    """mosquitto that wants username `epx`, password `secret`."""
    with net.Broker(users={"epx": "secret"}) as b:
        b.username, b.password = "epx", "secret"
        yield b


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory):
    return TestCA(str(tmp_path_factory.mktemp("ca")))


@pytest.fixture
def broker_tls(test_ca):
    """mosquitto with a TLS-only listener; its certificate is signed by `test_ca`."""
    with net.Broker(tls=test_ca) as b:
        b.ca = test_ca
        yield b


@pytest.fixture
def ntp():
    """A real NTP server on a free loopback UDP port (tools/epx/sim/ntp.py) answering with the
    current UTC time (whole seconds); `ntp.server` is its `ntpserver` config value."""
    import datetime
    from epx.sim.ntp import NtpServer

    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    with NtpServer(now) as server:
        yield server


@pytest.fixture
def proxy(broker):
    """A fault-injecting TCP proxy in front of `broker`: proxy.set("pass" | "delay" |
    "blackhole" | "drop", delay_ms=...), proxy.reset()."""
    p = Proxy(broker.port).start()
    yield p
    p.stop()


@pytest.fixture
def mqtt_watch():
    """mqtt_watch(broker, topics=("#",)) -> MqttWatch; closed at teardown."""
    watches = []

    def make(b, topics=("#",)):
        w = MqttWatch(b.host, b.port, topics, username=getattr(b, "username", None),
                          password=getattr(b, "password", None),
                          ca_path=getattr(getattr(b, "ca", None), "ca_path", None))
        watches.append(w)
        return w

    yield make
    for w in watches:
        w.close()


# --- devices -------------------------------------------------------------------------

@pytest.fixture
def medium():
    return Medium(seed=1)


@pytest.fixture
def device(tmp_path, firmware):
    """device(profile_or_image, config=None, files=None, nvs_csv=None, start=True, **kw) -> Device.

    `profile_or_image` is a profile name (its host firmware, built once) or app image bytes.
    `config` is the text of config.txt. Devices are stopped (process groups killed) at teardown."""
    made = []

    def make(app, config=None, files=None, nvs_csv=None, start=True, name=None, **kw):
        image = firmware(app).image if isinstance(app, str) else app
        files = dict(files or {})
        if config is not None:
            files["config.txt"] = config
        name = name or f"dev{len(made)}"
        dev = Device.create(tmp_path / name, image, files=files, nvs_csv=nvs_csv, name=name, **kw)
        made.append(dev)
        if start:
            dev.start()
        return dev

    yield make
    for dev in made:
        dev.stop()
