"""The Python API the ESP32 firmware offers, read from the pinned MicroPython source.

`port_api()` preprocesses the C of py/, extmod/ and ports/esp32/ for the epx board's
configuration (mpconfigport.h, the board's mpconfigboard.h, py/mpconfig.h's defaults,
the sdkconfig defaults and ESP-IDF's facts about the ESP32) and reads what the firmware
registers: each module's globals table, each type's locals dict and make_new, each
function's `allowed_args` (the keyword arguments it takes). The port's frozen Python
modules (ports/esp32/modules) are read with `ast`. `sim_api()` reads the simulator's
frozen stand-ins (ports/unix/modules) the same way, and `uses()` finds what product code
(modules/, profiles/) asks of the port's modules.
"""
import ast
import re
from pathlib import Path

from epx import source

ROOT = Path(__file__).resolve().parents[1]
MPY = source.micropython_dir()  # $MICROPY_DIR, or the tree `epx fetch` unpacked
PORT = MPY / "ports" / "esp32"
BOARD = ROOT / "boards" / "EPX_ESP32"
SIM = ROOT / "ports" / "unix" / "modules"

# What ESP-IDF v5.2.2 (docker/Dockerfile) defines for an ESP32 target and that the port's
# C tests in #if: the chip (Kconfig's CONFIG_IDF_TARGET_*), the IDF version
# (esp_idf_version.h) and the chip's capabilities (components/soc/esp32/include/soc/
# soc_caps.h). ESP-IDF is not part of the pinned tree; a capability absent here is one
# soc_caps.h leaves undefined for the ESP32 (e.g. SOC_USB_SERIAL_JTAG_SUPPORTED,
# SOC_GPIO_SUPPORT_HOLD_SINGLE_IO_IN_DSLP, SOC_I2C_SUPPORT_XTAL).
IDF_ESP32 = """
#define CONFIG_IDF_TARGET_ESP32 1
#define CONFIG_IDF_TARGET_ARCH_XTENSA 1
#define ESP_IDF_VERSION_MAJOR 5
#define ESP_IDF_VERSION_MINOR 2
#define ESP_IDF_VERSION_PATCH 2
#define ESP_IDF_VERSION_VAL(major, minor, patch) ((major << 16) | (minor << 8) | (patch))
#define ESP_IDF_VERSION ESP_IDF_VERSION_VAL(ESP_IDF_VERSION_MAJOR, ESP_IDF_VERSION_MINOR, ESP_IDF_VERSION_PATCH)
#define SOC_DAC_SUPPORTED 1
#define SOC_I2S_SUPPORTED 1
#define SOC_SDMMC_HOST_SUPPORTED 1
#define SOC_TOUCH_SENSOR_SUPPORTED 1
#define SOC_TOUCH_VERSION_1 1
#define SOC_TOUCH_SENSOR_VERSION 1
#define SOC_ULP_SUPPORTED 1
#define SOC_PM_SUPPORT_EXT0_WAKEUP 1
#define SOC_PM_SUPPORT_EXT1_WAKEUP 1
#define SOC_ADC_PERIPH_NUM 2
#define SOC_ADC_RTC_MIN_BITWIDTH 9
#define SOC_ADC_RTC_MAX_BITWIDTH 12
#define SOC_GPIO_PIN_COUNT 40
#define SOC_I2C_SUPPORT_APB 1
#define SOC_LEDC_SUPPORT_APB_CLOCK 1
#define SOC_LEDC_SUPPORT_REF_TICK 1
#define SOC_SPI_PERIPH_NUM 3
#define SOC_TIMER_GROUP_TIMERS_PER_GROUP 2
#define SOC_UART_HP_NUM 3
#define SOC_UART_NUM 3
#define SOC_EMAC_SUPPORTED 1
"""

# --- a C preprocessor, as far as #if and the tables need one -----------------------------

_TOKEN = re.compile(r"""\s*(?:(0[xX][0-9a-fA-F]+|\d+)[uUlL]*|([A-Za-z_]\w*)|('(?:\\.|[^'])')|("(?:\\.|[^"])*")|(##|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%<>!~&|^?:(),]|[^\s\w]))""")
_COMMENT = re.compile(r'//[^\n]*|/\*.*?\*/|("(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\')', re.S)


def _strip_comments(text):
    text = text.replace("\\\n", " ")
    return _COMMENT.sub(lambda m: m.group(1) or " ", text)


def _tokens(expr):
    out = []
    pos = 0
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise ValueError("cannot read %r" % expr[pos:])
        pos = m.end()
        num, name, char, string, op = m.groups()
        if num is not None:
            out.append(int(num, 16) if num[:2] in ("0x", "0X") else int(num, 8 if len(num) > 1 and num[0] == "0" else 10))
        elif name is not None:
            out.append(name)
        elif char is not None:
            out.append(ord(eval(char)))
        elif string is not None:
            out.append(string)
        else:
            out.append(" " + op)  # operators carry a space: never mistaken for names
    return out


