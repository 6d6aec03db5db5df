"""`epx devices`: every epx device on a real mosquitto in one table, from what simulated
devices (the real firmware) publish; `--watch` prints it again when a device goes away."""

import signal
import subprocess
import sys
import threading

from devconfig import config_text
from epx import devices

NETWORK_MS = 12000  # app starts net and MQTT this long after boot


def online(dev, watch, name):
    dev.wait_boot(1)
    dev.advance(NETWORK_MS)
    watch.wait_for(f"stat/{name}/LWT", lambda p: p == "Online", device=dev)
    watch.wait_for(f"stat/{name}/Log", lambda p: p.startswith("boot "), device=dev)


def rows(table):
    """{name: [cells]} of a table (cells split on runs of two spaces or more)."""
    import re

    lines = table.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == list(devices.HEADINGS)
    starts = [lines[0].index(h) for h in devices.HEADINGS] + [None]
    out = {}
    for line in lines[1:]:
        cells = [line[a:b].strip() for a, b in zip(starts, starts[1:])]
        out[cells[0]] = dict(zip(devices.COLUMNS, cells))
    return out


def test_every_device_in_one_table_and_watched(device, broker, mqtt_watch, firmware):
    w = mqtt_watch(broker)
    tank = device("h2o", config=config_text(broker, "tank", capacity=1000, unit="L",
                                             levelsensors="20,40,60,80,100", flowpulserate=4.8))
    plain = device("bare", config=config_text(broker, "plain"))
    broken = device("bare", config=config_text(broker, "broken", mqttkeepalive="soon"))  # safe mode
    for dev, name in ((tank, "tank"), (plain, "plain"), (broken, "broken")):
        online(dev, w, name)
    gone = device("bare", config=config_text(broker, "gone"))
    online(gone, w, "gone")
    gone.stop()
    w.wait_for("stat/gone/LWT", lambda p: p == "Offline")

    table = rows(devices.survey(broker.host, broker.port))
    assert sorted(table) == ["broken", "gone", "plain", "tank"]
    tank_row = table["tank"]
    assert (tank_row["profile"], tank_row["version"], tank_row["online"]) == (
        "h2o", firmware("h2o").version, "yes")
    assert tank_row["ip"].startswith("192.168.4.") and int(tank_row["rssi"]) < 0
    assert tank_row["reset"] == "power on" and tank_row["safe"] == "no"
    assert tank_row["uptime"] == "0 min"
    assert table["broken"]["safe"] == "yes" and table["plain"]["safe"] == "no"
    assert table["plain"]["profile"] == "bare"
    gone_row = table["gone"]
    # An offline device shows what it last said, if its Health was retained on the broker
    # before it went (it may have gone first).
    assert (gone_row["online"], gone_row["profile"]) == ("no", "bare")
    assert gone_row["ip"] == "" or gone_row["ip"].startswith("192.168.4."), gone_row

    # --watch: the table again when a device goes offline; Ctrl-C ends it cleanly
    proc = subprocess.Popen([sys.executable, "-m", "epx", "devices", "--broker",
                             f"{broker.host}:{broker.port}", "--watch"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tables, current, seen = [], [], threading.Condition()

    def read():
        for line in proc.stdout:
            if line.strip() == "" and current:
                with seen:
                    tables.append("".join(current[1:]))  # after the time and broker line
                    current.clear()
                    seen.notify_all()
            elif line.strip():
                current.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        with seen:
            assert seen.wait_for(lambda: any(rows(t).get("plain", {}).get("online") == "yes"
                                              and rows(t)["plain"]["ip"] for t in tables), 30), tables
        plain.stop()
        with seen:
            assert seen.wait_for(lambda: rows(tables[-1])["plain"]["online"] == "no", 30), tables
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 130
    assert proc.stderr.read() == ""
