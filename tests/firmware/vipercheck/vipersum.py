import micropython


@micropython.viper
def checksum(buf: ptr8, n: int) -> int:
    total = 0
    for i in range(n):
        total = (total + buf[i] * (i + 1)) & 0xFFFF
    return total


def reference(buf):
    return sum(b * (i + 1) for i, b in enumerate(buf)) & 0xFFFF
