// epx host firmware: the unix port configured like the ESP32 port where behaviour shows.

#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)

#include <stdint.h>

// The simulated device clock (simclock.c): ticks, sleeps, asyncio and poll timeouts
// follow a clock the test can advance or scale.
#define mp_hal_ticks_ms epx_sim_ticks_ms
#define mp_hal_ticks_us epx_sim_ticks_us
#define mp_hal_time_ns epx_sim_time_ns
unsigned long epx_sim_ticks_ms(void);
unsigned long epx_sim_ticks_us(void);
// The wall clock (time_ns) is the device's RTC (simrtc.c).
uint64_t epx_sim_time_ns(void);
// time.sleep_ms waits on the device clock with the GIL released, as FreeRTOS lets the
// ESP32's other tasks run (the unix port's delay keeps the GIL and starves threads).
#define mp_hal_delay_ms epx_sim_delay_ms
void epx_sim_delay_ms(unsigned long ms);

// ticks_ms/ticks_us wrap at 2**30 as on the ESP32 (a 32-bit port's small int), not 2**62:
// wrap-around bugs show on the host too (EPX_SIM_TICKS_START near 2**30).
#define MICROPY_PY_TIME_TICKS_PERIOD (1 << 30)

#include "variants/mpconfigvariant_common.h"

// The ESP32 port's settings (32-bit float, MPZ, scheduler depth 8, its module set...),
// generated from the pinned ports/esp32/mpconfigport.h by tools/epx/portconfig.py.
#include "epx_esp32_config.h"

// Ctrl-C is delivered between bytecodes, as on the ESP32 (required with the GIL).
#undef MICROPY_ASYNC_KBD_INTR
#define MICROPY_ASYNC_KBD_INTR (0)
// The unix thread port's atomic sections need the recursive mutex, GIL or not.
#define MICROPY_PY_THREAD_RECURSIVE_MUTEX (1)

// time as the ESP32 port has it (ports/esp32/mpconfigport.h): gmtime, localtime, mktime,
// time and time_ns on the 2000 epoch (mpconfigport_sim.h), from the device's wall clock.
#undef MICROPY_PY_TIME_INCLUDEFILE
#define MICROPY_PY_TIME_INCLUDEFILE "simtime.h"
#define MICROPY_PY_TIME_GMTIME_LOCALTIME_MKTIME (1)

// The GC heap grows into the modelled ESP32 RAM as the port's does (ports/esp32/mpconfigport.h:
// MICROPY_GC_SPLIT_HEAP_AUTO; simram.c, off unless the simulator asks for it).
#define MICROPY_GC_SPLIT_HEAP (1)
#define MICROPY_GC_SPLIT_HEAP_AUTO (1)
#include <stddef.h>
void *sim_ram_heap_alloc(size_t n);
void sim_ram_heap_free(void *p);
#define MP_PLAT_ALLOC_HEAP(size) sim_ram_heap_alloc(size)
#define MP_PLAT_FREE_HEAP(ptr) sim_ram_heap_free(ptr)
