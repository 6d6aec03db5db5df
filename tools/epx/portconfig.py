"""The host firmware's C configuration, derived from the pinned ESP32 port's.

The ESP32 port's ``mpconfigport.h`` (with the board's ``mpconfigboard.h``) is run through
the C preprocessor as the ESP32 build sees it; every ``MICROPY_*`` setting it makes is
copied into a header the unix variant includes, except those named in ``HOST_DIFFERS``
(hardware, ESP-IDF glue, or what a unix build cannot take), each with its reason. A
setting the port gains or loses that this table does not classify stops the build, so the
two cannot drift apart silently. docs/port-parity.md explains each difference.
"""

import re
import subprocess
import tempfile
from pathlib import Path

from .errors import EpxError

HEADER = "epx_esp32_config.h"

# As ESP-IDF configures an ESP32 (CONFIG_IDF_TARGET_*): the conditionals of the port's
# header pick the ESP32's values. The IDF headers it includes are empty stand-ins; only
# macros are read.
ESP32_TARGET = {"CONFIG_IDF_TARGET_ESP32": "1", "CONFIG_IDF_TARGET_ARCH_XTENSA": "1"}
STUB_HEADERS = ("esp_random.h", "esp_system.h", "freertos/FreeRTOS.h", "driver/i2s_std.h", "esp_wifi_types.h",
                "stdint.h", "alloca.h", "sys/types.h")

# Settings of the port the host build does not copy: a name, or a prefix ending in `_`
# or `*`, and why. Every entry must still match a setting of the port.
HOST_DIFFERS = {
    # Simulated in Python (ports/unix/modules) against the host, not built from the port's C.
    "MICROPY_PY_MACHINE_*": "machine's peripherals are simulated in Python (ports/unix/modules/machine.py)",
    "MICROPY_PY_NETWORK*": "network is simulated in Python (ports/unix/modules/network.py)",
    "MICROPY_PY_ESPNOW": "espnow is simulated in Python (ports/unix/modules/_espnow.py)",
    "MICROPY_PY_ONEWIRE": "the onewire C module drives a GPIO through the port's pin HAL",
    "MICROPY_PY_OS_DUPTERM*": "the REPL is the host's terminal; os.dupterm is simulated",
    "MICROPY_PY_WEBREPL": "WebREPL needs os.dupterm and the port's socket events; epx does not use it",
    "MICROPY_PY_SOCKET_EVENTS*": "the port's socket event hook (lwIP callbacks), for WebREPL",
    "MICROPY_PY_BLUETOOTH_RANDOM_ADDR": "no BLE in epx boards (MICROPY_PY_BLUETOOTH is 0 on both)",
    "MICROPY_HW_ENABLE_*": "board hardware: USB device, SD card, mDNS (the host's network is simulated)",
    "MICROPY_HW_ESP*": "USB serial/JTAG and the S3's extended IO: not on an ESP32",
    "MICROPY_HW_USB_*": "no native USB on an ESP32",
    "MICROPY_HW_SOFTSPI_*": "SoftSPI timing from the CPU clock (machine is simulated)",
    "MICROPY_FATFS_*": "no FAT filesystem in the host build; epx's vfs is littlefs",
    # ESP-IDF glue: calls into IDF, IRAM placement, the FreeRTOS idle hook, port sources.
    "MICROPY_BOARD_STARTUP": "ESP-IDF board start-up hook",
    "MICROPY_EVENT_POLL_HOOK": "FreeRTOS task notification; the unix port waits with poll()",
    "MICROPY_MAKE_POINTER_CALLABLE": "native code pointers of the host architecture",
    "MICROPY_WRAP_*": "IRAM placement of hot VM functions",
    "MICROPY_PY_BUILTINS_HELP_TEXT": "the ESP32's help() text lives in the port's C",
    "MICROPY_PY_RANDOM_SEED_INIT_FUNC": "seeded from esp_random() on the device, from the host's urandom here",
    "MICROPY_PY_STRING_TX_GIL_THRESHOLD": "the port's UART/USB stdout driver",
    "MICROPY_PY_TIME_INCLUDEFILE": "the port's modtime.c through simtime.h, on the simulated wall clock",
    "MICROPY_PY_OS_INCLUDEFILE": "the unix os module (VFS_POSIX); the device's os is simulated on top",
    "MICROPY_USE_INTERNAL_ERRNO": "C library choice (newlib on the ESP32, glibc here)",
    "MICROPY_USE_INTERNAL_PRINTF": "C library choice (newlib on the ESP32, glibc here)",
    # What a unix build cannot take.
    "MICROPY_OBJ_REPR": "REPR_A all the same (the default), left unset: the unix port defines its "
                        "integer types only then",
    "MICROPY_NLR_SETJMP": "Xtensa only; the host uses the x86 NLR (no Python-visible difference)",
    "MICROPY_EMIT_XTENSAWIN": "the host emits native code for x86 (MICROPY_EMIT_X86)",
    "MICROPY_GC_INITIAL_HEAP_SIZE": "the heap is fixed by -X heapsize so figures compare between runs",
    "MICROPY_GC_SPLIT_HEAP*": "the port grows its heap into free IDF RAM (heap_caps); the host heap is one block",
    "MICROPY_TASK_STACK_SIZE": "the unix port limits the main thread's C stack itself (40000 bytes on 32-bit)",
    "MICROPY_ALLOC_PATH_MAX": "the host's paths (test folders) are longer than the port's 128",
    "MICROPY_STACK_CHECK_MARGIN": "a margin below the FreeRTOS task stack; the unix stack limit has its own",
}


