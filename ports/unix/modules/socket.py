# The simulated ESP32 `socket` module: real host sockets behind the ESP32's interface
# (addresses as ('ip', port) tuples, getaddrinfo errors as negative numbers), which need
# the simulated network link: no link, no connection; a socket from a lost link is dead.
# A socket the firmware binds is bound on the host's loopback at a free port (the device's
# port -> the host's, ctl op net.ports): the host reaches a server there as a station on
# the device's network or on its soft AP would; with neither, nothing reaches it.
import io as _io
import _simram
import uselect as _uselect
import usocket as _usocket
from errno import ECONNABORTED as _ECONNABORTED, EHOSTUNREACH as _EHOSTUNREACH
from errno import EADDRINUSE as _EADDRINUSE, EAGAIN as _EAGAIN
from usocket import AF_INET, AF_INET6, SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOL_SOCKET
from usocket import SO_REUSEADDR, SO_BROADCAST

import network as _network
import sim as _sim
from sim import get_int as _sim_get_int

IPPROTO_IP = const(0)
IPPROTO_TCP = const(6)
IPPROTO_UDP = const(17)
TCP_NODELAY = const(1)
_EAI_FAIL = const(-202)
_GET_FILENO = const(10)
_POLL = const(3)
_CLOSE = const(4)

_ports = {}  # ("tcp" or "udp", device port) -> host port, while the socket is open
# lwIP's socket table: CONFIG_LWIP_MAX_SOCKETS, ESP-IDF's default 10 (the port's
# sdkconfig.base leaves it): socket() and accept() take an entry, close() gives it back;
# none free is ENFILE (lwip_socket; lwip_accept also drops the new connection).
_MAX_SOCKETS = const(10)
_ENFILE = const(23)  # py/mperrno.h MP_ENFILE (not in the errno module)
_open = 0
# A socket's lwIP structures on the IDF heap (ESP-IDF's lwipopts.h: MEMP_MEM_MALLOC), an
# estimate: netconn, the pcb and the receive mailbox; lwip_socket fails ENOBUFS without.
_TCP_RAM = const(400)
_UDP_RAM = const(200)
_ENOBUFS = const(105)


def _raw(addr):
    # ('ip', port) -> the host's sockaddr
    if isinstance(addr, tuple):
        return _usocket.getaddrinfo(addr[0], addr[1])[0][-1]
    return addr


def _tuple(raw):
    _, ip, port = _usocket.sockaddr(raw)
    return ("%d.%d.%d.%d" % tuple(ip), port)


def _numeric(host):
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts)


# lwIP's resolver (core/dns.c, dns_check_entry, lwIP's defaults DNS_MAX_RETRIES 4 and
# DNS_TMR_INTERVAL 1 s): a query is sent again after 1, 1, 2 and 3 s, then the next server
# is asked the same way, then the look-up fails (EAI_FAIL). The world's DNS servers
# (wifi.set: dns_servers, 1 by default, as a home router's DHCP gives) answer after
# dns_ms; one that answers later than a server's 7 s has not answered at all.
# lwip_getaddrinfo blocks the VM meanwhile (device time).
_DNS_SERVER_MS = const(7000)


def _resolve_time():
    import sim

    w = sim.wifi
    answer_ms = w.get("dns_ms") or 0
    if answer_ms < _DNS_SERVER_MS:
        return answer_ms, True
    return _DNS_SERVER_MS * (w.get("dns_servers") or 1), False


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    # lwIP resolves an address literal without the network; a name needs DNS, so a link.
    if not _numeric(host) and _network._link() is None:
        raise OSError(_EAI_FAIL)
    if not _numeric(host):
        import time

        ms, answered = _resolve_time()
        if ms:
            time.sleep_ms(ms)
        if not answered:
            raise OSError(_EAI_FAIL)
    try:
        found = _usocket.getaddrinfo(host, port)
    except OSError:
        raise OSError(_EAI_FAIL)
    for entry in found:
        if entry[0] == AF_INET:
            return [(AF_INET, type or SOCK_STREAM, proto, "", _tuple(entry[-1]))]
    raise OSError(_EAI_FAIL)


def _take():
    # an entry of lwIP's table, or None
    global _open
    if _open >= _MAX_SOCKETS:
        return False
    _open += 1
    return True


def _give():
    global _open
    _open -= 1


