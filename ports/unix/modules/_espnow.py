# The simulated ESP32 `_espnow` (MicroPython v1.25.0, ports/esp32/modespnow.c), under the
# port's own espnow.py. Frames leave as `espnow.send` events; the host's medium hands
# frames in with the `espnow.deliver` op.
import binascii as _binascii
from errno import ETIMEDOUT as _ETIMEDOUT
import io as _io
import time as _time
import _simclock
import _simirq
import _thread

import sim as _sim

MAX_DATA_LEN = const(250)
ADDR_LEN = const(6)
KEY_LEN = const(16)
MAX_TOTAL_PEER_NUM = const(20)
MAX_ENCRYPT_PEER_NUM = const(6)

_PKT_OVERHEAD = const(14)  # ring buffer header + address per frame
_DEFAULT_RXBUF = const(2 * (_PKT_OVERHEAD + MAX_DATA_LEN))
_DEFAULT_TIMEOUT_MS = const(300000)
_BROADCAST = b"\xff" * 6

_ERRORS = {
    0x3065: "ESP_ERR_ESPNOW_NOT_INIT",
    0x3066: "ESP_ERR_ESPNOW_ARG",
    0x3068: "ESP_ERR_ESPNOW_FULL",
    0x3069: "ESP_ERR_ESPNOW_NOT_FOUND",
    0x306B: "ESP_ERR_ESPNOW_EXIST",
    0x306C: "ESP_ERR_ESPNOW_IF",
}


def _err(code):
    return OSError(-code, _ERRORS[code])


def _bytes(obj, n):
    b = bytes(obj)
    if len(b) != n:
        raise ValueError("invalid buffer length")
    return b


class _State:
    active = False
    rxbuf = _DEFAULT_RXBUF
    timeout_ms = _DEFAULT_TIMEOUT_MS
    rx = []  # [(peer, msg, rssi, time_ms)]
    rx_bytes = 0
    peers = {}  # mac -> [lmk, channel, ifidx, encrypt]
    pmk = b"PMK1234567890123"
    irq = None
    irq_arg = None
    stats = [0, 0, 0, 0, 0]  # tx packets, tx responses, tx failures, rx packets, rx dropped


_s = _State