_BINARY = [(" ||",), (" &&",), (" |",), (" ^",), (" &",), (" ==", " !="), (" <", " <=", " >", " >="),
           (" <<", " >>"), (" +", " -"), (" *", " /", " %")]


class _Expr:
    # Precedence climbing over the tokens of an #if once macros are expanded.
    def __init__(self, toks):
        self.t = toks
        self.i = 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self):
        self.i += 1
        return self.t[self.i - 1]

    def parse(self):
        v = self.cond()
        if self.i != len(self.t):
            raise ValueError("trailing tokens %r" % self.t[self.i:])
        return v

    def cond(self):
        c = self.binary(0)
        if self.peek() == " ?":
            self.take()
            a = self.cond()
            if self.take() != " :":
                raise ValueError("expected :")
            b = self.cond()
            return a if c else b
        return c

    def binary(self, level):
        if level == len(_BINARY):
            return self.unary()
        v = self.binary(level + 1)
        while self.peek() in _BINARY[level]:
            op = self.take()
            w = self.binary(level + 1)
            v = {" ||": lambda: int(bool(v or w)), " &&": lambda: int(bool(v and w)), " |": lambda: v | w,
                 " ^": lambda: v ^ w, " &": lambda: v & w, " ==": lambda: int(v == w),
                 " !=": lambda: int(v != w), " <": lambda: int(v < w), " <=": lambda: int(v <= w),
                 " >": lambda: int(v > w), " >=": lambda: int(v >= w), " <<": lambda: v << w,
                 " >>": lambda: v >> w, " +": lambda: v + w, " -": lambda: v - w, " *": lambda: v * w,
                 " /": lambda: v // w if w else 0, " %": lambda: v % w if w else 0}[op]()
        return v

    def unary(self):
        t = self.take()
        if t == " !":
            return int(not self.unary())
        if t == " ~":
            return ~self.unary()
        if t == " -":
            return -self.unary()
        if t == " +":
            return self.unary()
        if t == " (":
            v = self.cond()
            if self.take() != " )":
                raise ValueError("expected )")
            return v
        if isinstance(t, int):
            return t
        if isinstance(t, str) and not t.startswith(" "):
            return 0  # an identifier no macro defines is 0, as in C
        raise ValueError("unexpected %r" % (t,))


class Preprocessor:
    """Conditional compilation, object- and function-like macros, quoted includes."""

    def __init__(self, macros=None, search=()):
        self.macros = dict(macros or {})  # name -> (params or None, body tokens text)
        self.search = list(search)
        self.seen = []

    def copy(self):
        p = Preprocessor(self.macros, self.search)
        return p

    def define(self, line):
        m = re.match(r"(\w+)(\(([^)]*)\))?\s*(.*)", line.strip(), re.S)
        name, params, body = m.group(1), m.group(3), m.group(4).strip()
        if m.group(2) is not None:
            self.macros[name] = ([p.strip() for p in params.split(",") if p.strip()], body)
        else:
            self.macros[name] = (None, body)

    def expand(self, toks, active=frozenset()):
        out = []
        i = 0
        while i < len(toks):
            t = toks[i]
            i += 1
            if t == "defined":
                if toks[i] == " (":
                    name = toks[i + 1]
                    i += 3
                else:
                    name = toks[i]
                    i += 1
                out.append(int(name in self.macros))
                continue
            if not isinstance(t, str) or t.startswith(" ") or t in active or t not in self.macros:
                out.append(t)
                continue
            params, body = self.macros[t]
            if params is None:
                out.extend(self.expand(_tokens(body) if body else [], active | {t}))
                continue
            if i >= len(toks) or toks[i] != " (":
                out.append(t)
                continue
            depth, args, cur = 0, [], []
            i += 1
            while True:
                a = toks[i]
                i += 1
                if a == " (":
                    depth += 1
                elif a == " )":
                    if depth == 0:
                        args.append(cur)
                        break
                    depth -= 1
                elif a == " ," and depth == 0:
                    args.append(cur)
                    cur = []
                    continue
                cur.append(a)
            subst = []
            paste = False
            for b in _tokens(body):
                if b == " ##":
                    paste = True
                    continue
                piece = args[params.index(b)] if isinstance(b, str) and b in params else [b]
                if paste and subst and piece:
                    subst[-1] = str(subst[-1]) + str(piece[0])
                    piece = piece[1:]
                paste = False
                subst.extend(piece)
            out.extend(self.expand(subst, active | {t}))
        return out

    def value(self, expr):
        return _Expr(self.expand(_tokens(expr))).parse()

    def text_value(self, name):
        """An object-like macro's body, expanded as text (e.g. an include file name)."""
        toks = self.expand([name])
        return "".join(str(t).strip() if not isinstance(t, int) else str(t) for t in toks)

    def find(self, name, here):
        for d in [here] + self.search:
            p = d / name
            if p.is_file():
                return p
        return None

    def run(self, path, follow=None):
        """The lines of `path` that compile, includes inlined (those `follow` accepts)."""
        text = _strip_comments(Path(path).read_text(errors="replace"))
        out = []
        stack = []  # (taking now, some branch taken, parent taking)
        taking = True
        for line in text.split("\n"):
            m = re.match(r"\s*#\s*(\w+)\s*(.*)", line)
            if not m:
                if taking:
                    name = line.strip()
                    mac = self.macros.get(name)
                    if mac and mac[0] is None and re.fullmatch(r"[A-Z_][A-Z0-9_]*", name):
                        # a line that is one macro (MICROPY_PY_ERRNO_LIST in a table): expand it
                        # here, with the macros defined at this point
                        line = " ".join(str(t).strip() for t in self.expand([name]))
                    out.append(line)
                continue
            d, rest = m.group(1), m.group(2).strip()
            if d in ("if", "ifdef", "ifndef"):
                if not taking:
                    stack.append((False, True, False))
                else:
                    v = (rest.split()[0] in self.macros if d == "ifdef" else
                         rest.split()[0] not in self.macros if d == "ifndef" else bool(self.value(rest)))
                    stack.append((v, v, True))
                taking = stack[-1][0]
            elif d == "elif":
                _, done, parent = stack[-1]
                v = parent and not done and bool(self.value(rest))
                stack[-1] = (v, done or v, parent)
                taking = v
            elif d == "else":
                _, done, parent = stack[-1]
                stack[-1] = (parent and not done, True, parent)
                taking = stack[-1][0]
            elif d == "endif":
                stack.pop()
                taking = stack[-1][0] if stack else True
            elif not taking:
                continue
            elif d == "define":
                self.define(rest)
            elif d == "undef":
                self.macros.pop(rest.split()[0], None)
            elif d == "include":
                if rest.startswith("<"):
                    continue
                name = rest[1:-1] if rest.startswith('"') else self.text_value(rest).strip('"')
                found = self.find(name, Path(path).parent)
                if found is not None and (follow is None or follow(found)):
                    out.extend(self.run(found, follow))
        return out


def _sdkconfig(paths):
    lines = []
    for p in paths:
        for line in p.read_text().splitlines():
            m = re.match(r"(CONFIG_\w+)=(.*)", line.strip())
            if m:
                v = m.group(2)
                if v == "y":
                    lines.append("#define %s 1" % m.group(1))
                elif v == "n":
                    lines.append("#undef %s" % m.group(1))
                else:
                    lines.append("#define %s %s" % (m.group(1), v))
    return "\n".join(lines)


def _cmake_definitions():
    # target_compile_definitions of the port's CMake (MICROPY_VFS_FAT=1, MICROPY_VFS_LFS2=1)
    text = (PORT / "esp32_common.cmake").read_text()
    lines = []
    for block in re.findall(r"target_compile_definitions\(\$\{MICROPY_TARGET\} PUBLIC(.*?)\)", text, re.S):
        for m in re.finditer(r"^\s*(MICROPY_\w+)=(\w+)\s*$", block, re.M):
            lines.append("#define %s %s" % m.groups())
    return "\n".join(lines)


def _config():
    """The macros every ESP32 translation unit of the epx board starts with."""
    pp = Preprocessor(search=[PORT, MPY, BOARD])
    for text in (IDF_ESP32, _cmake_definitions(),
                 _sdkconfig([PORT / "boards" / "sdkconfig.base", BOARD / "sdkconfig.board"])):
        for line in text.strip().splitlines():
            if line.startswith("#define"):
                pp.define(line[len("#define"):])
            elif line.startswith("#undef"):
                pp.macros.pop(line.split()[1], None)
    in_tree = lambda p: BOARD in p.parents or PORT in p.parents or p.parent.name in ("py",)
    pp.run(PORT / "mpconfigport.h", lambda p: in_tree(p) and p.name.startswith("mpconfig"))
    pp.run(MPY / "py" / "mpconfig.h", lambda p: False)
    return pp


# --- what the C registers ---------------------------------------------------------------

_FUN = re.compile(r"MP_DEFINE_CONST_(FUN_OBJ_(?:0|1|2|3|VAR|VAR_BETWEEN|KW))\s*\(([^;]*?)\)\s*;")
_METHOD = re.compile(r"MP_DEFINE_CONST_(STATICMETHOD|CLASSMETHOD)_OBJ\s*\(\s*(\w+)\s*,\s*MP_ROM_PTR\s*\(\s*&\s*(\w+)\s*\)\s*\)")
_DICT = re.compile(r"MP_DEFINE_CONST_DICT\s*\(\s*(\w+)\s*,\s*(\w+)\s*\)")
_TABLE = re.compile(r"mp_rom_map_elem_t\s+(\w+)\s*\[\s*\]\s*=\s*\{(.*?)\}\s*;", re.S)
_ENTRY = re.compile(r"MP_(?:ROM_QSTR|OBJ_NEW_QSTR)\s*\(\s*MP_QSTR_(\w+)\s*\)\s*,\s*(MP_ROM_PTR\s*\(\s*&\s*(\w+)\s*\)|[^}]*)")
_TYPE = re.compile(r"MP_DEFINE_CONST_OBJ_TYPE\s*\(\s*(\w+)\s*,\s*MP_QSTR_(\w+)\s*,([^;]*?)\)\s*;", re.S)
_MODULE = re.compile(r"MP_REGISTER_(?:EXTENSIBLE_)?MODULE\s*\(\s*MP_QSTR_(\w+)\s*,\s*(\w+)\s*\)")
_MODULE_OBJ = re.compile(r"mp_obj_module_t\s+(\w+)\s*=\s*\{[^;]*?\.globals\s*=\s*\(mp_obj_dict_t\s*\*\)\s*&\s*(\w+)", re.S)
_FUNC_HEAD = re.compile(r"^(?:static\s+|STATIC\s+)?(?:inline\s+)?[\w ]*?\**\s*\b(\w+)\s*\(([^;{}]*)\)\s*\{", re.M)


def _bodies(text):
    funcs = {}
    for m in _FUNC_HEAD.finditer(text):
        depth, i = 1, m.end()
        while depth and i < len(text):
            c = text[i]
            depth += c == "{"
            depth -= c == "}"
            i += 1
        funcs[m.group(1)] = text[m.end():i]
    return funcs


class TU:
    """One translation unit's registrations."""

    def __init__(self, path, text, pp):
        self.path = path
        self.pp = pp
        self.funcs = _bodies(text)
        self.heads = {m.group(1): m.group(2) for m in _FUNC_HEAD.finditer(text)}
        self.funobj = {}  # obj -> (kind, C function)
        for m in _FUN.finditer(text):
            args = [a.strip() for a in m.group(2).split(",")]
            self.funobj[args[0]] = (m.group(1), args[-1])
        for m in _METHOD.finditer(text):
            self.funobj[m.group(2)] = self.funobj.get(m.group(3), ("FUN_OBJ_VAR", m.group(3)))
        self.dicts = dict((m.group(1), m.group(2)) for m in _DICT.finditer(text))
        self.tables = {}
        for m in _TABLE.finditer(text):
            body = self.expand(m.group(2), lambda body: "MP_QSTR" in body or not body)
            self.tables[m.group(1)] = [(e.group(1), e.group(3)) for e in _ENTRY.finditer(body)]
        self.types = {}
        for m in _TYPE.finditer(text):
            slots = [s.strip() for s in self.expand(m.group(3)).split(",") if s.strip()][1:]
            self.types[m.group(1)] = (m.group(2), dict(zip(slots[::2], [s.lstrip("&").strip() for s in slots[1::2]])))
        self.modobj = dict((m.group(1), m.group(2)) for m in _MODULE_OBJ.finditer(text))
        self.modules = [(m.group(1), m.group(2)) for m in _MODULE.finditer(text)]
        self.delegates = dict(re.findall(r"MP_REGISTER_MODULE_DELEGATION\s*\(\s*(\w+)\s*,\s*(\w+)\s*\)", text))
        self.qstr_arrays = {m.group(1): re.findall(r"MP_QSTR_(\w+)", m.group(2)) for m in re.finditer(
            r"(?:uint16_t|qstr)\s+(\w+)\s*\[\s*\]\s*=\s*\{(.*?)\}\s*;", text, re.S)}
        # file-level argument tables (spi_allowed_args) and protocol structs ({.init = f})
        self.arrays = {m.group(1): m.group(2) for m in re.finditer(
            r"mp_arg_t\s+(\w+)\s*\[\s*\]\s*=\s*\{(.*?)\}\s*;", text, re.S)}
        self.structs = {m.group(1): dict(re.findall(r"\.(\w+)\s*=\s*&?\s*(\w+)", m.group(2))) for m in re.finditer(
            r"\b(\w+)\s*=\s*\{([^;]*?)\}\s*;", text, re.S)}

    def expand(self, body, want=lambda body: True, active=frozenset()):
        # Object-like macros in a table or slot list (MICROPY_PY_MACHINE_EXTRA_GLOBALS).
        def sub(m):
            name = m.group(0)
            mac = self.pp.macros.get(name)
            if name in active or not mac or mac[0] is not None or not want(mac[1]):
                return name
            return self.expand(mac[1], want, active | {name})

        return re.sub(r"\b[A-Z_][A-Z0-9_]*\b", sub, body)


class Function:
    def __init__(self, cfun, kind, kwargs):
        self.cfun = cfun  # "path:function"
        self.kind = kind
        self.kwargs = kwargs  # frozenset of keyword names, empty when it takes none
        self.returns = None  # the Class a constructor function (network.LAN) returns

    def __repr__(self):
        return "Function(%s, kw=%s)" % (self.cfun, sorted(self.kwargs))


class Class:
    def __init__(self, name, where):
        self.name = name
        self.where = where
        self.attrs = {}  # name -> Function, Class or None (a constant)
        self.new = None  # Function of make_new, or None when not constructible
        self.protocol = {}  # the C protocol's functions ({"ioctl": ...} of a stream)

    def __repr__(self):
        return "Class(%s)" % self.name


class Module:
    def __init__(self, name, where):
        self.name = name
        self.where = where
        self.attrs = {}

    def __repr__(self):
        return "Module(%s)" % self.name


class PortAPI:
    def __init__(self):
        self.tus = {}
        self.modules = {}

    def find(self, kind, name, tu=None):
        """The translation unit defining `name` (a static name: `tu`'s own first)."""
        if tu is not None and name in getattr(tu, kind):
            return tu
        for t in self.tus.values():
            if name in getattr(t, kind):
                return t
        return None

    def kwargs(self, fname, tu, proto=None, seen=None):
        """The keyword names C function `fname` (and what it hands its keywords to) reads."""
        seen = set() if seen is None else seen
        tu = self.find("funcs", fname, tu)
        if tu is None or fname in seen:
            return set()
        seen.add(fname)
        body = tu.funcs[fname]
        names = set()
        local = re.search(r"allowed_args\s*\[\s*\]\s*=\s*\{(.*?)\}\s*;", body, re.S)
        if local:
            names.update(re.findall(r"MP_QSTR_(\w+)", local.group(1)))
        for arr in set(re.findall(r"\b(\w*allowed_args\w*)\b", body)):
            if not local and arr in tu.arrays:
                names.update(re.findall(r"MP_QSTR_(\w+)", tu.arrays[arr]))
        if re.search(r"mp_map_t\s*\*\s*kw", tu.heads.get(fname, "")) and not local:
            # a keyword map read key by key (WLAN.config): the keys it switches on
            names.update(re.findall(r"case\s+MP_QSTR_(\w+)\s*:", body))
        # keys compared one by one (Signal's invert)
        names.update(re.findall(r"==\s*MP_OBJ_NEW_QSTR\s*\(\s*MP_QSTR_(\w+)\s*\)", body))
        for call in re.finditer(r"(->\s*)?\b(\w+)\s*\(", body):
            callee = call.group(2)
            mac = tu.pp.macros.get(callee)
            if mac and mac[0] is None and re.fullmatch(r"\w+", mac[1]):
                callee = mac[1]  # MICROPY_PY_MACHINE_PIN_MAKE_NEW(...)
            if call.group(1):
                if proto is None or callee not in proto:
                    continue
                callee = proto[callee]  # i2c_p->init(...): the type's protocol
            if callee == fname or self.find("funcs", callee, tu) is None:
                continue
            depth, i = 1, call.end()
            while depth and i < len(body):
                depth += body[i] == "("
                depth -= body[i] == ")"
                i += 1
            if "kw" in body[call.end():i]:
                names |= self.kwargs(callee, tu, proto, seen)
        return names

    def function(self, obj, tu, proto=None):
        tu = self.find("funobj", obj, tu)
        if tu is None:
            return None
        kind, cfun = tu.funobj[obj]
        kw = frozenset(self.kwargs(cfun, tu, proto)) if kind == "FUN_OBJ_KW" else frozenset()
        where = self.find("funcs", cfun, tu)
        return Function("%s:%s" % (where.path if where else tu.path, cfun), kind, kw)

    def table(self, dict_name, tu):
        tu = self.find("dicts", dict_name, tu)
        if tu is None:
            return [], None
        table = tu.dicts[dict_name]
        owner = self.find("tables", table, tu)
        return (owner.tables[table], owner) if owner else ([], None)

    def value(self, ptr, done, tu, proto=None):
        if ptr is None:
            return None
        if ptr in done:
            return done[ptr]
        if self.find("types", ptr, tu) is not None:
            return self.cls(ptr, done, tu)
        return self.function(ptr, tu, proto)

    def cls(self, type_name, done, tu):
        tu = self.find("types", type_name, tu)
        qname, slots = tu.types[type_name]
        c = done[type_name] = Class(qname, tu.path)
        proto = None
        if "protocol" in slots:
            ptu = self.find("structs", slots["protocol"], tu)
            proto = ptu.structs[slots["protocol"]] if ptu else None
            c.protocol = proto or {}
        if "attr" in slots:
            # attributes an attr handler answers (ESPNowBase.peers_table)
            atu = self.find("funcs", slots["attr"], tu)
            for name in re.findall(r"attr\s*==\s*MP_QSTR_(\w+)", atu.funcs[slots["attr"]] if atu else ""):
                c.attrs[name] = None
        if "make_new" in slots:
            fn = slots["make_new"]
            where = self.find("funcs", fn, tu)
            c.new = Function("%s:%s" % (where.path if where else tu.path, fn), "make_new",
                             frozenset(self.kwargs(fn, tu, proto)))
        parent = slots.get("parent")
        if parent and self.find("types", parent, tu) is not None:
            base = self.cls(parent, done, tu)
            c.attrs.update(base.attrs)
            c.new = c.new or base.new
        if "locals_dict" in slots:
            entries, owner = self.table(slots["locals_dict"], tu)
            for name, ptr in entries:
                c.attrs[name] = self.value(ptr, done, owner, proto)
        return c


def _rel(path):
    return str(Path(path).relative_to(MPY))


_api = None


def port_api():
    """{module name: Module} of the ESP32 firmware (C modules and frozen port modules)."""
    global _api
    if _api is not None:
        return _api
    base = _config()
    api = PortAPI()
    follow = lambda p: PORT in p.parents or (MPY / "extmod") in p.parents
    sources = sorted((MPY / "py").glob("*.c")) + sorted((MPY / "extmod").glob("*.c")) + sorted(PORT.glob("*.c"))
    for src in sources:
        pp = base.copy()
        text = "\n".join(pp.run(src, follow))
        api.tus[_rel(src)] = TU(_rel(src), text, pp)
    for tu in api.tus.values():
        for qname, obj in tu.modules:
            mtu = api.find("modobj", obj, tu)
            if mtu is None:
                raise LookupError("module %s: no globals for %s in %s" % (qname, obj, tu.path))
            mod = api.modules.setdefault(qname, Module(qname, mtu.path))
            done = {}
            entries, owner = api.table(mtu.modobj[obj], mtu)
            for name, ptr in entries:
                if name.startswith("__") and name != "__init__":
                    continue
                mod.attrs[name] = api.value(ptr, done, owner)
            if obj in tu.delegates:
                # attributes a module's attr delegate answers (sys.path)
                body = tu.funcs.get(tu.delegates[obj], "")
                names = re.findall(r"attr\s*==\s*MP_QSTR_(\w+)", body)
                for ident in re.findall(r"\w+", body):
                    names += tu.qstr_arrays.get(ident, [])
                for name in names:
                    mod.attrs.setdefault(name, None)
            for name, f in list(mod.attrs.items()):
                if isinstance(f, Function):
                    # network.LAN() is a function returning the singleton of type LAN
                    ftu = api.tus[f.cfun.split(":")[0]]
                    for t, (q, _) in ftu.types.items():
                        if q == name:
                            f.returns = api.cls(t, done, ftu)
    _frozen(api)
    # @micropython.native/viper/asm_*: decorators the compiler takes, not attributes
    body = api.tus["py/compile.c"].funcs["compile_built_in_decorator"]
    api.modules["micropython"].decorators = set(re.findall(r"attr\s*==\s*MP_QSTR_(\w+)", body))
    _api = api.modules
    return _api


def _frozen(api):
    # The port's frozen modules the epx boards include (boards/EPX_ESP32/manifest.py).
    manifest = (BOARD / "manifest.py").read_text()
    for name in re.findall(r'module\("(\w+)\.py", base_path="\$\(PORT_DIR\)/modules"\)', manifest):
        py = PORT / "modules" / (name + ".py")
        mod = Module(name, _rel(py))
        tree = ast.parse(py.read_text())
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.names[0].name == "*":
                src = api.modules.get(node.module)
                if src is not None:
                    mod.attrs.update(src.attrs)
            elif isinstance(node, ast.ClassDef):
                c = Class(node.name, _rel(py))
                for b in node.bases:
                    if isinstance(b, ast.Name) and isinstance(mod.attrs.get(b.id), Class):
                        c.attrs.update(mod.attrs[b.id].attrs)
                        c.new = mod.attrs[b.id].new
                for item in node.body:
                    if isinstance(item, ast.FunctionDef):
                        f = _py_function(item, "%s:%s.%s" % (_rel(py), node.name, item.name))
                        if item.name == "__init__":
                            c.new = f
                        elif not item.name.startswith("__"):
                            c.attrs[item.name] = f
                mod.attrs[node.name] = c
            elif isinstance(node, ast.FunctionDef):
                mod.attrs[node.name] = _py_function(node, "%s:%s" % (_rel(py), node.name))
            elif isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        mod.attrs[t.id] = None
        api.modules[name] = mod


def _py_function(node, where):
    a = node.args
    names = [x.arg for x in a.args + a.kwonlyargs][1 if a.args and a.args[0].arg == "self" else 0:]
    return Function(where, "py", frozenset(names) | ({"**"} if a.kwarg else set()))


# --- the simulator's stand-ins ----------------------------------------------------------


class SimFunction:
    def __init__(self, node, where):
        a = node.args
        self.where = "%s:%d" % (where, node.lineno)
        args = a.args[1:] if a.args and a.args[0].arg in ("self", "cls") else a.args
        if any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list):
            args = a.args
        ndef = len(a.defaults)
        self.positional = [x.arg for x in args]
        self.defaulted = [x.arg for x in args[len(args) - ndef:]] if ndef else []
        self.kwonly = [x.arg for x in a.kwonlyargs]
        self.varkw = a.kwarg.arg if a.kwarg else None


