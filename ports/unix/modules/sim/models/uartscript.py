# A UART peer that answers by script: {request hex: reply hex}; with no script it echoes
# (a loopback plug). The host can also push bytes (feed) and read what was sent (sent).
import binascii
from sim.models import UARTModel


class UARTScript(UARTModel):
    def __init__(self, script=None, **args):
        super().__init__(**args)
        self.script = {}
        self.received = bytearray()
        for req, rep in (script or {}).items():
            self.on(req, rep)

    def write(self, buf):
        self.received.extend(buf)
        if not self.script:
            self.reply(buf)
            return
        reply = self.script.get(bytes(self.received))
        if reply is not None:
            self.received[:] = b""
            self.reply(reply)

    # host side (model.call)
    def on(self, request_hex, reply_hex):
        self.script[binascii.unhexlify(request_hex)] = binascii.unhexlify(reply_hex)

    def feed(self, data_hex):
        self.reply(binascii.unhexlify(data_hex))

    def sent(self):
        data = binascii.hexlify(self.received).decode()
        self.received[:] = b""
        return data