class ESPNowBase(_io.IOBase):
    peers_table = {}

    def __init__(self):
        pass

    def active(self, flag=None):
        if flag is not None:
            if flag:
                _s.active = True
            elif _s.active:
                _s.active = False
                _due.clear()
                _s.stats[0] = _s.stats[1]  # espnow_active: tx_packets = tx_responses
                _s.rx = []
                _s.rx_bytes = 0
                _s.peers = {}
        return _s.active

    def _check(self):
        if not _s.active:
            raise _err(0x3065)

    def config(self, *args, rxbuf=None, timeout_ms=None, rate=None):
        # the parameter asked for is positional only (modespnow.c:espnow_config)
        param = args[0] if args else None
        if rxbuf is not None and rxbuf >= 0:
            _s.rxbuf = rxbuf
        if timeout_ms is not None:
            _s.timeout_ms = timeout_ms
        if param is None:
            return None
        if param == "rxbuf":
            return _s.rxbuf
        if param == "timeout_ms":
            return _s.timeout_ms
        raise ValueError("unknown config param")

    def irq(self, callback, arg=None):
        if callback is not None and not callable(callback):
            raise ValueError("invalid handler")
        _s.irq = callback
        _s.irq_arg = arg

    def stats(self):
        _callbacks()
        return tuple(_s.stats)

    def recvinto(self, data, timeout_ms=None):
        _sim.stack_mark()
        self._check()
        if not isinstance(data, list) or len(data) < 2:
            raise ValueError("ESPNow.recvinto(): Invalid argument")
        if timeout_ms is None:
            timeout_ms = _s.timeout_ms
        start = _time.ticks_ms()
        while not _s.rx:
            if timeout_ms >= 0 and _time.ticks_diff(_time.ticks_ms(), start) >= timeout_ms:
                return 0
            _time.sleep_ms(1)
        peer, msg, rssi, t = _s.rx.pop(0)
        _s.rx_bytes -= _PKT_OVERHEAD + len(msg)
        buf = data[1]
        if isinstance(buf, bytearray):
            buf[:] = msg  # recvinto resizes a bytearray to the message
        else:
            buf[: len(msg)] = msg
        entry = ESPNowBase.peers_table.get(peer)
        if entry is None:
            entry = ESPNowBase.peers_table[peer] = [rssi, t]
        else:
            entry[0], entry[1] = rssi, t
        data[0] = peer
        if len(data) >= 4:
            data[2] = rssi
            data[3] = t
        return len(msg)

    def any(self):
        self._check()
        return bool(_s.rx)

    def ioctl(self, req, arg):
        if req == 3:  # MP_STREAM_POLL
            return arg & 1 if _s.rx else 0
        return 0

    def send(self, *args):
        _sim.stack_mark()
        # send(msg) or send(peer, msg, sync=True), positional (modespnow.c:espnow_send)
        self._check()
        if not 1 <= len(args) <= 3:
            raise TypeError("function expected at most 4 arguments, got %d" % (len(args) + 1))
        peer, msg = (None, args[0]) if len(args) == 1 else args[:2]
        sync = len(args) < 3 or args[2] is None or bool(args[2])
        msg = bytes(msg)
        if len(msg) > MAX_DATA_LEN:
            raise _err(0x3066)
        import network

        if not (network.WLAN(0).active() or network.WLAN(1).active()):
            raise _err(0x306C)
        if peer is None:
            # every peer but broadcast and multicast ones (esp_now_send to NULL)
            targets = [m for m in _s.peers if not m[0] & 1]
        else:
            peer = _bytes(peer, ADDR_LEN)
            if peer not in _s.peers:
                raise _err(0x3069)
            targets = [peer]
        if sync:
            _wait_responses()  # the answers to earlier sync=False sends first
        failures = _s.stats[2]
        channel = network.WLAN(0).config("channel")
        for mac in targets:
            p = _s.peers[mac]
            _sim.emit("espnow.send", peer=_binascii.hexlify(mac).decode(),
                      msg=_binascii.b2a_base64(msg, newline=False).decode(),
                      channel=p[1] or channel, key=_key(mac))
            _transmitted(_answer())
        if sync:
            _wait_responses()
        # send_cb's status: the MAC-layer ack of each frame (the host's medium decides it)
        return not (sync and _s.stats[2] != failures)

    def set_pmk(self, pmk):
        _s.pmk = _bytes(pmk, KEY_LEN)

    def add_peer(self, mac, lmk=None, channel=None, ifidx=None, encrypt=None):
        self._check()
        mac = _bytes(mac, ADDR_LEN)
        if mac in _s.peers:
            raise _err(0x306B)
        if len(_s.peers) >= MAX_TOTAL_PEER_NUM:
            raise _err(0x3068)
        _s.peers[mac] = p = [bytes(KEY_LEN), 0, 0, False]
        self._update(p, lmk, channel, ifidx, encrypt)

    def _update(self, p, lmk, channel, ifidx, encrypt):
        if lmk is not None:
            p[3] = bool(lmk)
            if p[3]:
                p[0] = _bytes(lmk, KEY_LEN)
        if channel is not None:
            p[1] = channel
        if ifidx is not None:
            p[2] = ifidx
        if encrypt is not None:
            p[3] = bool(encrypt)

    def _peer(self, mac):
        mac = _bytes(mac, ADDR_LEN)
        p = _s.peers.get(mac)
        if p is None:
            raise _err(0x3069)
        return mac, p

    def get_peer(self, mac):
        mac, p = self._peer(mac)
        return (mac, p[0], p[1], p[2], p[3])

    def mod_peer(self, mac, lmk=None, channel=None, ifidx=None, encrypt=None):
        self._update(self._peer(mac)[1], lmk, channel, ifidx, encrypt)

    def del_peer(self, mac):
        mac, _ = self._peer(mac)
        del _s.peers[mac]

    def get_peers(self):
        self._check()
        return tuple((m, p[0], p[1], p[2], p[3]) for m, p in _s.peers.items())

    def peer_count(self):
        return (len(_s.peers), sum(1 for p in _s.peers.values() if p[3]))