def _public(name):
    return not name.startswith("_")


def sim_module(source, name):
    """{attr: SimFunction | dict (a class: attr -> SimFunction | None) | None} of a sim module."""
    tree = ast.parse(source)
    classes = {}
    out = {}

    def cls(node):
        attrs = {}
        for b in node.bases:
            if isinstance(b, ast.Name) and b.id in classes:
                attrs.update(classes[b.id])
                attrs["__init__"] = list(attrs.get("__init__", ()))
        for item in node.body:
            if isinstance(item, ast.FunctionDef):
                if item.name in ("__init__", "__new__"):
                    attrs.setdefault("__init__", []).append(SimFunction(item, "%s.%s" % (name, node.name)))
                elif _public(item.name):
                    attrs[item.name] = SimFunction(item, "%s.%s" % (name, node.name))
                for sub in ast.walk(item):
                    # instance attributes: self.x = ...
                    if isinstance(sub, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                        targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
                        for t in targets:
                            for e in ast.walk(t):
                                if (isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name)
                                        and e.value.id == "self" and _public(e.attr)):
                                    attrs.setdefault(e.attr, None)
            elif isinstance(item, ast.Assign):
                for t in item.targets:
                    if isinstance(t, ast.Name) and _public(t.id):
                        attrs[t.id] = None
        return attrs

    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            classes[node.name] = cls(node)
            if _public(node.name):
                out[node.name] = classes[node.name]
        elif isinstance(node, ast.FunctionDef) and _public(node.name):
            out[node.name] = SimFunction(node, name)
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name) and _public(t.id):
                    v = node.value
                    if isinstance(v, ast.Name) and v.id in classes:
                        out[t.id] = classes[v.id]
                    else:
                        out[t.id] = None
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                bound = a.asname or a.name.split(".")[0]
                if a.name == "*":
                    continue  # `from uos import *`: the unix port's names, checked at use
                if _public(bound):
                    out[bound] = "import"
    return out


