"""The network tests put around simulated devices, beside the broker (epx.sim.net): a
throwaway CA for TLS brokers, a fault-injecting TCP proxy and an MQTT watcher (paho-mqtt)."""

import datetime
import os
import socket
import struct
import threading
import time

from epx.sim.net import LOOPBACK, shut


# --- TLS -----------------------------------------------------------------------------

class TestCA:
    """A CA and a server certificate for 127.0.0.1/localhost, written to `folder`."""

    __test__ = False  # not a pytest test class, whatever module imports it

    def __init__(self, folder):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
        import ipaddress

        os.makedirs(folder, exist_ok=True)
        now = datetime.datetime.now(datetime.timezone.utc)

        def name(cn):
            return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

        def pem_key(key):
            return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())

        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (x509.CertificateBuilder().subject_name(name("epx test CA")).issuer_name(name("epx test CA"))
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(days=1))
              .not_valid_after(now + datetime.timedelta(days=30))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                           content_commitment=False, key_encipherment=False,
                                           data_encipherment=False, key_agreement=False,
                                           encipher_only=False, decipher_only=False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name("localhost")).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        self.ca_path = os.path.join(folder, "ca.crt")
        self.cert_path = os.path.join(folder, "server.crt")
        self.key_path = os.path.join(folder, "server.key")
        with open(self.ca_path, "wb") as f:
            f.write(ca.public_bytes(serialization.Encoding.PEM))
        with open(self.cert_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(self.key_path, "wb") as f:
            f.write(pem_key(key))
        self.ca_der = ca.public_bytes(serialization.Encoding.DER)


# --- fault-injecting proxy -------------------------------------------------------------

class Proxy:
    """A TCP proxy on a free loopback port in front of (host, port).

    mode "pass" forwards; "delay" forwards each chunk delay_ms late; "blackhole" accepts
    and forwards nothing (a half-open connection as the device sees it); "drop" resets
    every connection and each new one right after accept. reset() resets the open ones."""

    def __init__(self, target_port, target_host=LOOPBACK):
        self.target = (target_host, target_port)
        self.mode, self.delay_ms = "pass", 0
        self.accepted = 0
        self._conns = []
        self._cv = threading.Condition()
        self._server = None

    def start(self):
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind((LOOPBACK, 0))
        self._server.listen(16)
        self.port = self._server.getsockname()[1]
        self.host = LOOPBACK
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def set(self, mode, delay_ms=0):
        if mode not in ("pass", "delay", "blackhole", "drop"):
            raise ValueError(f"proxy mode {mode!r}")
        self.mode, self.delay_ms = mode, delay_ms
        if mode == "drop":
            self.reset()

    def reset(self, then=None):
        """RST every open connection (both sides); with `then`, in that mode before any RST
        goes out, so a client that reconnects at once finds it."""
        if then is not None and then not in ("pass", "delay", "blackhole"):
            raise ValueError(f"proxy mode {then!r}")
        with self._cv:
            conns, self._conns = self._conns, []
            if then is not None:
                self.mode = then
        for pair in conns:
            for s in pair:
                _rst(s)

    def stop(self):
        if self._server is not None:
            shut(self._server)
            self._server.close()
            self._server = None
        self.reset()

    def wait_connections(self, n, timeout=10):
        """Until `n` connections have been accepted in total."""
        with self._cv:
            if not self._cv.wait_for(lambda: self.accepted >= n, timeout):
                raise AssertionError(f"proxy: {self.accepted} connections, not {n}, within {timeout} s")

    def _accept(self):
        while True:
            try:
                client, _ = self._server.accept()
            except (OSError, AttributeError):
                return
            with self._cv:
                self.accepted += 1
                self._cv.notify_all()
            if self.mode == "drop":
                _rst(client)
                continue
            upstream = None
            if self.mode != "blackhole":
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                    upstream.settimeout(None)
                except OSError:
                    _rst(client)
                    continue
            pair = (client, upstream) if upstream else (client,)
            with self._cv:
                self._conns.append(pair)
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            if upstream:
                threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self.mode == "blackhole" or dst is None:
                    continue
                if self.mode == "delay" and self.delay_ms:
                    time.sleep(self.delay_ms / 1000)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            if s is not None:
                shut(s)


def _rst(s):
    """Close with RST (SO_LINGER 0), as a crashed peer or a NAT timeout looks."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # Wakes a pump thread blocked in recv() on s: until it lets go, close() alone
        # sends nothing.
        s.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    s.close()


# --- MQTT watcher ----------------------------------------------------------------------

class MqttWatch:
    """A paho-mqtt subscriber that keeps every message; wait_for() with a bounded timeout."""

    def __init__(self, host, port, topics=("#",), username=None, password=None, ca_path=None):
        import paho.mqtt.client as mqtt

        self._mqtt = mqtt
        self.messages = []  # (topic, payload bytes, retain)
        self.times = []  # time.monotonic() each message arrived
        self._cv = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"epx-watch-{os.getpid()}-{id(self)}")
        if username:
            self.client.username_pw_set(username, password)
        if ca_path:
            self.client.tls_set(ca_certs=ca_path)
        self.topics = list(topics)
        self._subscribed = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            self.close()
            raise AssertionError(f"mqtt_watch: no subscription on {host}:{port} within 10 s")

    def _on_connect(self, client, userdata, flags, reason, properties=None):
        client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, client, userdata, msg):
        with self._cv:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))
            self.times.append(time.monotonic())
            self._cv.notify_all()

    def mark(self):
        return len(self.messages)

    def wait_for(self, topic, predicate=None, timeout=10, since=0, device=None):
        """The first message (index >= since) on `topic` (MQTT wildcards allowed) whose
        payload satisfies predicate(payload: str); AssertionError on timeout, listing what
        did arrive and, given a device, its last console lines."""
        match = self._mqtt.topic_matches_sub

        def find():
            for i in range(since, len(self.messages)):
                t, p, r = self.messages[i]
                if match(topic, t) and (predicate is None or predicate(p.decode("utf-8", "replace"))):
                    return t, p.decode("utf-8", "replace"), r
            return None

        with self._cv:
            found = self._cv.wait_for(find, timeout)
        if found:
            return found
        seen = "\n".join(f"  {t} {p[:120]!r}" for t, p, _ in self.messages[-20:]) or "  (nothing)"
        text = f"mqtt: no message on {topic} within {timeout} s; last messages:\n{seen}"
        if device is not None:
            text += "\nlast console lines:\n" + "\n".join(device.output().splitlines()[-25:])
        raise AssertionError(text)

    def wait_all(self, topics, since=0, timeout=60):
        """Until a message (index >= since) has arrived on every topic of `topics` (exact
        names); AssertionError naming the missing ones on timeout."""
        missing, scanned = set(topics), since

        def done():
            nonlocal scanned
            for t, _, _ in self.messages[scanned:]:
                missing.discard(t)
            scanned = len(self.messages)
            return not missing

        with self._cv:
            if not self._cv.wait_for(done, timeout):
                raise AssertionError(f"mqtt: nothing within {timeout} s on {len(missing)} "
                                     f"topics: {sorted(missing)[:10]}")

    def publish(self, topic, payload, retain=False, qos=0):
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(10)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()