_acked = _thread.allocate_lock()  # released by each answer of the host
_acked.acquire()
_answers = []  # (acked, busy_ms, cb_ms) per frame, from the host, not yet taken
_due = []  # (ticks_ms, acked): send callbacks still to come
_SEND_TIMEOUT_MS = const(2000)  # DEFAULT_SEND_TIMEOUT_MS: esp_now_send retried on NO_MEM
_RESPONSES_TIMEOUT_MS = const(100)  # PENDING_RESPONSES_TIMEOUT_MS
_ESP_ERR_ESPNOW_NO_MEM = const(0x3067)


def _sent(ok, busy_ms=0, cb_ms=0):
    # The host's medium answers each espnow.send: how long esp_now_send found the buffers
    # full, when send_cb came after the frame left, and whether the peer's radio acked.
    _answers.append((ok, busy_ms, cb_ms))
    try:
        _acked.release()
    except RuntimeError:
        pass  # already released: the waiter will see the list


def _answer():
    if _sim._link is None:
        return None  # no host: the frame goes nowhere and nothing answers
    while not _answers:
        _acked.acquire()
    return _answers.pop(0)


def _transmitted(answer):
    # espnow_send's loop: esp_now_send retried while ESP_ERR_ESPNOW_NO_MEM, for 2 s at most
    # (then check_esp_err raises it); the frame counts once taken; send_cb comes cb_ms later.
    if answer is None:
        _s.stats[0] += 1
        return
    ok, busy_ms, cb_ms = answer
    if busy_ms >= _SEND_TIMEOUT_MS:
        _time.sleep_ms(_SEND_TIMEOUT_MS)
        raise OSError(-_ESP_ERR_ESPNOW_NO_MEM, "ESP_ERR_ESPNOW_NO_MEM")
    if busy_ms:
        _time.sleep_ms(busy_ms)
    _s.stats[0] += 1
    _due.append((_time.ticks_add(_time.ticks_ms(), cb_ms), ok))


def _callbacks():
    # send_cb for each frame whose callback time has come: tx_responses, tx_failures
    now = _time.ticks_ms()
    for d in [d for d in _due if _time.ticks_diff(now, d[0]) >= 0]:
        _due.remove(d)
        _s.stats[1] += 1
        if not d[1]:
            _s.stats[2] += 1


def _wait_responses():
    # _wait_for_pending_responses: every send callback, or OSError(ETIMEDOUT) once more
    # than 100 ms have passed (device time)
    _callbacks()
    if not _due:
        return
    start = _time.ticks_ms()
    last = max(_time.ticks_diff(d[0], start) for d in _due)
    if last > _RESPONSES_TIMEOUT_MS:
        _time.sleep_ms(_RESPONSES_TIMEOUT_MS + 1)
        _callbacks()
        raise OSError(_ETIMEDOUT)
    _time.sleep_ms(last)
    _callbacks()


def _key(mac):
    # What the air carries about encryption: None in clear, else the keys (PMK + LMK)
    # a receiver must share to read the frame.
    p = _s.peers.get(mac)
    if p is None or not p[3] or mac == _BROADCAST:
        return None
    return _binascii.hexlify(_s.pmk + p[0]).decode()


def _deliver(peer, msg, rssi, key=None):
    # The radio's receive callback (control thread): into the ring buffer, or dropped.
    if not _s.active:
        return False
    p = _s.peers.get(peer)
    if key is not None and (p is None or not p[3] or _key(peer) != key):
        return False  # encrypted for someone else, or with other keys
    if p is not None and p[3] and key is None:
        return False
    if _s.rx_bytes + _PKT_OVERHEAD + len(msg) >= _s.rxbuf:
        _s.stats[4] += 1
        return False
    _s.rx.append((peer, msg, rssi, _time.ticks_ms()))
    _s.rx_bytes += _PKT_OVERHEAD + len(msg)
    _s.stats[3] += 1
    if _s.irq is not None:
        # modespnow.c:recv_cb: mp_sched_schedule (a full queue drops it), run by the VM's
        # task: _simirq keeps it off the simulator's threads.
        _simirq.isr(_s.irq, _s.irq_arg)
    _simclock.wake()
    return True