class socket(_io.IOBase):
    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=0, _sock=None, _link=None):
        if _sock is None and not _take():
            import gc

            gc.collect()  # modsocket.c:socket_make_new tries again after a collection
            if not _take():
                raise OSError(_ENFILE)
        self._ram = _simram.take(_UDP_RAM if type == SOCK_DGRAM else _TCP_RAM)
        if self._ram is None:  # no room in the modelled RAM (simram.c)
            _give()
            if _sock is not None:
                _sock.close()
            raise OSError(_ENOBUFS)
        self._s = _sock or _usocket.socket(af, type, proto)
        self._link = _link
        self._type = type
        self._bound = None
        self._entry = True

    def _check(self):
        link = self._link
        if link is not None and _network._link() != link and not _network._ap_link(link):
            raise OSError(_ECONNABORTED)

    def __repr__(self):
        return "<socket fd=%d>" % self._s.fileno()

    def fileno(self):
        return self._s.fileno()

    def ioctl(self, req, arg):
        if req == _GET_FILENO:
            return self._s.fileno()
        if req == _POLL:
            # Asked by wrappers polling through this object (a tls socket over it).
            p = _uselect.poll()
            p.register(self._s, arg)
            r = p.poll(0)
            return r[0][1] if r else 0
        if req == _CLOSE:  # a tls wrapper closing its transport
            self.close()
        return 0

    def connect(self, addr):
        _sim.stack_mark()
        link = _network._link()
        if link is None:
            raise OSError(_EHOSTUNREACH)
        self._link = link
        self._s.connect(_raw(addr))

    def bind(self, addr):
        port = addr[1]
        key = ("udp" if self._type == SOCK_DGRAM else "tcp", port)
        if port and key in _ports:
            raise OSError(_EADDRINUSE)
        if not port:
            return self._s.bind(_raw(("127.0.0.1", 0)))
        # The unix port has no getsockname(): a free host port found by trying.
        from random import randint

        for _ in range(100):
            host_port = randint(20000, 60999)
            try:
                self._s.bind(_raw(("127.0.0.1", host_port)))
                break
            except OSError as e:
                if e.errno != _EADDRINUSE:
                    raise
        else:
            raise OSError(_EADDRINUSE)
        _ports[key] = host_port
        self._bound = key

    def listen(self, backlog=5):
        self._s.listen(backlog)

    def accept(self):
        _sim.stack_mark()
        s, addr = self._s.accept()
        if not _network._reachable():  # no station could have sent it
            s.close()
            raise OSError(_EAGAIN)
        if not _take():  # lwip_accept: netconn_delete(newconn), ENFILE
            s.close()
            raise OSError(_ENFILE)
        link = _network._any_station_link() or _network._link()
        return socket(_sock=s, _link=link), _tuple(addr)

    def setblocking(self, flag):
        self._s.setblocking(flag)

    def settimeout(self, value):
        self._s.settimeout(value)

    def setsockopt(self, level, opt, value):
        # modsocket.c:socket_setsockopt switches on the option alone (whatever the level):
        # SO_REUSEADDR, SO_BROADCAST, TCP_NODELAY reach lwIP; others only print a warning.
        if opt in (SO_REUSEADDR, SO_BROADCAST):
            self._s.setsockopt(SOL_SOCKET, opt, _sim_get_int(value))
        elif opt == TCP_NODELAY:
            self._s.setsockopt(IPPROTO_TCP, opt, _sim_get_int(value))
        else:
            print("Warning: lwip.setsockopt() option not implemented")

    def send(self, data):
        _sim.stack_mark()
        self._check()
        n = self._s.send(data)
        _sim.trace("send", data[:n] if n else b"")
        return n

    def sendall(self, data):
        _sim.stack_mark()
        self._check()
        _sim.trace("send", data)
        return self._s.write(data)

    def sendto(self, data, addr):
        _sim.stack_mark()
        if not _network._reachable():
            raise OSError(_EHOSTUNREACH)
        return self._s.sendto(data, _raw(addr))

    def recv(self, n):
        _sim.stack_mark()
        self._check()
        return self._s.recv(n)

    def recvfrom(self, n):
        _sim.stack_mark()
        self._check()
        data, addr = self._s.recvfrom(n)
        if not _network._reachable():  # no station could have sent it
            raise OSError(_EAGAIN)
        return data, _tuple(addr)

    def read(self, n=-1):
        _sim.stack_mark()
        self._check()
        return self._s.read() if n < 0 else self._s.read(n)

    def readinto(self, buf, n=None):
        _sim.stack_mark()
        self._check()
        return self._s.readinto(buf) if n is None else self._s.readinto(buf, n)

    def readline(self):
        self._check()
        return self._s.readline()

    def write(self, data):
        _sim.stack_mark()
        self._check()
        n = self._s.write(data)
        _sim.trace("send", data[:n] if n else b"")
        return n

    def makefile(self, mode="rb", buffering=0):
        return self

    def close(self):
        global _open
        if self._bound is not None:
            _ports.pop(self._bound, None)
            self._bound = None
        if self._entry:
            self._entry = False
            _open -= 1
        if self._ram is not None:
            _simram.give(self._ram)
            self._ram = None
        self._s.close()