def _differs(name):
    for pattern in HOST_DIFFERS:
        if pattern == name or (pattern.endswith("*") and name.startswith(pattern[:-1])):
            return pattern
    return None


def esp32_settings(tree, board_dir):
    """Every MICROPY_* macro the ESP32 port's header defines for this board: {name: value},
    None for a function-like macro."""
    with tempfile.TemporaryDirectory() as stubs:
        for name in STUB_HEADERS:
            path = Path(stubs) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")
        argv = ["gcc", "-E", "-dM", "-undef", "-nostdinc", f"-I{board_dir}", f"-I{stubs}"]
        argv += [f"-D{k}={v}" for k, v in ESP32_TARGET.items()]
        result = subprocess.run(argv + [str(tree / "ports" / "esp32" / "mpconfigport.h")],
                                capture_output=True, text=True)
    if result.returncode:
        raise EpxError(f"ports/esp32/mpconfigport.h: {result.stderr.strip().splitlines()[0]}")
    settings = {}
    for line in result.stdout.splitlines():
        m = re.match(r"#define (MICROPY_\w+)(\(.*?\))? ?(.*)", line)
        if m:
            settings[m.group(1)] = None if m.group(2) else m.group(3)
    return settings


def host_settings(tree, board_dir):
    """(taken, differing): the port's settings the host build copies, and the rest with
    the reason. Raises when the table and the port disagree."""
    settings = esp32_settings(tree, board_dir)
    taken, differing = {}, {}
    for name, value in sorted(settings.items()):
        pattern = _differs(name)
        if pattern:
            differing[name] = HOST_DIFFERS[pattern]
        elif value is None or not re.fullmatch(r'\(?[\w\s*+-]*\)?|"[^"]*"', value):
            raise EpxError(f"ports/esp32/mpconfigport.h: {name} = {value!r} is neither copied nor "
                           "explained; classify it in tools/epx/portconfig.py HOST_DIFFERS")
        else:
            taken[name] = value
    stale = [p for p in HOST_DIFFERS if not any(_differs(n) == p for n in settings)]
    if stale:
        raise EpxError(f"tools/epx/portconfig.py: HOST_DIFFERS names {', '.join(stale)}, "
                       "which the ESP32 port no longer sets")
    return taken, differing


def header(tree, board_dir):
    """The unix variant's copy of the port's settings (included after the unix defaults)."""
    taken, _ = host_settings(tree, board_dir)
    lines = ["// Generated by tools/epx/portconfig.py from ports/esp32/mpconfigport.h of the",
             f"// pinned MicroPython tree and {Path(board_dir).name}/mpconfigboard.h. Do not edit.", ""]
    for name, value in taken.items():
        lines += [f"#undef {name}", f"#define {name} {value}"]
    return "\n".join(lines) + "\n"
