# The simulated ESP32 `os`: the unix port's file functions (on the mounted littlefs), with
# the ESP32's uname(), dupterm() and sync(). Only what extmod/modos.c gives the ESP32: not
# the unix port's getenv, system or VfsPosix.
from uos import VfsLfs2, chdir, getcwd, ilistdir, listdir, mkdir, mount, remove, rename, rmdir
from uos import sep, stat, statvfs, umount, unlink, urandom


class _UName(tuple):
    sysname = property(lambda self: self[0])
    nodename = property(lambda self: self[1])
    release = property(lambda self: self[2])
    version = property(lambda self: self[3])
    machine = property(lambda self: self[4])


def uname():
    return _UName(("esp32", "esp32", "1.25.0", "v1.25.0 on 2025-04-15", "Generic ESP32 module with ESP32"))


def dupterm(stream_object=None, index=0):
    return None


def sync():
    pass
