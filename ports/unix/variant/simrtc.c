// The simulated ESP32's wall clock (its RTC). On the chip gettimeofday() counts from 0 at
// power-on and the port reads it as seconds since 2000-01-01 (its epoch: ports/esp32 does
// not set MICROPY_EPOCH_IS_1970); settimeofday() (machine.RTC) moves it; it runs on through
// soft, watchdog and software resets and deep sleep, and starts again from 0 after a power
// cycle. Here it is the device clock (simclock.c) plus an offset kept in the device folder
// (rtc_time.txt), which the host rewrites at every power-on.

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

#include "py/runtime.h"
#include "shared/timeutils/timeutils.h"
#include "mbedtls/platform.h"

#define STATE_FILE "rtc_time.txt"

uint64_t epx_sim_clock_us(void);

static int64_t wall_offset_us;  // wall clock (us since 2000-01-01) minus the device clock

static int state_path(char *buf, size_t size) {
    const char *dir = getenv("EPX_SIM_DIR");
    return dir && (size_t)snprintf(buf, size, "%s/" STATE_FILE, dir) < size;
}

// Written beside and renamed: a reset in the middle leaves the old contents.
static void save_offset(void) {
    char path[4096], tmp[4100];
    if (!state_path(path, sizeof(path))) {
        return;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f != NULL) {
        fprintf(f, "%lld\n", (long long)wall_offset_us);
        if (fclose(f) == 0) {
            rename(tmp, path);
        }
    }
}

int epx_sim_gettimeofday(struct timeval *tv, void *tz) {
    (void)tz;
    int64_t us = (int64_t)epx_sim_clock_us() + wall_offset_us;
    tv->tv_sec = us / 1000000;
    tv->tv_usec = us % 1000000;
    return 0;
}

static void epx_sim_settimeofday(const struct timeval *tv) {
    wall_offset_us = (int64_t)tv->tv_sec * 1000000 + tv->tv_usec - (int64_t)epx_sim_clock_us();
    save_offset();
}

// mp_hal_time_ns: ports/esp32/mphalport.c:mp_hal_time_ns.
uint64_t epx_sim_time_ns(void) {
    struct timeval tv;
    epx_sim_gettimeofday(&tv, NULL);
    uint64_t ns = tv.tv_sec * 1000000000ULL;
    ns += (uint64_t)tv.tv_usec * 1000ULL;
    return ns;
}

// ports/esp32/main.c:platform_mbedtls_time, installed the same way: certificate dates are
// checked against the device's wall clock.
static time_t platform_mbedtls_time(time_t *timer) {
    // mbedtls_time requires time in seconds from EPOCH 1970

    struct timeval tv;
    epx_sim_gettimeofday(&tv, NULL);

    return tv.tv_sec + TIMEUTILS_SECONDS_1970_TO_2000;
}

// Before main(): the offset this boot continues with. Without the file (no host), the power
// came on at the device clock's start.
__attribute__((constructor)) static void simrtc_init(void) {
    char path[4096];
    FILE *f = state_path(path, sizeof(path)) ? fopen(path, "r") : NULL;
    long long offset;
    if (f != NULL && fscanf(f, "%lld", &offset) == 1) {
        wall_offset_us = offset;
    } else {
        const char *start = getenv("EPX_SIM_TICKS_START");
        wall_offset_us = -(int64_t)(start ? strtoull(start, NULL, 0) : 0) * 1000;
    }
    if (f != NULL) {
        fclose(f);
    }
    mbedtls_platform_set_time(platform_mbedtls_time);
}

// _simrtc.datetime(hour_index[, datetime]): ports/esp32/machine_rtc.c:
// machine_rtc_datetime_helper on the device's wall clock (machine.RTC in
// ports/unix/modules/machine.py calls it: hour_index 4 for datetime(), 3 for init()).
static mp_obj_t simrtc_datetime(size_t n_args, const mp_obj_t *args_in) {
    int hour_index = mp_obj_get_int(args_in[0]);
    const mp_obj_t *args = args_in;  // args[1] is the datetime, as in the port
    if (n_args == 1) {
        // Get time

        struct timeval tv;

        epx_sim_gettimeofday(&tv, NULL);
        timeutils_struct_time_t tm;

        timeutils_seconds_since_epoch_to_struct_time(tv.tv_sec, &tm);

        mp_obj_t tuple[8] = {
            mp_obj_new_int(tm.tm_year),
            mp_obj_new_int(tm.tm_mon),
            mp_obj_new_int(tm.tm_mday),
            mp_obj_new_int(tm.tm_wday),
            mp_obj_new_int(tm.tm_hour),
            mp_obj_new_int(tm.tm_min),
            mp_obj_new_int(tm.tm_sec),
            mp_obj_new_int(tv.tv_usec)
        };

        return mp_obj_new_tuple(8, tuple);
    } else {
        // Set time

        mp_obj_t *items;
        mp_obj_get_array_fixed_n(args[1], 8, &items);

        struct timeval tv = {0};
        tv.tv_sec = timeutils_seconds_since_epoch(
            mp_obj_get_int(items[0]),
            mp_obj_get_int(items[1]),
            mp_obj_get_int(items[2]),
            mp_obj_get_int(items[hour_index]),
            mp_obj_get_int(items[hour_index + 1]),
            mp_obj_get_int(items[hour_index + 2])
            );
        tv.tv_usec = mp_obj_get_int(items[7]);
        epx_sim_settimeofday(&tv);

        return mp_const_none;
    }
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(simrtc_datetime_obj, 1, 2, simrtc_datetime);

static const mp_rom_map_elem_t simrtc_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__simrtc) },
    { MP_ROM_QSTR(MP_QSTR_datetime), MP_ROM_PTR(&simrtc_datetime_obj) },
};
static MP_DEFINE_CONST_DICT(simrtc_globals, simrtc_globals_table);

const mp_obj_module_t mp_module_simrtc = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&simrtc_globals,
};

MP_REGISTER_MODULE(MP_QSTR__simrtc, mp_module_simrtc);
