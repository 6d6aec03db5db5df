# An app image from an HTTP server into an OTA partition, one 4 KB flash sector at a time
# through one preallocated buffer, checked on the way (appimage.Check). The image is named by
# its appended SHA-256, which covers every byte before it: one hash pass checks the image
# and the request (hashlib has no copy() to share a pass with a whole-file hash). Nothing
# outside the target partition is written. Reading the flash back is left to set_boot(),
# which verifies the image in flash (ESP-IDF's esp_image_verify) before it switches.
import asyncio
import errno
from micropython import const

from epx import appimage, http

SECTOR = const(4096)
_ERASE = const(6)  # MP_BLOCKDEV_IOCTL_BLOCK_ERASE

# Taken at boot, while the heap is whole: later a fragmented heap may have no 4 KB left.
_buf = bytearray(SECTOR)


class Refused(Exception):
    """The image or its transfer is not acceptable: the message says why."""


async def write(part, url, size, sha256, accept, progress=None, timeout_ms=20000, buf=None):
    """Stream url (size bytes, appended SHA-256 digest sha256) into part, whose ioctl
    erases 4 KB blocks. accept(version, project, secure_version) raises Refused for an app
    descriptor it does not want; progress(done) is called after each sector. Returns the descriptor's version."""
    if size > part.ioctl(4, 0) * SECTOR:
        raise Refused("image of %d bytes does not fit the %s partition" % (size, part.info()[4]))
    buf = buf or _buf
    mv = memoryview(buf)
    try:
        r = await http.get(url, timeout_ms)
    except asyncio.TimeoutError:
        raise Refused("HTTP server did not answer in time")
    except (http.HTTPError, ValueError, OSError) as e:
        raise Refused("download: %s" % _reason(e))
    try:
        if r.length != size:
            raise Refused("server sends %d bytes, the request says %d" % (r.length, size))
        check = appimage.Check()
        block = done = 0
        while done < size:
            fill = 0
            want = min(SECTOR, size - done)
            while fill < want:
                try:
                    fill += await r.readinto(mv[fill:want])
                except asyncio.TimeoutError:
                    raise Refused("download stalled at %d of %d bytes" % (done + fill, size))
                except (http.HTTPError, OSError) as e:
                    raise Refused("download: %s" % _reason(e))
            chunk = mv[:fill]
            try:
                check.feed(chunk)
            except ValueError as e:
                raise Refused(str(e))
            if block == 0:
                if check.desc is None:
                    raise Refused("image: no app descriptor in the first segment")
                accept(*check.desc)
            part.ioctl(_ERASE, block)
            part.writeblocks(block, chunk, 0)
            block += 1
            done += fill
            if progress:
                progress(done)
    finally:
        await r.close()
    try:
        version = check.finish()[0]
    except ValueError as e:
        raise Refused(str(e))
    if check.digest != sha256:
        raise Refused("SHA-256 of the image does not match the request")
    return version


def _reason(e):
    if isinstance(e, OSError) and e.args and isinstance(e.args[0], int):
        return errno.errorcode.get(e.args[0], "error %d" % e.args[0])
    return str(e) or type(e).__name__
