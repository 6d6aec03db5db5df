# epx host firmware. Frozen manifest, build folder and cross-compile flags come from
# the epx tool (tools/epx/build.py), one build folder per profile.

# A 32-bit build, as the ESP32 (mp_int_t, pointers and heap objects sized like a device's).
MICROPY_FORCE_32BIT = 1

# Not in the ESP32 build either, or not needed: the +ds source tree lacks their libraries.
MICROPY_PY_BTREE = 0
MICROPY_PY_FFI = 0
MICROPY_VFS_FAT = 0
MICROPY_VFS_LFS1 = 0
MICROPY_PY_JNI = 0

# The ESP32 runs threads under a GIL; so does the simulator.
MICROPY_PY_THREAD = 0
CFLAGS += -DMICROPY_PY_THREAD=1 -DMICROPY_PY_THREAD_GIL=1
LDFLAGS += -lpthread

SRC_C += $(VARIANT_DIR)/simclock.c $(VARIANT_DIR)/simpeer.c
LDFLAGS += -Wl,--wrap=poll,--wrap=write,--wrap=send,--wrap=sendto,--wrap=read,--wrap=recv,--wrap=recvfrom
LDFLAGS += -Wl,--wrap=accept,--wrap=connect,--wrap=mp_thread_mutex_lock,--wrap=mp_hal_get_random

# What the firmware's computation costs an ESP32 (simcost.c): every basic block of the C
# the chip runs too (MicroPython's core, extmod, shared, littlefs) counted for its thread.
SRC_C += $(VARIANT_DIR)/simcost.c
LDFLAGS += -Wl,--wrap=mp_execute_bytecode
$(BUILD)/py/%.o $(BUILD)/extmod/%.o $(BUILD)/shared/%.o $(BUILD)/lib/littlefs/%.o: CFLAGS += -fsanitize-coverage=trace-pc
# Not where registers are saved by hand (nlr_push is naked asm, gchelper reads the callee-
# saved ones): the hook's call would set up ebx (32-bit PIC) before they are read.
$(BUILD)/py/nlr%.o $(BUILD)/shared/runtime/gchelper%.o: CFLAGS += -fno-sanitize-coverage=trace-pc
# Scheduled pin IRQs with a device's latency and pauses (gc.collect, TLS handshake).
SRC_C += $(VARIANT_DIR)/simirq.c
LDFLAGS += -Wl,--wrap=gc_collect,--wrap=gc_alloc,--wrap=gc_realloc,--wrap=mbedtls_ssl_handshake,--wrap=mbedtls_sha256_update

# The device's wall clock (simrtc.c) on the ESP32's epoch (mpconfigport_sim.h), and mbedtls
# checking certificate dates against it (mbedtls_config_sim.h).
SRC_C += $(VARIANT_DIR)/simrtc.c
CFLAGS += -DMP_CONFIGFILE='"mpconfigport_sim.h"'
MBEDTLS_CONFIG_FILE = \"mbedtls_config_sim.h\"

# The C stack limit (simstack.c).
SRC_C += $(VARIANT_DIR)/simstack.c
LDFLAGS += -Wl,--wrap=mp_cstack_init_with_sp_here,--wrap=mp_cstack_check,--wrap=mp_call_function_1_protected,--wrap=mp_builtin___import___default

# The ESP32's RAM shared by the GC heap, mbedTLS, thread stacks, WiFi and lwIP (simram.c).
SRC_C += $(VARIANT_DIR)/simram.c
LDFLAGS += -Wl,--wrap=mp_thread_create,--wrap=gc_info
# py/gc.c's gc_try_add_heap adds to a void pointer (a GNU C extension the ESP32 build allows).
$(BUILD)/py/gc.o: CFLAGS += -Wno-pointer-arith
