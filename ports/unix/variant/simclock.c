// The simulated device's clock. The test advances it (a jump: due timers fire, sleeping
// polls wake) or scales it (device time runs N times faster than real time).

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "py/mphal.h"
#include "py/runtime.h"

static pthread_mutex_t clock_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t main_thread;
static unsigned long base_real_us;
static unsigned long base_virt_us;
static double clock_scale = 1.0;

static unsigned long monotonic_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000UL + ts.tv_nsec / 1000;
}

static void wake(int signo) {
    (void)signo;
}

// Before main(): device time starts at EPX_SIM_TICKS_START ms (0 like a booting ESP32,
// or just short of the ticks period to exercise wrap-around).
__attribute__((constructor)) static void simclock_init(void) {
    base_real_us = monotonic_us();
    const char *start = getenv("EPX_SIM_TICKS_START");
    base_virt_us = start ? strtoul(start, NULL, 0) * 1000UL : 0;
    main_thread = pthread_self();
    struct sigaction sa = {0};
    sa.sa_handler = wake;  // no SA_RESTART: a sleeping poll() returns EINTR and re-reads the clock
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
}

static unsigned long now_us_locked(void) {
    return base_virt_us + (unsigned long)((monotonic_us() - base_real_us) * clock_scale);
}

static unsigned long now_us(void) {
    pthread_mutex_lock(&clock_lock);
    unsigned long t = now_us_locked();
    pthread_mutex_unlock(&clock_lock);
    return t;
}

unsigned long epx_sim_ticks_us(void) {
    return now_us();
}

unsigned long epx_sim_ticks_ms(void) {
    return now_us() / 1000;
}

// The device clock for the wall clock (simrtc.c), which counts on it past any wrap.
uint64_t epx_sim_clock_us(void) {
    return now_us();
}

void epx_sim_delay_ms(unsigned long ms) {
    unsigned long start = now_us();
    while (now_us() - start < ms * 1000UL) {
        // Every handler that is due, as the port's delay loop drains its queue.
        do {
            mp_event_handle_nowait();
        } while (MP_STATE_VM(sched_state) == MP_SCHED_PENDING && pthread_equal(pthread_self(), main_thread));
        MP_THREAD_GIL_EXIT();
        usleep(500);
        MP_THREAD_GIL_ENTER();
    }
}

int __real_poll(struct pollfd *fds, nfds_t nfds, int timeout);

int __wrap_poll(struct pollfd *fds, nfds_t nfds, int timeout) {
    if (timeout != 0 && MP_STATE_VM(sched_state) == MP_SCHED_PENDING
        && pthread_equal(pthread_self(), main_thread)) {
        // A handler is due: back to the VM first (its retry loop runs it), as the port's
        // wait returns when an ISR wakes the main task.
        errno = EINTR;
        return -1;
    }
    if (timeout > 0 && clock_scale != 1.0) {
        timeout = (int)ceil(timeout / clock_scale);
    }
    return __real_poll(fds, nfds, timeout);
}

static void rebase(void) {
    unsigned long real = monotonic_us();
    base_virt_us += (unsigned long)((real - base_real_us) * clock_scale);
    base_real_us = real;
}

// _simclock.advance(ms): jump the device clock forward and wake the main thread.
static mp_obj_t simclock_advance(mp_obj_t ms_in) {
    mp_int_t ms = mp_obj_get_int(ms_in);
    if (ms < 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("the clock only goes forward"));
    }
    pthread_mutex_lock(&clock_lock);
    rebase();
    base_virt_us += ms * 1000UL;
    pthread_mutex_unlock(&clock_lock);
    pthread_kill(main_thread, SIGUSR2);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(simclock_advance_obj, simclock_advance);

// _simclock.scale(factor): device seconds per real second from now on.
static mp_obj_t simclock_scale(mp_obj_t factor_in) {
    mp_float_t factor = mp_obj_get_float(factor_in);
    if (!(factor > 0)) {
        mp_raise_ValueError(MP_ERROR_TEXT("scale must be > 0"));
    }
    pthread_mutex_lock(&clock_lock);
    rebase();
    clock_scale = factor;
    pthread_mutex_unlock(&clock_lock);
    pthread_kill(main_thread, SIGUSR2);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(simclock_scale_obj, simclock_scale);

// _simclock.now_us(): the device clock, unmasked (ticks_us wraps).
static mp_obj_t simclock_now_us(void) {
    return mp_obj_new_int_from_ull(now_us());
}
static MP_DEFINE_CONST_FUN_OBJ_0(simclock_now_us_obj, simclock_now_us);

// _simclock.wake(): interrupt the main thread's poll() or sleep, as the ESP32's ISRs wake
// the main task after scheduling a callback.
static mp_obj_t simclock_wake(void) {
    pthread_kill(main_thread, SIGUSR2);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(simclock_wake_obj, simclock_wake);

// _simclock.exit(code): end the process at once from any thread (a reset: no unwinding,
// no finalisers), as the chip stops when it resets.
static mp_obj_t simclock_exit(mp_obj_t code_in) {
    mp_int_t code = mp_obj_get_int(code_in);
    fflush(stdout);
    fflush(stderr);
    _exit((int)code);
}
static MP_DEFINE_CONST_FUN_OBJ_1(simclock_exit_obj, simclock_exit);

static const mp_rom_map_elem_t simclock_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__simclock) },
    { MP_ROM_QSTR(MP_QSTR_advance), MP_ROM_PTR(&simclock_advance_obj) },
    { MP_ROM_QSTR(MP_QSTR_scale), MP_ROM_PTR(&simclock_scale_obj) },
    { MP_ROM_QSTR(MP_QSTR_now_us), MP_ROM_PTR(&simclock_now_us_obj) },
    { MP_ROM_QSTR(MP_QSTR_wake), MP_ROM_PTR(&simclock_wake_obj) },
    { MP_ROM_QSTR(MP_QSTR_exit), MP_ROM_PTR(&simclock_exit_obj) },
};
static MP_DEFINE_CONST_DICT(simclock_globals, simclock_globals_table);

const mp_obj_module_t mp_module_simclock = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&simclock_globals,
};

MP_REGISTER_MODULE(MP_QSTR__simclock, mp_module_simclock);
