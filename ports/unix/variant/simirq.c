// Scheduled IRQs as the ESP32 port runs them, and what delays them on a real chip.
//
// ports/esp32/machine_pin.c:machine_pin_isr_handler only calls mp_sched_schedule (false, a
// drop, when the 8-deep queue is full; the port ignores it): the handler runs later, from
// the VM between bytecodes. On a device it runs later still while the VM is busy in C: a
// latency after each edge (a long C call) and pauses (gc.collect, flash with the cache off,
// a TLS handshake) during which no handler runs while ISRs keep queueing.
//
// _simirq.isr(handler, arg, ago_us) queues (trampoline, (handler, arg, due)) in MicroPython's
// own scheduler queue, due = edge time + latency. While the queue's head is not due, this
// module holds the scheduler locked (mp_sched_lock: ISRs still queue, nothing runs); a
// thread unlocks it when the head falls due, or `release()` does from the VM.

#include <pthread.h>
#include <signal.h>

#include "py/gc.h"
#include "py/mphal.h"
#include "py/runtime.h"

#define PERIOD (1L << 30)  // due times are kept as small ints, compared like ticks_diff

// Durations in device microseconds, set by the test (control channel). The defaults are
// the chip's (docs/port-parity.md, "The cost model"): a W25Q32JV's typical 4 KB sector erase
// and 256-byte page program, and a TLS handshake at 240 MHz (it scales with the clock).
enum { T_LATENCY, T_GC, T_TLS, T_ERASE, T_WRITE, T_COUNT };
static mp_int_t timing[T_COUNT] = { [T_TLS] = 1000000, [T_ERASE] = 45000, [T_WRITE] = 400 };
// The SHA accelerator: ESP-IDF's floor for it at 240 MHz, 8 MB/s (idf_performance_target.h).
#define SHA256_PS_PER_BYTE (125000)

uint32_t epx_sim_cpu_mhz(void);  // simcost.c
void epx_sim_charge_ps(uint64_t ps);  // simclock.c

static pthread_t main_thread;
static pthread_mutex_t rel_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rel_cond = PTHREAD_COND_INITIALIZER;
static bool releaser_started;
static volatile bool held;       // our lock on the scheduler for a head not yet due
static volatile long release_at; // device time (masked) when the head falls due
static volatile int paused;      // the VM is in a pause
static volatile mp_uint_t dropped; // ISRs that found the queue full

__attribute__((constructor)) static void simirq_init(void) {
    main_thread = pthread_self();
}

static long now_masked(void) {
    return (long)(mp_hal_ticks_us() & (PERIOD - 1));
}

static long ticks_diff(long a, long b) {
    return ((a - b + PERIOD / 2) & (PERIOD - 1)) - PERIOD / 2;
}

static void wake_main(void) {
    // mp_hal_wake_main_task_from_isr: interrupt a sleeping poll() or delay.
    pthread_kill(main_thread, SIGUSR2);
}

static mp_obj_t trampoline(mp_obj_t item);
static MP_DEFINE_CONST_FUN_OBJ_1(trampoline_obj, trampoline);

// The head of the queue if it is one of ours: its due time in *due.
static bool head_due(long *due) {
    if (mp_sched_num_pending() == 0) {
        return false;
    }
    mp_sched_item_t *head = &MP_STATE_VM(sched_queue)[MP_STATE_VM(sched_idx)];
    if (head->func != MP_OBJ_FROM_PTR(&trampoline_obj)) {
        return false;
    }
    mp_obj_t *fields;
    mp_obj_get_array_fixed_n(head->arg, 3, &fields);
    *due = MP_OBJ_SMALL_INT_VALUE(fields[2]);
    return true;
}

// Lock the scheduler while the head is not due; the releaser thread unlocks it then.
static void gate(void) {
    mp_uint_t atomic = MICROPY_BEGIN_ATOMIC_SECTION();
    long due;
    bool hold = !held && head_due(&due) && ticks_diff(due, now_masked()) > 0;
    if (hold) {
        held = true;
        release_at = due;
        mp_sched_lock();
    }
    MICROPY_END_ATOMIC_SECTION(atomic);
    if (hold) {
        pthread_mutex_lock(&rel_lock);
        pthread_cond_signal(&rel_cond);
        pthread_mutex_unlock(&rel_lock);
    }
}

// Unlock once the head is due; true when it did.
static bool release_if_due(void) {
    bool done = false;
    mp_uint_t atomic = MICROPY_BEGIN_ATOMIC_SECTION();
    if (held && ticks_diff(release_at, now_masked()) <= 0) {
        held = false;
        mp_sched_unlock();
        done = true;
    }
    MICROPY_END_ATOMIC_SECTION(atomic);
    return done;
}

