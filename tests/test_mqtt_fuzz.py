"""The MQTT client in the host firmware against 10,000 malformed packets from a broker,
one per connection so that every one reaches the parser: the firmware records the error
it reported for each, and the record must be, packet by packet, the error MQTT 3.1.1
calls for (tests/mqttfuzz.py), with the heap where it was."""

import socket

from mqttfuzz import LETTER, MAX_PACKET, expected_record, generate
from mqttkit import CONNACK_OK, FakeBroker, Script, read_packet, packet

SEED = 20261203
COUNT = 10_000
WARMUP = 100  # connections before the heap is measured: buffers and caches settle

CLIENT = """
import asyncio, gc, json, uumqtt
import network
_w = network.WLAN(network.STA_IF); _w.active(True); _w.connect('epx-sim', None)
LETTER = {letters}
record = bytearray({count})
kept = []
async def main():
    c = uumqtt.MQTTClient('fuzz', '127.0.0.1', {port}, keepalive=60, max_packet={max_packet},
                          timeout_ms=2000, on_message=lambda *a: None)
    n = 0
    h0 = 0
    while n < {count}:
        try:
            await c.connect()
            e = await c.wait_closed()
        except uumqtt.MQTTError as x:
            e = x
        record[n] = LETTER.get(type(e).__name__ if e else None, 63)
        n += 1
        if {leak}:
            kept.append(bytearray({leak}))
        if n == {warmup}:
            gc.collect(); h0 = gc.mem_free()
    gc.collect()
    print(json.dumps(['done', n, h0, gc.mem_free()]))
    print(bytes(record[:n]).decode())
asyncio.run(main())
"""


def fuzz(cases, tmp_path, warmup=WARMUP, leak=0):
    """Serve one case per connection to the firmware's client: (record, heap before, after).
    `leak`: bytes the client script keeps per connection (a deliberately broken client)."""
    def handler(conn, i):
        if i >= len(cases):
            return False
        conn.sendall(CONNACK_OK + cases[i][0])
        conn.shutdown(socket.SHUT_WR)  # FIN after the packet: a truncated one ends there
        while read_packet(conn):  # until the client drops the connection
            pass

    fake = FakeBroker(handler)
    letters = {k: ord(v) for k, v in LETTER.items() if k}
    s = Script(CLIENT.format(letters=letters, count=len(cases), port=fake.port, max_packet=MAX_PACKET,
                             warmup=warmup, leak=leak), tmp_path, heapsize=120 * 1024)
    try:
        done = s.expect(lambda m: isinstance(m, list) and m[0] == "done", timeout=600)
        record = s.next()
        assert s.wait() == 0
    finally:
        s.close()
        fake.close()
    assert not fake.errors
    _, n, h0, h1 = done
    assert n == len(cases)
    return record, h0, h1


def first_difference(got, want):
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return i
    return None if len(got) == len(want) else min(len(got), len(want))


def test_ten_thousand_malformed_packets_each_rejected_as_the_spec_says(tmp_path):
    cases = generate(SEED, COUNT)
    assert len({p for p, _ in cases}) > 0.7 * COUNT  # mostly distinct, not one repeated
    want = expected_record(cases)
    assert {"P", "L", "C"} <= set(want)
    record, h0, h1 = fuzz(cases, tmp_path)
    print("heap free after warm-up and after the run:", h0, h1)
    i = first_difference(record, want)
    assert i is None, (i, cases[i], record[i])
    assert h1 >= h0 - 256, (h0, h1)


def test_the_same_seed_gives_the_same_packets():
    assert generate(SEED, 500) == generate(SEED, 500)
    assert generate(SEED, 500) != generate(SEED + 1, 500)


def test_an_accepted_packet_and_a_small_leak_are_both_caught(tmp_path):
    # A well-formed PINGRESP passed off as malformed: the client takes it, waits, and
    # reports the broker's FIN instead of a protocol error: the comparison catches it.
    # 16 bytes kept per connection: the heap bound catches that too.
    cases = generate(SEED, 200)
    cases[150] = (packet(0xD0, b""), "ProtocolError")
    record, h0, h1 = fuzz(cases, tmp_path, warmup=10, leak=16)
    assert first_difference(record, expected_record(cases)) == 150
    assert record[150] == "C"
    assert h1 < h0 - 256, (h0, h1)
