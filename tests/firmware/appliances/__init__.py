# A small test runner for unit tests inside the firmware: run("t_pzem") imports
# appliances.t_pzem, calls every test_* function, prints one line per test and a summary.
import sys


def run(name):
    module = __import__("appliances." + name, None, None, [name])
    failed = passed = 0
    for attr in sorted(dir(module)):
        if not attr.startswith("test_"):
            continue
        try:
            getattr(module, attr)()
        except Exception as e:
            failed += 1
            print("FAIL", attr)
            sys.print_exception(e)
        else:
            passed += 1
            print("PASS", attr)
    print("SUMMARY %s passed %d failed %d" % (name, passed, failed))


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


def expect_raises(exc, fn, *args):
    try:
        fn(*args)
    except exc as e:
        return e
    raise AssertionError("%s not raised" % exc.__name__)