uint64_t epx_sim_clock_us(void);  // simclock.c
void epx_sim_sleep_until_us(uint64_t until);
void epx_sim_wake_main(void);
void epx_sim_waiter_done(void);

static void *releaser(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&rel_lock);
        while (!held) {
            pthread_cond_wait(&rel_cond, &rel_lock);
        }
        pthread_mutex_unlock(&rel_lock);
        // On the device clock: a walk stops at the instant the head falls due.
        while (!release_if_due()) {
            long left = ticks_diff(release_at, now_masked());
            epx_sim_sleep_until_us(epx_sim_clock_us() + (left > 0 ? left : 0));
        }
        epx_sim_wake_main();
        epx_sim_waiter_done();
    }
    return NULL;
}

// The simulator's own threads (the world driving pins, the control channel) run bytecode
// too, and with the GIL any thread runs scheduled callbacks; on the device only the VM's
// task would be there. One of them puts the item back at the head for the main thread.
static bool put_back(void) {
    bool done = false;
    mp_uint_t atomic = MICROPY_BEGIN_ATOMIC_SECTION();
    if (mp_sched_num_pending() < MICROPY_SCHEDULER_DEPTH) {
        MP_STATE_VM(sched_idx) = (MP_STATE_VM(sched_idx) - 1) & (MICROPY_SCHEDULER_DEPTH - 1);
        ++MP_STATE_VM(sched_len);
        done = true;
    }
    MICROPY_END_ATOMIC_SECTION(atomic);
    return done;
}

static mp_obj_t trampoline(mp_obj_t item) {
    if (!pthread_equal(pthread_self(), main_thread) && put_back()) {
        wake_main();
        return mp_const_none;
    }
    mp_obj_t *fields;
    mp_obj_get_array_fixed_n(item, 3, &fields);
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_call_function_1(fields[0], fields[1]);
        nlr_pop();
    } else {
        gate();
        nlr_jump(nlr.ret_val);
    }
    gate();
    return mp_const_none;
}

// _simirq.isr(handler, arg, ago_us=0) -> bool: the ISR of an edge ago_us ago (device time).
static mp_obj_t simirq_isr(size_t n_args, const mp_obj_t *args) {
    mp_int_t ago = n_args > 2 ? mp_obj_get_int(args[2]) : 0;
    if (!releaser_started) {
        pthread_t t;
        pthread_create(&t, NULL, releaser, NULL);
        pthread_detach(t);
        releaser_started = true;
    }
    long due = (now_masked() - ago + timing[T_LATENCY]) & (PERIOD - 1);
    mp_obj_t item[3] = { args[0], args[1], MP_OBJ_NEW_SMALL_INT(due) };
    bool ok = mp_sched_schedule(MP_OBJ_FROM_PTR(&trampoline_obj), mp_obj_new_tuple(3, item));
    if (!ok) {
        ++dropped;
        return mp_const_false;
    }
    gate();
    wake_main();
    return mp_const_true;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(simirq_isr_obj, 2, 3, simirq_isr);

void epx_sim_busy_us(uint64_t us);  // simclock.c

// The VM busy in C for `us` of device time: no handler runs, the world's threads (ISRs) do.
static void pause_us(mp_int_t us) {
    if (us <= 0 || !pthread_equal(pthread_self(), main_thread)) {
        return;
    }
    mp_sched_lock();
    ++paused;
    epx_sim_busy_us(us);
    --paused;
    mp_sched_unlock();
}

// _simirq.pause(us): as gc.collect, a flash operation or a TLS handshake taking `us`.
static mp_obj_t simirq_pause(mp_obj_t us_in) {
    pause_us(mp_obj_get_int(us_in));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(simirq_pause_obj, simirq_pause);

// _simirq.timing(index[, us]): read or set a duration (latency, gc, tls, erase, write).
static mp_obj_t simirq_timing(size_t n_args, const mp_obj_t *args) {
    mp_int_t i = mp_obj_get_int(args[0]);
    if (i < 0 || i >= T_COUNT) {
        mp_raise_ValueError(MP_ERROR_TEXT("no such timing"));
    }
    if (n_args > 1) {
        mp_int_t us = mp_obj_get_int(args[1]);
        if (us < 0 || us >= PERIOD / 4) {
            mp_raise_ValueError(MP_ERROR_TEXT("us out of range"));
        }
        timing[i] = us;
    }
    return MP_OBJ_NEW_SMALL_INT(timing[i]);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(simirq_timing_obj, 1, 2, simirq_timing);

// _simirq.release(): from the VM, let a head that fell due run now (the releaser thread
// does the same a moment later): for code that moves the clock itself.
static mp_obj_t simirq_release(void) {
    return mp_obj_new_bool(release_if_due());
}
static MP_DEFINE_CONST_FUN_OBJ_0(simirq_release_obj, simirq_release);

// _simirq.lagging(ago_us) -> bool: a queued handler was due before an edge ago_us ago and
// the VM has not run it though no pause holds it: the host is slow, not the device. The
// world waits on this before it makes an edge, so host speed never fills the queue.
static mp_obj_t simirq_lagging(mp_obj_t ago_in) {
    long due;
    long edge = now_masked() - mp_obj_get_int(ago_in);
    mp_uint_t atomic = MICROPY_BEGIN_ATOMIC_SECTION();
    bool lag = !paused && head_due(&due) && ticks_diff(due, edge) <= 0;
    MICROPY_END_ATOMIC_SECTION(atomic);
    return mp_obj_new_bool(lag);
}
static MP_DEFINE_CONST_FUN_OBJ_1(simirq_lagging_obj, simirq_lagging);

// _simirq.stats() -> (queued, dropped, held)
static mp_obj_t simirq_stats(void) {
    mp_obj_t t[3] = { MP_OBJ_NEW_SMALL_INT(mp_sched_num_pending()),
                      mp_obj_new_int_from_uint(dropped), mp_obj_new_bool(held) };
    return mp_obj_new_tuple(3, t);
}
static MP_DEFINE_CONST_FUN_OBJ_0(simirq_stats_obj, simirq_stats);

static const mp_rom_map_elem_t simirq_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__simirq) },
    { MP_ROM_QSTR(MP_QSTR_isr), MP_ROM_PTR(&simirq_isr_obj) },
    { MP_ROM_QSTR(MP_QSTR_pause), MP_ROM_PTR(&simirq_pause_obj) },
    { MP_ROM_QSTR(MP_QSTR_timing), MP_ROM_PTR(&simirq_timing_obj) },
    { MP_ROM_QSTR(MP_QSTR_release), MP_ROM_PTR(&simirq_release_obj) },
    { MP_ROM_QSTR(MP_QSTR_lagging), MP_ROM_PTR(&simirq_lagging_obj) },
    { MP_ROM_QSTR(MP_QSTR_stats), MP_ROM_PTR(&simirq_stats_obj) },
};
static MP_DEFINE_CONST_DICT(simirq_globals, simirq_globals_table);