# The simulated modules and the port module each stands in for.
SIM_MODULES = {"machine": "machine", "esp32": "esp32", "network": "network", "_espnow": "_espnow",
               "socket": "socket", "os": "os"}


def check_sim(name, source, api=None):
    """What the sim module `name` (source text) offers that the port's module lacks."""
    api = api or port_api()
    port = api[SIM_MODULES[name]]
    problems = []
    for attr, val in sim_module(source, name).items():
        if attr not in port.attrs:
            problems.append("%s.%s: not in the port's %s (%s)" % (name, attr, port.name, port.where))
            continue
        problems += _check_value("%s.%s" % (name, attr), val, port.attrs[attr])
    return problems


def _check_value(label, sim, port):
    out = []
    if isinstance(sim, SimFunction):
        if isinstance(port, Function):
            out += _check_sig(label, sim, port)
        elif isinstance(port, Class) and port.new is not None:
            out += _check_sig(label, sim, port.new)
    elif isinstance(sim, dict):
        if not isinstance(port, Class):
            return ["%s: a class in the simulator, not in the port" % label]
        for attr, val in sim.items():
            if attr == "__init__":
                for f in val:
                    if port.new is None:
                        out.append("%s(): the port's %s cannot be constructed" % (label, port.name))
                    else:
                        out += _check_sig(label + "()", f, port.new)
                continue
            if attr not in port.attrs:
                if attr in port.protocol and attr in _STREAM_METHODS:
                    continue  # a Python stream's method for the C protocol the port's type has
                out.append("%s.%s: not in the port's %s (%s)" % (label, attr, port.name, port.where))
            elif isinstance(val, SimFunction) and isinstance(port.attrs[attr], Function):
                out += _check_sig("%s.%s" % (label, attr), val, port.attrs[attr])
    return out


