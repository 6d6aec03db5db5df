"""Scheduled pin IRQs in the simulated ESP32 (ports/unix/variant/simirq.c, machine.Pin.irq):
the 8-deep queue, the latency, the VM's pauses and edges latched with the flash cache off,
run inside the host firmware (tests/sim_irq_fw/t_irq.py)."""

import os
import socket
import ssl
import threading
from pathlib import Path

import pytest

from brokerkit import TestCA

from epx import build
from fwcode import assert_units_passed, run_code

HERE = Path(__file__).parent / "sim_irq_fw"
FWUNIT = Path(__file__).parent / "firmware"
RUNNER = "import sys;sys.path[:]=['.frozen',%r,%r];import fwunit;fwunit.run(%r)"


@pytest.fixture(scope="session")
def h2o_firmware():
    exe, _ = build.build_unix("h2o")
    return exe


def test_scheduled_irqs(h2o_firmware, tmp_path):
    (tmp_path / "flash.bin").write_bytes(b"\xff" * 0x400000)
    assert_units_passed(run_code(h2o_firmware, RUNNER % (str(HERE), str(FWUNIT), "t_irq"),
                                 tmp_path, timeout=120))


def test_tls_handshake_pause(h2o_firmware, tmp_path):
    ca = TestCA(tmp_path / "ca")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(ca.cert_path, ca.key_path)
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(60)

    def serve():
        conn, _ = server.accept()
        with ctx.wrap_socket(conn, server_side=True) as s:
            s.recv(16)

    threading.Thread(target=serve, daemon=True).start()
    env = dict(os.environ, SIM_IRQ_TLS_PORT=str(server.getsockname()[1]))
    assert_units_passed(run_code(h2o_firmware, RUNNER % (str(HERE), str(FWUNIT), "t_tls"),
                                 tmp_path, timeout=120, env=env))
    server.close()
