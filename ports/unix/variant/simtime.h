// The time module of the simulated ESP32 (MICROPY_PY_TIME_INCLUDEFILE): the ESP32 port's own
// ports/esp32/modtime.c (localtime/gmtime and time from gettimeofday(), here the device's
// wall clock: simrtc.c), and time.sleep() as the unix port has it (real time: the
// simulator's own threads pace themselves with it; sleep_ms/sleep_us are device time; on the
// VM's thread device time flows meanwhile, as in any wait).

#include <errno.h>
#include <math.h>
#include <sys/time.h>

int epx_sim_gettimeofday(struct timeval *tv, void *tz);
void epx_sim_main_blocked(bool blocked);  // simclock.c

#define gettimeofday epx_sim_gettimeofday
#include "ports/esp32/modtime.c"
#undef gettimeofday

// ports/unix/modtime.c:mp_time_sleep (the float build).
static mp_obj_t mp_time_sleep(mp_obj_t arg) {
    struct timeval tv;
    mp_float_t val = mp_obj_get_float(arg);
    mp_float_t ipart;
    tv.tv_usec = (time_t)MICROPY_FLOAT_C_FUN(round)(MICROPY_FLOAT_C_FUN(modf)(val, &ipart) * MICROPY_FLOAT_CONST(1000000.));
    tv.tv_sec = (suseconds_t)ipart;
    int res;
    while (1) {
        MP_THREAD_GIL_EXIT();
        epx_sim_main_blocked(true);
        res = select(0, NULL, NULL, NULL, &tv);
        epx_sim_main_blocked(false);
        MP_THREAD_GIL_ENTER();
        if (res != -1 || errno != EINTR) {
            break;
        }
        mp_handle_pending(true);
    }
    RAISE_ERRNO(res, errno);
    return mp_const_none;
}