const mp_obj_module_t mp_module_simirq = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&simirq_globals,
};

MP_REGISTER_MODULE(MP_QSTR__simirq, mp_module_simirq);

// gc.collect() on the VM: its work is charged as any of the VM's (simcost.c counts py/gc.c);
// gc_us adds a pause after it. A collection an allocation triggers is charged alike but not
// paused: the VM may be inside any C function then, not a place to let the world's threads
// run (docs/port-parity.md).
static __thread int in_alloc;

void *__real_gc_alloc(size_t n_bytes, unsigned int alloc_flags);
void *__wrap_gc_alloc(size_t n_bytes, unsigned int alloc_flags) {
    ++in_alloc;
    void *p = __real_gc_alloc(n_bytes, alloc_flags);
    --in_alloc;
    return p;
}

void *__real_gc_realloc(void *ptr, size_t n_bytes, bool allow_move);
void *__wrap_gc_realloc(void *ptr, size_t n_bytes, bool allow_move) {
    ++in_alloc;
    void *p = __real_gc_realloc(ptr, n_bytes, allow_move);
    --in_alloc;
    return p;
}

void __real_gc_collect(void);
void __wrap_gc_collect(void) {
    __real_gc_collect();
    if (!in_alloc) {
        pause_us(timing[T_GC]);
    }
}

// A TLS handshake: the pause when it completes (its key exchange and certificate checks).
#include "mbedtls/ssl.h"
int __real_mbedtls_ssl_handshake(mbedtls_ssl_context *ssl);
int __wrap_mbedtls_ssl_handshake(mbedtls_ssl_context *ssl) {
    bool before = mbedtls_ssl_is_handshake_over(ssl);
    int ret = __real_mbedtls_ssl_handshake(ssl);
    if (!before && mbedtls_ssl_is_handshake_over(ssl)) {
        pause_us(timing[T_TLS] * 240 / (mp_int_t)epx_sim_cpu_mhz());
    }
    return ret;
}

// SHA-256 (hashlib, the image check, TLS's own hashing) on the VM's thread.
#include "mbedtls/sha256.h"
int __real_mbedtls_sha256_update(mbedtls_sha256_context *ctx, const unsigned char *input, size_t ilen);
int __wrap_mbedtls_sha256_update(mbedtls_sha256_context *ctx, const unsigned char *input, size_t ilen) {
    if (pthread_equal(pthread_self(), main_thread)) {
        epx_sim_charge_ps((uint64_t)ilen * SHA256_PS_PER_BYTE);
    }
    return __real_mbedtls_sha256_update(ctx, input, ilen);
}
