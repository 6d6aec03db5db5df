# Shared pieces of the appliance unit tests (tests/firmware/fwunit.py runs them).


class Wire:
    """The firmware end of a UART wired straight to a UART model (as machine.UART with
    timeout=0 reads: whatever is there, None when nothing)."""

    def __init__(self, model):
        self.model = model

    def write(self, buf):
        self.model.write(bytes(buf))
        return len(buf)

    def any(self):
        return len(self.model.rx)

    def readinto(self, buf):
        rx = self.model.rx
        n = min(len(buf), len(rx))
        if not n:
            return None
        buf[:n] = rx[:n]
        rx[0:n] = b""
        return n
