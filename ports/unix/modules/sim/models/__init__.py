# Device models: the chips on the simulated board. A model is a class in its own module,
# sim/models/<name lowercased>.py, found by class name; the host attaches it to a bus with
# the model.attach op. Host firmware only.
import sim

# bus name -> {address: model} for I2C ("i2c0", "i2c1", or "i2c@<scl>,<sda>" by pins),
# bus name -> model for UART ("uart1", "uart2"); pin models watch pins.
buses = {}
by_name = {}
_watchers = {}  # pin -> [pin-level models]
_voltages = {}  # pin -> the model setting its analog voltage


class Model:
    """Base of all models: a name, keyword arguments from the host, persistent state."""

    def __init__(self, **args):
        self.args = args

    def restore(self, state):
        """State kept by the host across boots (what save() emitted last)."""

    def save(self, state):
        sim.emit("model", name=self.name, state=state)


class I2CModel(Model):
    """An I2C target. present=False: it does not acknowledge (OSError ENODEV);
    stuck=True: it holds the bus (OSError ETIMEDOUT)."""

    present = True
    stuck = False

    def write(self, buf):
        pass

    def read(self, n):
        return bytes(n)

    def absent(self, flag=True):
        self.present = not flag


class UARTModel(Model):
    """A UART peer: write() gets what the firmware transmits; reply() queues its answer."""

    def __init__(self, **args):
        super().__init__(**args)
        self.rx = bytearray()

    def write(self, buf):
        pass

    def reply(self, data):
        self.rx.extend(data)


class PinModel(Model):
    """A chip on GPIOs: watch() the pins it listens to, on_pin() sees their edges,
    drive() sets the level of the firmware's input pins."""

    def watch(self, *pins):
        for p in pins:
            _watchers.setdefault(p, []).append(self)

    def on_pin(self, pin, value):
        pass

    def supply(self, *pins):
        """Declare the pins whose voltage (ADC) voltage(pin) gives, in microvolts."""
        for p in pins:
            _voltages[p] = self

    def voltage(self, pin):
        return 0

    def drive(self, pin, value):
        import machine

        machine.Pin._drive(pin, value)


def model_class(name):
    module = __import__("sim.models." + name.lower(), None, None, [name])
    return getattr(module, name)


def attach(bus, model, addr=None, args=None, state=None, name=None):
    m = model_class(model)(**(args or {}))
    m.name = name or "%s@%s%s" % (model, bus, "" if addr is None else ":%s" % addr)
    m.bus = bus
    m.addr = addr
    if state is not None:
        m.restore(state)
    if bus.startswith("i2c"):
        if addr is None:
            raise ValueError("an I2C model needs addr")
        buses.setdefault(bus, {})[addr] = m
    elif bus.startswith("uart"):
        buses[bus] = m
    elif bus != "pins":
        raise ValueError("unknown bus %r" % bus)
    by_name[m.name] = m
    return m


def watchers(pin):
    return _watchers.get(pin)


def watched():
    return list(_watchers)


def voltage_at(pin):
    m = _voltages.get(pin)
    return m.voltage(pin) if m is not None else 0


def call(name, method, args=()):
    try:
        m = by_name[name]
    except KeyError:
        raise ValueError("no model %r" % name)
    return getattr(m, method)(*args)