# How a Python class implements a C stream protocol (mp_stream_p_t) in MicroPython: an
# io.IOBase subclass's ioctl, readinto and write methods.
_STREAM_METHODS = ("ioctl", "readinto", "write")


def _check_sig(label, sim, port):
    out = []
    kw = port.kwargs
    if port.kind == "py":
        return [] if "**" in kw else ["%s(%s=): no such argument in %s" % (label, n, port.cfun)
                                      for n in sim.kwonly if n not in kw]
    for n in sim.kwonly:
        if n not in kw:
            out.append("%s(%s=): the port's %s takes no keyword %s" % (label, n, port.cfun, n))
    if kw:
        for n in sim.defaulted:
            if n not in kw:
                out.append("%s(%s=): the port's %s takes no keyword %s" % (label, n, port.cfun, n))
    if sim.varkw and not kw:
        out.append("%s(**%s): the port's %s takes no keyword arguments" % (label, sim.varkw, port.cfun))
    return out


# --- what product code uses -------------------------------------------------------------


def _frozen_python_modules():
    names = set()
    for p in (MPY / "extmod" / "asyncio").glob("*.py"):
        names.add("asyncio")
    return names


class _Uses(ast.NodeVisitor):
    """Attribute uses and keyword arguments on the port's modules, classes and objects."""

    def __init__(self, api, label, local):
        self.api = api
        self.label = label
        self.local = local  # names of the product's own modules
        self.problems = []
        self.scopes = [{}]
        self.fields = {}  # self.x -> value, per class

    def bind(self, name, value):
        self.scopes[-1][name] = value

    def lookup(self, name):
        for s in reversed(self.scopes):
            if name in s:
                return s[name]
        return None

    def report(self, node, text):
        self.problems.append("%s:%d: %s" % (self.label, node.lineno, text))

    def visit_Import(self, node):
        for a in node.names:
            self.imported(node, a.name)
            top = a.name.split(".")[0]
            self.bind(a.asname or top, self.api.get(a.name) if a.asname else self.api.get(top))

    def visit_ImportFrom(self, node):
        if node.level or not node.module:
            return
        self.imported(node, node.module)
        mod = self.api.get(node.module)
        for a in node.names:
            if mod is None:
                self.bind(a.asname or a.name, None)
                continue
            if a.name != "*" and a.name not in mod.attrs:
                self.report(node, "from %s import %s: the port's %s (%s) has no %s"
                            % (node.module, a.name, node.module, mod.where, a.name))
            self.bind(a.asname or a.name, mod.attrs.get(a.name))

    def imported(self, node, name):
        top = name.split(".")[0]
        if top in self.api or top in self.local or top in _frozen_python_modules():
            return
        self.report(node, "import %s: the ESP32 firmware has no module %s" % (name, name))

    def resolve(self, node):
        if isinstance(node, ast.Name):
            return self.lookup(node.id)
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                return self.fields.get(node.attr)
            base = self.resolve(node.value)
            if isinstance(base, (Module, Class)):
                if node.attr not in base.attrs:
                    kind = "module" if isinstance(base, Module) else "class"
                    self.report(node, "%s.%s: the port's %s %s (%s) has no %s"
                                % (base.name, node.attr, kind, base.name, base.where, node.attr))
                    return None
                return base.attrs[node.attr]
            if isinstance(base, _Instance):
                if node.attr not in base.cls.attrs:
                    self.report(node, "%s().%s: the port's %s (%s) has no %s"
                                % (base.cls.name, node.attr, base.cls.name, base.cls.where, node.attr))
                    return None
                return base.cls.attrs[node.attr]
            return None
        if isinstance(node, ast.Call):
            f = self.resolve(node.func)
            target = f.new if isinstance(f, Class) else f
            if isinstance(target, Function):
                self.check_call(node, target)
            if isinstance(f, Class):
                return _Instance(f)
            if isinstance(f, Function) and f.returns is not None:
                return _Instance(f.returns)
            return None
        return None

    def check_call(self, node, fn):
        for k in node.keywords:
            if k.arg is None:
                continue
            if "**" in fn.kwargs:
                continue
            if k.arg not in fn.kwargs:
                self.report(node, "%s=: %s takes no keyword %s" % (k.arg, fn.cfun, k.arg))

    def visit_Attribute(self, node):
        self.resolve(node)
        self.generic_visit(node)

    def visit_Call(self, node):
        self.resolve(node)
        for a in node.args:
            self.visit(a)
        for k in node.keywords:
            self.visit(k.value)
        if not isinstance(node.func, ast.Name):
            self.visit(node.func.value if isinstance(node.func, ast.Attribute) else node.func)

    def visit_Assign(self, node):
        self.visit(node.value)
        value = self.resolve(node.value)
        for t in node.targets:
            if isinstance(t, ast.Name):
                self.bind(t.id, value)
            elif isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                old = self.fields.get(t.attr, value)
                self.fields[t.attr] = value if _same(old, value) else None
            else:
                self.visit(t)

    def visit_FunctionDef(self, node):
        for d in node.decorator_list:
            if isinstance(d, ast.Attribute) and isinstance(self.resolve_quiet(d.value), Module):
                mod = self.resolve_quiet(d.value)
                if d.attr in getattr(mod, "decorators", ()):
                    continue
            self.visit(d)
        self.scopes.append({a.arg: None for a in node.args.args + node.args.kwonlyargs})
        for d in node.args.defaults + node.args.kw_defaults:
            if d is not None:
                self.visit(d)
        for stmt in node.body:
            self.visit(stmt)
        self.scopes.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        saved = self.fields
        self.fields = {}
        # self.x bindings first, so every method sees them
        for item in ast.walk(node):
            if isinstance(item, ast.Assign):
                for t in item.targets:
                    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                        v = self._quiet(item.value)
                        old = self.fields.get(t.attr, v)
                        self.fields[t.attr] = v if _same(old, v) else None
        self.scopes.append({})
        for stmt in node.body:
            self.visit(stmt)
        self.scopes.pop()
        self.fields = saved

    def resolve_quiet(self, node):
        return self._quiet(node)

    def _quiet(self, node):
        saved = self.problems
        self.problems = []
        try:
            return self.resolve(node)
        finally:
            self.problems = saved


class _Instance:
    def __init__(self, cls):
        self.cls = cls


def _same(a, b):
    if isinstance(a, _Instance) and isinstance(b, _Instance):
        return a.cls is b.cls
    return a is b


def check_source(source, label, api=None, local=()):
    """Uses in product source of names the port lacks."""
    v = _Uses(api or port_api(), label, set(local))
    v.visit(ast.parse(source))
    return list(dict.fromkeys(v.problems))


def product_files():
    for top in ("modules", "profiles"):
        yield from sorted((ROOT / top).rglob("*.py"))


def local_modules():
    """Module names the product itself provides (frozen from modules/ and profiles/)."""
    names = {"board", "epx", "uumqtt"}
    for p in product_files():
        if p.name != "manifest.py":
            names.add(p.stem)
            names.add(p.parent.name)
    return names
