# Pads a peripheral holds (the EMAC's RMII, MDC/MDIO and PHY pins once network.LAN exists).
# On the ESP32 nothing refuses Pin, I2C or UART on such a pad: the GPIO matrix takes it
# from the peripheral, which stops working, and the new user reaches whatever the board
# wires there (the PHY), not its own device. The holder is told; the taker learns who held
# it. Host firmware only.
_held = {}  # pad -> (holder name, callback(pad))


def hold(pins, name, on_taken):
    for n in pins:
        _held[n] = (name, on_taken)


def take(n):
    """A GPIO, I2C or UART user takes pad n: True if a peripheral held it."""
    h = _held.pop(n, None)
    if h is None:
        return False
    h[1](n)
    return True


def holder(n):
    h = _held.get(n)
    return h[0] if h else None
