# The unit-test runner inside the host firmware: the test_* functions of a module, in the
# order of their names; a PASS/FAIL line per test and a SUMMARY line the pytest side parses.
# Frozen into test firmwares (tests/firmware/appliances.py) or imported from this folder.
import sys


def run(name, package=None):
    mod = __import__(package + "." + name, None, None, [name]) if package else __import__(name)
    passed = failed = 0
    for test in sorted(k for k in dir(mod) if k.startswith("test_")):
        try:
            getattr(mod, test)()
        except Exception as e:
            failed += 1
            print("FAIL", test)
            sys.print_exception(e)
        else:
            passed += 1
            print("PASS", test)
    print("SUMMARY", name, "passed", passed, "failed", failed)


def eq(a, b, what=""):
    if a != b:
        raise AssertionError("%s: %r != %r" % (what, a, b) if what else "%r != %r" % (a, b))


def near(a, b, rel, what=""):
    if a is None or abs(a - b) > abs(b) * rel:
        raise AssertionError("%s: %r not within %g%% of %r" % (what, a, rel * 100, b))


def raises(exc, f, *args):
    try:
        f(*args)
    except exc as e:
        return e
    raise AssertionError("%s not raised" % exc.__name__)
