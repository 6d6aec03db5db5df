# Entry point of the simulated ESP32 (host firmware only): connect the control channel,
# take the world from the host, then do what ports/esp32/main.c does: frozen _boot.py,
# then boot.py and main.py (frozen first, else from the filesystem).
import sys
import vfs
import _simstack
import sim
import sim.ctl


class _ForcedExit(Exception):
    pass


def _import(module):
    # Import statements, as the product's: _simstack does not charge the host's import path
    # buffer (simstack.c), nor should it here, where the port runs the file from C.
    if module == "boot":
        import boot
    else:
        import main


def _exec_file(name):
    """pyexec_file_if_exists: 1 if it ran (or is absent), 0 if it raised; SystemExit out."""
    module = name[:-3]
    import micropython

    sim.stack_base = micropython.stack_use()
    _simstack.start(sim.stack_limit)
    try:
        try:
            _import(module)
            return 1
        except ImportError as e:
            if e.args != ("no module named '%s'" % module,):
                raise
        try:
            with open(name) as f:
                code = f.read()
        except OSError:
            return 1
        exec(code, {"__name__": "__main__"})
        return 1
    except SystemExit:
        raise _ForcedExit
    except BaseException as e:
        sys.print_exception(e)
        return 0


def main():
    sim.ctl.start()
    # An ESP32 boots with nothing mounted: the unix port's host root goes (the simulator
    # reaches the device folder past the VFS), _boot.py mounts the littlefs at "/".
    vfs.umount("/")
    sys.path[:] = ["", ".frozen", "/lib"]
    _simstack.start(sim.stack_limit)
    try:
        import _boot
    except Exception as e:  # pyexec_frozen_module prints and goes on
        sys.print_exception(e)
    try:
        if _exec_file("boot.py") and _exec_file("main.py"):
            pass
    except _ForcedExit:
        sim.exit(sim.EXIT_SOFT, "soft_reset")
    # The ESP32 would now sit at the REPL.
    sim.exit(sim.EXIT_REPL)


main()
