"""The air between simulated devices: ESP-NOW frames with loss, delay and channels."""

import random
import threading

BROADCAST = "ffffffffffff"


class Medium:
    """Devices join with their MAC; `espnow.send` events from one are delivered to the peer
    (or every other device for broadcast) unless lost, on the same channel only."""

    def __init__(self, loss=0.0, delay_ms=0, rssi=-50, seed=None):
        self.loss, self.delay_ms, self.rssi = loss, delay_ms, rssi
        self.random = random.Random(seed)
        self.devices = {}
        self.channels = {}  # mac -> channel the receiver listens on (None: any)
        self.frames = []  # (sender, peer, msg, outcome: delivered, lost, channel, receiver off, no peer, no_mem)
        self.lock = threading.Lock()
        # sender mac -> what its next frames meet, in turn: "late" (the send callback comes
        # LATE_MS after the frame, past the port's 100 ms wait) or "no_mem" (the sender's
        # ESP-NOW buffers stay full BUSY_MS: esp_now_send refuses it past the port's 2 s)
        self.trouble = {}

    LATE_MS = 150
    BUSY_MS = 2500

    def sending(self, sender, peer, msg, channel=None, key=None):
        """One espnow.send of `sender`: (acked, busy_ms, cb_ms) for its send callback: how
        long esp_now_send met full buffers, and when the callback came after the frame."""
        queue = self.trouble.get(sender.mac)
        trouble = queue.pop(0) if queue else None
        if trouble == "no_mem":
            with self.lock:
                self.frames.append((sender.mac, peer, msg, "no_mem"))
            return False, self.BUSY_MS, 0
        acked = self.send(sender, peer, msg, channel, key)
        return acked, 0, self.LATE_MS if trouble == "late" else 0

    def join(self, device):
        self.devices[device.mac] = device

    def leave(self, device):
        self.devices.pop(device.mac, None)

    def send(self, sender, peer, msg, channel=None, key=None):
        """Carry one frame; True if acknowledged, as ESP-NOW's send callback reports it: a
        broadcast always, a unicast frame when it reached its peer's radio."""
        peer = peer.replace(":", "").lower()
        acked = False
        targets = [d for m, d in self.devices.items()
                   if m != sender.mac and (peer == BROADCAST or m == peer)]
        for target in targets:
            listening = self.channels.get(target.mac)
            with self.lock:
                if listening is not None and channel is not None and listening != channel:
                    outcome = "channel"
                elif self.loss and self.random.random() < self.loss:
                    outcome = "lost"
                else:
                    outcome = "delivered"
                self.frames.append((sender.mac, target.mac, msg, outcome))
            if outcome == "delivered":
                args = dict(peer=sender.mac, msg=msg, rssi=self.rssi)
                if key:
                    args["key"] = key  # PMK + LMK of an encrypted peer: must match the receiver's
                if self.delay_ms:
                    threading.Timer(self.delay_ms / 1000, target.post, ("espnow.deliver",), args).start()
                    acked = True
                elif not target.post("espnow.deliver", **args):
                    with self.lock:
                        self.frames[-1] = (sender.mac, target.mac, msg, "receiver off")
                else:
                    acked = True
        if not targets:
            with self.lock:
                self.frames.append((sender.mac, peer, msg, "no peer"))
        return acked or peer == BROADCAST
