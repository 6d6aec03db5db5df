// The simulated device's clock, in lockstep with the firmware (docs/simulator.md, "Device
// time"). While the VM's thread computes, device time advances by what that computation
// costs an ESP32 (simcost.c charges it), never with the host's time: a slow or busy host is
// not a slow chip. While the firmware waits (poll, a sleep, a blocking socket or lock),
// device time runs with real time (times a scale), but never much past a deadline that a
// waiting thread has not yet been woken for and run. The test advances the clock by walking
// it from deadline to deadline, each time until the firmware waits again. The task watchdog
// counts device time only and bites at points where the firmware had its turn.

#define _GNU_SOURCE  // ppoll
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "py/mphal.h"
#include "py/runtime.h"

// Microseconds in 64 bits: a 32-bit build's unsigned long wraps after 71 minutes.
typedef uint64_t sim_us_t;

#define NEVER UINT64_MAX
#define MAX_WAITERS (32)
#define MAX_MAIN_FDS (8)
#define TICK_US (20000)           // the watchdog's own thread ticks this often (real time)
#define STALL_US (200000)         // a tick this late: the process stood still
#define LATE_REAL_US (20000)      // how far (real, times the scale) the clock may run past a
                                  // waiting thread's deadline before it ran; 0 in a walk
#define BLOCKED_US (500000)       // main slept this long (real) in a system call of its own: stuck
#define BLOCK_QUICK_US (2000)     // real time a blocking call may take without device time
#define WOKEN_MAX_US (2000000)    // a thread woken by the clock runs until it waits again, or
                                  // at most this long (real) as far as the clock cares
#define NET_GRACE_MS (200)        // real time a peer gets to answer before a walk step
#define PEER_LOOK_MS (2)          // during it, how often (real) the peer is looked at
#define MAX_FD (1024)
#define SELECT_POLL_MS (1)        // extmod/modselect.c's MICROPY_PY_SELECT_IOCTL_CALL_PERIOD_MS

static pthread_mutex_t clock_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t clock_cv;  // a wait began or ended, the watchdog bit
static pthread_t main_thread;
static sim_us_t base_real_us;
static sim_us_t base_virt_us;
static sim_us_t last_us;  // the clock never goes back
static double clock_scale = 1.0;

// The main thread (the VM's, asyncio's) while it waits in poll() or a sleep.
static bool main_waiting;
static sim_us_t main_deadline = NEVER;
static int main_timeout;  // of its wait, ms
static struct pollfd main_fds[MAX_MAIN_FDS];
static nfds_t main_nfds;
static bool wake_pending;  // main was signalled and has not waited again since

// Main blocked (real time, 0: not) in a system call of its own: a blocking socket, a lock,
// a real-time sleep. Device time flows as while it waits.
static sim_us_t main_blocked_real_us;
static uint64_t charge_ps;  // charged, less than a microsecond

// What the VM's thread computed (charges and pauses, device µs) since `busy_since_us`, and
// its longest stretch between two waits: the loop's worst latency (_simclock.busy()).
static sim_us_t busy_us, busy_since_us, stretch_from_us, longest_us;

static void stretch_ends_locked(sim_us_t now) {
    if (now - stretch_from_us > longest_us) {
        longest_us = now - stretch_from_us;
    }
}

// Other threads waiting with a deadline (Timer threads, may_block's feeder, the world's
// threads). One the clock woke stays `woken` (due) until it waits again, blocks or ends: a
// walk does not move on while the world acts on the instant it asked for.
static struct {
    pthread_t thread;
    sim_us_t deadline;
    sim_us_t woken_real_us;  // 0: waiting
    bool used;
} waiters[MAX_WAITERS];
static pthread_key_t waiter_key;  // set for a thread once it waited: its end frees its slot

// Sockets written and not read since: their peer may be about to answer.
static volatile unsigned char written[MAX_FD];
static bool net_grace_fixed;  // EPX_SIM_NET_GRACE=fixed: the whole grace every time (a bench)

// The task watchdog.
static bool wdt_armed;
static bool wdt_bitten;
static bool walking;  // a walk is on (a bite during it is the walker's to act on)
static sim_us_t wdt_timeout_us;
static sim_us_t wdt_fed_us;
static sim_us_t wdt_bite_us;  // when it bit: its deadline

// The watchdog thread's last tick: much older means the process stood still (SIGSTOP).
static sim_us_t last_tick_real_us;

static sim_us_t monotonic_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
}

static void wake(int signo) {
    (void)signo;
}

static void *watchdog_thread(void *arg);
static void waiter_ended(void *slot);

// Before main(): device time starts at EPX_SIM_TICKS_START ms (0 like a booting ESP32,
// or just short of the ticks period to exercise wrap-around).
__attribute__((constructor)) static void simclock_init(void) {
    base_real_us = monotonic_us();
    last_tick_real_us = base_real_us;
    const char *start = getenv("EPX_SIM_TICKS_START");
    base_virt_us = start ? strtoull(start, NULL, 0) * 1000ULL : 0;
    last_us = base_virt_us;
    const char *grace = getenv("EPX_SIM_NET_GRACE");
    net_grace_fixed = grace && !strcmp(grace, "fixed");
    main_thread = pthread_self();
    pthread_key_create(&waiter_key, waiter_ended);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&clock_cv, &attr);
    struct sigaction sa = {0};
    sa.sa_handler = wake;  // no SA_RESTART: a sleeping poll() returns EINTR and re-reads the clock
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
    // SIGUSR2 (a wake-up) reaches a thread only inside sleep_poll(): none is lost between
    // reading the clock and starting to wait. Threads inherit the mask.
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &usr2, NULL);
    // The watchdog thread blocks every signal: they go to the firmware's threads.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    pthread_create(&t, NULL, watchdog_thread, NULL);
    pthread_detach(t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void cond_wait_us(sim_us_t us) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sim_us_t ns = ts.tv_nsec + (us % 1000000ULL) * 1000ULL;
    ts.tv_sec += us / 1000000ULL + ns / 1000000000ULL;
    ts.tv_nsec = ns % 1000000000ULL;
    pthread_cond_timedwait(&clock_cv, &clock_lock, &ts);
}

static sim_us_t wdt_deadline_locked(void) {
    return wdt_armed ? wdt_fed_us + wdt_timeout_us : NEVER;
}

// While the main thread waits, the clock does not run past the earliest deadline of a
// waiting thread (plus a little lateness outside a walk) nor past the watchdog's: it moves
// on once that thread has been woken and run.
static sim_us_t cap_locked(void) {
    if (!main_waiting) {
        return NEVER;
    }
    sim_us_t cap = main_deadline;
    for (int i = 0; i < MAX_WAITERS; i++) {
        if (waiters[i].used && waiters[i].deadline < cap) {
            cap = waiters[i].deadline;
        }
    }
    if (!walking && cap != NEVER) {
        cap += (sim_us_t)(LATE_REAL_US * clock_scale);
    }
    sim_us_t w = wdt_deadline_locked();
    return w < cap ? w : cap;
}

static bool flowing_locked(void) {
    return main_waiting || main_blocked_real_us;
}

static sim_us_t now_us_locked(void) {
    if (!flowing_locked()) {
        // Main computes (charged), or waits for the GIL (another thread of the host runs).
        if (base_virt_us > last_us) {
            last_us = base_virt_us;
        }
        return last_us;
    }
    sim_us_t real = monotonic_us();
    if (real - last_tick_real_us > STALL_US) {
        // The watchdog thread missed its ticks: the whole process stood still (SIGSTOP, or
        // no CPU at all). The device did not live through that: drop it.
        base_real_us += real - last_tick_real_us - TICK_US;
        last_tick_real_us = real;
    }
    sim_us_t flowing = real > base_real_us ? real - base_real_us : 0;
    sim_us_t t = base_virt_us + (sim_us_t)(flowing * clock_scale);
    sim_us_t cap = cap_locked();
    if (t > cap) {
        t = cap;
    }
    if (t < last_us) {
        t = last_us;
    }
    last_us = t;
    return t;
}

// Restart the flow from the clock as it reads now (the time it was held at a cap is dropped).
static void rebase_locked(void) {
    base_virt_us = now_us_locked();
    base_real_us = monotonic_us();
}

static void set_clock_locked(sim_us_t t) {
    rebase_locked();
    if (t > base_virt_us) {
        base_virt_us = last_us = t;
    }
}

void epx_sim_cost_fold(void);  // simcost.c

static bool on_main(void) {
    return pthread_equal(pthread_self(), main_thread);
}

static sim_us_t now_us(void) {
    if (on_main()) {
        epx_sim_cost_fold();  // its own computation first
    }
    pthread_mutex_lock(&clock_lock);
    sim_us_t t = now_us_locked();
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

static bool waiter_woken(int i) {
    return waiters[i].woken_real_us && monotonic_us() - waiters[i].woken_real_us < WOKEN_MAX_US;
}

// A waiting thread is due, or one the clock woke has not waited again yet.
static bool waiter_due_locked(sim_us_t now) {
    for (int i = 0; i < MAX_WAITERS; i++) {
        if (waiters[i].used && (waiters[i].woken_real_us ? waiter_woken(i) : waiters[i].deadline <= now)) {
            return true;
        }
    }
    return false;
}

static void free_waiter_locked(int i) {
    if (waiters[i].used) {
        waiters[i].used = false;
        waiters[i].woken_real_us = 0;
        pthread_cond_broadcast(&clock_cv);
    }
}

// This thread's slot (-1: none), taken if `take`.
static int waiter_slot_locked(bool take) {
    pthread_t self = pthread_self();
    for (int i = 0; i < MAX_WAITERS; i++) {
        if (waiters[i].used && pthread_equal(waiters[i].thread, self)) {
            return i;
        }
    }
    for (int i = 0; i < MAX_WAITERS && take; i++) {
        if (!waiters[i].used) {
            waiters[i].used = true;
            waiters[i].thread = self;
            waiters[i].woken_real_us = 0;
            pthread_setspecific(waiter_key, &waiters[i]);
            return i;
        }
    }
    return -1;
}

void epx_sim_waiter_done(void);

static void waiter_ended(void *slot) {
    (void)slot;
    epx_sim_waiter_done();
}

static bool wdt_overdue_locked(sim_us_t now) {
    return wdt_armed && !wdt_bitten && now >= wdt_deadline_locked();
}

static void bite_locked(void) {
    sim_us_t deadline = wdt_deadline_locked();
    wdt_bite_us = last_us < deadline ? last_us : deadline;
    wdt_bitten = true;
    pthread_cond_broadcast(&clock_cv);
}

static void signal_waiters_locked(sim_us_t upto) {
    for (int i = 0; i < MAX_WAITERS; i++) {
        if (waiters[i].used && !waiters[i].woken_real_us && waiters[i].deadline <= upto) {
            pthread_kill(waiters[i].thread, SIGUSR2);
        }
    }
}

static void wake_main_locked(void) {
    wake_pending = true;
    pthread_kill(main_thread, SIGUSR2);
}

// Computation of the main thread (simcost.c): device time moves on by what it costs the chip.
// Threads whose deadline it passes are woken; the watchdog bites at its deadline.
static void charge_locked(uint64_t ps);

void epx_sim_charge_ps(uint64_t ps) {
    pthread_mutex_lock(&clock_lock);
    charge_locked(ps);
    pthread_mutex_unlock(&clock_lock);
}

// From anywhere on the main thread, a signal handler too (another thread's collection makes
// it scan its stack): false, and nothing charged, when the clock is busy (maybe by main).
bool epx_sim_try_charge_ps(uint64_t ps) {
    if (pthread_mutex_trylock(&clock_lock)) {
        return false;
    }
    charge_locked(ps);
    pthread_mutex_unlock(&clock_lock);
    return true;
}

static void charge_locked(uint64_t ps) {
    charge_ps += ps;
    sim_us_t us = charge_ps / 1000000;
    if (us) {
        charge_ps -= us * 1000000;
        busy_us += us;
        rebase_locked();
        base_virt_us = last_us = base_virt_us + us;
        signal_waiters_locked(base_virt_us);
        if (wdt_overdue_locked(base_virt_us) && !waiter_due_locked(base_virt_us)) {
            bite_locked();
        }
    }
}

static sim_us_t next_waiter_locked(void) {
    sim_us_t next = NEVER;
    for (int i = 0; i < MAX_WAITERS; i++) {
        if (waiters[i].used && !waiters[i].woken_real_us && waiters[i].deadline < next) {
            next = waiters[i].deadline;
        }
    }
    return next;
}

static void cond_wait_us(sim_us_t us);

// The VM busy in C for `us` of device time (a collection, flash with the cache off, a TLS
// handshake, the SHA accelerator): from the main thread with the GIL held. The other
// threads (the world, ISRs) run meanwhile on the instants they asked for, one deadline after
// the other, as the chip's other tasks would.
static void step_locked(sim_us_t us);

void epx_sim_busy_us(uint64_t us) {
    if (!us) {
        return;
    }
    epx_sim_cost_fold();
    MP_THREAD_GIL_EXIT();
    pthread_mutex_lock(&clock_lock);
    busy_us += us;
    step_locked(us);
    pthread_mutex_unlock(&clock_lock);
    MP_THREAD_GIL_ENTER();
}

// The main thread moves the clock `us` on (busy, or asleep: lightsleep, a unit test's
// jump), the GIL released: the other threads run on their deadlines as it passes them, the
// watchdog bites at its own.
static void step_locked(sim_us_t us) {
    rebase_locked();
    sim_us_t end = now_us_locked() + us;
    for (;;) {
        sim_us_t now = now_us_locked();
        if (waiter_due_locked(now)) {
            cond_wait_us(1000);  // it runs first
            continue;
        }
        sim_us_t next = next_waiter_locked();
        sim_us_t w = wdt_deadline_locked();
        if (w < next) {
            next = w;
        }
        if (next > end) {
            break;
        }
        if (next > now) {
            set_clock_locked(next);
        }
        signal_waiters_locked(next);
        if (wdt_overdue_locked(next) && !waiter_due_locked(next)) {
            bite_locked();
            break;
        }
    }
    if (!wdt_bitten) {
        set_clock_locked(end);
        signal_waiters_locked(end);
    }
}

// Main blocks in a system call of its own (a blocking socket, a lock another thread holds,
// a real-time sleep): the device waits, device time flows meanwhile.
void epx_sim_main_blocked(bool blocked) {
    if (!on_main()) {
        pthread_mutex_lock(&clock_lock);
        int i = waiter_slot_locked(false);
        if (i >= 0 && blocked) {
            free_waiter_locked(i);  // woken, and now waiting on the world again
        }
        pthread_mutex_unlock(&clock_lock);
        return;
    }
    if (blocked) {
        epx_sim_cost_fold();
    }
    pthread_mutex_lock(&clock_lock);
    rebase_locked();
    if (blocked) {
        stretch_ends_locked(now_us_locked());
    } else {
        stretch_from_us = now_us_locked();
    }
    if (blocked) {
        // A call that returns at once (a connect on this host, a lock let go) takes no time.
        base_real_us += BLOCK_QUICK_US;
    }
    main_blocked_real_us = blocked ? base_real_us : 0;
    pthread_cond_broadcast(&clock_cv);
    pthread_mutex_unlock(&clock_lock);
}

// Real µs to wait for device time to reach `until` from `now`; -1 for ever.
static int64_t real_us(sim_us_t now, sim_us_t until) {
    if (until == NEVER) {
        return -1;
    }
    double us = ceil((until - now) / clock_scale);
    return us > 1e15 ? (int64_t)1e15 : (int64_t)us;
}

int __real_poll(struct pollfd *fds, nfds_t nfds, int timeout);

// poll() for `us` real µs (-1: for ever) that a wake-up (SIGUSR2) interrupts with EINTR.
static int sleep_poll(struct pollfd *fds, nfds_t nfds, int64_t us) {
    sigset_t mask;
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    sigdelset(&mask, SIGUSR2);
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000L };
    return ppoll(fds, nfds, us < 0 ? NULL : &ts, &mask);
}

// The main thread waits: poll() or a sleep with a timeout (ms of device time, -1 for ever).
// The watchdog bites here when the firmware chose to wait past it.
static int wait_main(struct pollfd *fds, nfds_t nfds, int timeout) {
    epx_sim_cost_fold();
    pthread_mutex_lock(&clock_lock);
    rebase_locked();
    sim_us_t now = now_us_locked();
    stretch_ends_locked(now);
    sim_us_t deadline = timeout < 0 ? NEVER : now + timeout * 1000ULL;
    main_waiting = true;
    main_deadline = deadline;
    main_timeout = timeout;
    wake_pending = false;
    main_nfds = nfds < MAX_MAIN_FDS ? nfds : MAX_MAIN_FDS;
    for (nfds_t i = 0; i < main_nfds; i++) {
        main_fds[i] = fds[i];
    }
    pthread_cond_broadcast(&clock_cv);
    int r;
    for (;;) {
        now = now_us_locked();
        if (wdt_bitten || wdt_overdue_locked(now)) {
            if (!wdt_bitten && !waiter_due_locked(now)) {
                bite_locked();
            }
            if (!wdt_bitten) {  // a thread that is due may still feed: its turn first
                cond_wait_us(1000);
                continue;
            }
            for (;;) {  // the chip resets: the watchdog's thread ends the process
                pthread_cond_wait(&clock_cv, &clock_lock);
            }
        }
        if (now >= deadline) {
            r = nfds ? __real_poll(fds, nfds, 0) : 0;
            break;
        }
        sim_us_t w = wdt_deadline_locked();
        int64_t us = real_us(now, w < deadline ? w : deadline);
        pthread_mutex_unlock(&clock_lock);
        r = sleep_poll(fds, nfds, us);
        int err = errno;
        pthread_mutex_lock(&clock_lock);
        errno = err;
        if (r != 0) {
            break;
        }
    }
    int err = errno;
    rebase_locked();
    stretch_from_us = now_us_locked();
    main_waiting = false;
    main_deadline = NEVER;
    pthread_cond_broadcast(&clock_cv);
    pthread_mutex_unlock(&clock_lock);
    errno = err;
    return r;
}

// Another thread waits: registered, so the clock waits for it and a walk wakes it.
static int wait_other_until(struct pollfd *fds, nfds_t nfds, sim_us_t deadline) {
    pthread_mutex_lock(&clock_lock);
    rebase_locked();
    sim_us_t now;
    int slot = waiter_slot_locked(deadline != NEVER);
    if (slot >= 0 && deadline == NEVER) {
        free_waiter_locked(slot);
        slot = -1;
    } else if (slot >= 0) {
        waiters[slot].deadline = deadline;
        waiters[slot].woken_real_us = 0;
    }
    pthread_cond_broadcast(&clock_cv);
    int r;
    for (;;) {
        now = now_us_locked();
        if (now >= deadline) {
            r = nfds ? __real_poll(fds, nfds, 0) : 0;
            break;
        }
        int64_t us = real_us(now, deadline);
        pthread_mutex_unlock(&clock_lock);
        r = sleep_poll(fds, nfds, us);
        int err = errno;
        pthread_mutex_lock(&clock_lock);
        errno = err;
        if (r != 0) {
            break;
        }
    }
    int err = errno;
    rebase_locked();
    if (slot >= 0 && r <= 0 && now_us_locked() >= deadline) {
        waiters[slot].woken_real_us = monotonic_us();  // runs on the instant it asked for
    } else if (slot >= 0) {
        free_waiter_locked(slot);  // woken by the world (a socket, a signal)
    }
    pthread_cond_broadcast(&clock_cv);
    pthread_mutex_unlock(&clock_lock);
    errno = err;
    return r;
}

static int wait_other(struct pollfd *fds, nfds_t nfds, int timeout) {
    return wait_other_until(fds, nfds, timeout < 0 ? NEVER : now_us() + timeout * 1000ULL);
}

static int wait_device(struct pollfd *fds, nfds_t nfds, int timeout) {
    return pthread_equal(pthread_self(), main_thread) ? wait_main(fds, nfds, timeout)
                                                       : wait_other(fds, nfds, timeout);
}

// Another thread (the world's, simirq's releaser) sleeps until device time `until` (µs),
// woken on that instant in a walk.
void epx_sim_sleep_until_us(uint64_t until) {
    while (now_us() < until) {
        wait_other_until(NULL, 0, until);
    }
}

// This thread, woken by the clock, is done with that instant (it waits elsewhere now).
void epx_sim_waiter_done(void) {
    pthread_mutex_lock(&clock_lock);
    int i = waiter_slot_locked(false);
    if (i >= 0) {
        free_waiter_locked(i);
    }
    pthread_mutex_unlock(&clock_lock);
}

// Wake the main thread (an ISR scheduled a handler): a walk lets it run first.
void epx_sim_wake_main(void) {
    pthread_mutex_lock(&clock_lock);
    wake_main_locked();
    pthread_mutex_unlock(&clock_lock);
}

// poll() everywhere in the firmware: the timeout is device time.
int __wrap_poll(struct pollfd *fds, nfds_t nfds, int timeout) {
    if (timeout != 0 && MP_STATE_VM(sched_state) == MP_SCHED_PENDING
        && pthread_equal(pthread_self(), main_thread)) {
        // A handler is due: back to the VM first (its retry loop runs it), as the port's
        // wait returns when an ISR wakes the main task.
        errno = EINTR;
        return -1;
    }
    if (timeout == 0) {
        return __real_poll(fds, nfds, 0);
    }
    return wait_device(fds, nfds, timeout);
}

// time.sleep_ms: device time, the GIL released (FreeRTOS lets the ESP32's other tasks run),
// scheduled callbacks run meanwhile as mp_hal_delay_ms does on the ESP32.
void epx_sim_delay_ms(unsigned long ms) {
    sim_us_t end = now_us() + ms * 1000ULL;
    for (;;) {
        // Every handler that is due, as the port's delay loop drains its queue.
        do {
            mp_event_handle_nowait();
        } while (MP_STATE_VM(sched_state) == MP_SCHED_PENDING && pthread_equal(pthread_self(), main_thread));
        sim_us_t now = now_us();
        if (now >= end) {
            return;
        }
        MP_THREAD_GIL_EXIT();
        wait_device(NULL, 0, (int)((end - now + 999) / 1000));
        MP_THREAD_GIL_ENTER();
    }
}

// simpeer.c: whether a socket's peer on this host has nothing to say.
void epx_sim_peer_sent(int fd, const struct sockaddr *to, socklen_t len);
bool epx_sim_peer_quiet(int fd);

ssize_t __real_write(int fd, const void *buf, size_t n);
ssize_t __real_send(int fd, const void *buf, size_t n, int flags);
ssize_t __real_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to, socklen_t len);

// What the firmware sends leaves at the device time its computation reached.
static void sending(void) {
    if (on_main()) {
        epx_sim_cost_fold();
    }
}

ssize_t __wrap_write(int fd, const void *buf, size_t n) {
    sending();
    if (fd > 2 && fd < MAX_FD) {
        written[fd] = 1;
    }
    return __real_write(fd, buf, n);
}

ssize_t __real_read(int fd, void *buf, size_t n);
ssize_t __real_recv(int fd, void *buf, size_t n, int flags);
ssize_t __real_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *len);

static bool is_socket(int fd);

// A read or accept that may block on a socket: the device waits for the network (or the
// host, for the control channel) while it does.
static bool may_block(int fd) {
    if (!is_socket(fd)) {
        return false;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || (flags & O_NONBLOCK)) {
        return false;
    }
    struct pollfd p = { fd, POLLIN, 0 };
    return __real_poll(&p, 1, 0) == 0;
}

// `call`, a blocking one if `blocks`: device time flows while it blocks (errno kept).
#define BLOCKING(blocks, call) ({ \
        bool blocks_ = (blocks); \
        if (blocks_) { \
            epx_sim_main_blocked(true); \
        } \
        __typeof__(call) r_ = call; \
        if (blocks_) { \
            int err_ = errno; \
            epx_sim_main_blocked(false); \
            errno = err_; \
        } \
        r_; \
    })

// A _thread lock another thread holds (not the GIL: waiting for it, the device does not).
int __real_mp_thread_mutex_lock(mp_thread_mutex_t *mutex, int wait);
int __wrap_mp_thread_mutex_lock(mp_thread_mutex_t *mutex, int wait) {
    if (!wait || mutex == &MP_STATE_VM(gil_mutex)) {
        return __real_mp_thread_mutex_lock(mutex, wait);
    }
    int r = __real_mp_thread_mutex_lock(mutex, 0);
    if (r) {
        return r;
    }
    return BLOCKING(true, __real_mp_thread_mutex_lock(mutex, 1));
}

int __real_accept(int fd, struct sockaddr *addr, socklen_t *len);
int __wrap_accept(int fd, struct sockaddr *addr, socklen_t *len) {
    return BLOCKING(may_block(fd), __real_accept(fd, addr, len));
}

int __real_connect(int fd, const struct sockaddr *addr, socklen_t len);
int __wrap_connect(int fd, const struct sockaddr *addr, socklen_t len) {
    int flags = fcntl(fd, F_GETFL);
    return BLOCKING(flags >= 0 && !(flags & O_NONBLOCK), __real_connect(fd, addr, len));
}

ssize_t __wrap_read(int fd, void *buf, size_t n) {
    ssize_t r = BLOCKING(may_block(fd), __real_read(fd, buf, n));
    if (r > 0 && fd >= 0 && fd < MAX_FD) {
        written[fd] = 0;
    }
    return r;
}

ssize_t __wrap_recv(int fd, void *buf, size_t n, int flags) {
    ssize_t r = BLOCKING(may_block(fd), __real_recv(fd, buf, n, flags));
    if (r > 0 && fd >= 0 && fd < MAX_FD) {
        written[fd] = 0;
    }
    return r;
}

ssize_t __wrap_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *len) {
    ssize_t r = BLOCKING(may_block(fd), __real_recvfrom(fd, buf, n, flags, from, len));
    if (r > 0 && fd >= 0 && fd < MAX_FD) {
        written[fd] = 0;
    }
    return r;
}

ssize_t __wrap_send(int fd, const void *buf, size_t n, int flags) {
    sending();
    if (fd >= 0 && fd < MAX_FD) {
        written[fd] = 1;
    }
    return __real_send(fd, buf, n, flags);
}

ssize_t __wrap_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to, socklen_t len) {
    sending();
    if (fd >= 0 && fd < MAX_FD) {
        written[fd] = 1;
        epx_sim_peer_sent(fd, to, len);
    }
    return __real_sendto(fd, buf, n, flags, to, len);
}

// The firmware is idle: main waits and is not due, nothing is pending for it, no other
// waiting thread is due.
static bool settled_locked(void) {
    sim_us_t now = now_us_locked();
    return main_waiting && !wake_pending && main_deadline > now && !waiter_due_locked(now)
           && !wdt_overdue_locked(now);
}


// Every peer polled is known to have nothing to say (simpeer.c): the grace may end early.
static bool peers_quiet(const struct pollfd *fds, nfds_t n) {
    if (net_grace_fixed) {
        return false;
    }
    for (nfds_t i = 0; i < n; i++) {
        if (!epx_sim_peer_quiet(fds[i].fd)) {
            return false;
        }
    }
    return true;
}

// The main thread waits to read sockets it wrote to and has not read from since: give
// their peer (a real process) up to NET_GRACE_MS of real time per walk step to answer
// before device time moves on, less once every peer is seen to have nothing to say; true
// if an answer came (main runs with it first).
static bool net_grace_locked(sim_us_t *until_real) {
    struct pollfd fds[MAX_MAIN_FDS];
    nfds_t n = 0;
    for (nfds_t i = 0; i < main_nfds; i++) {
        int fd = main_fds[i].fd;
        if (fd >= 0 && fd < MAX_FD && written[fd] && (main_fds[i].events & POLLIN)) {
            fds[n].fd = fd;
            fds[n].events = POLLIN;
            fds[n].revents = 0;
            n++;
        }
    }
    if (!n) {
        return false;
    }
    sim_us_t real = monotonic_us();
    if (!*until_real) {
        *until_real = real + NET_GRACE_MS * 1000ULL;
    }
    int r = 0;
    pthread_mutex_unlock(&clock_lock);
    while (real < *until_real) {
        bool quiet = peers_quiet(fds, n);
        // Quiet: one look at what arrived before it was seen so; else a slice of the grace.
        int ms = quiet ? 0 : (int)((*until_real - real + 999) / 1000);
        r = __real_poll(fds, n, ms < PEER_LOOK_MS ? ms : PEER_LOOK_MS);
        if (r > 0 || quiet) {
            break;
        }
        real = monotonic_us();
    }
    pthread_mutex_lock(&clock_lock);
    if (r > 0) {
        return true;
    }
    for (nfds_t i = 0; i < n; i++) {
        written[fds[i].fd] = 0;  // no answer: a message that wants none
    }
    return false;
}

static sim_us_t next_deadline_locked(sim_us_t next) {
    for (int i = 0; i < MAX_WAITERS; i++) {
        if (waiters[i].used && waiters[i].deadline < next) {
            next = waiters[i].deadline;
        }
    }
    sim_us_t w = wdt_deadline_locked();
    return w < next ? w : next;
}

// asyncio polls objects without a file descriptor (ThreadSafeFlag) every ms, as on the
// ESP32: then the main thread's own deadline is asyncio's next task, asked of `next_task`
// (ms from now, or None) with the GIL.
static sim_us_t main_due_locked(mp_obj_t next_task) {
    if (!main_waiting || main_timeout < 0 || main_timeout > SELECT_POLL_MS
        || next_task == mp_const_none) {
        return main_waiting ? main_deadline : NEVER;
    }
    sim_us_t polled = main_deadline;
    pthread_mutex_unlock(&clock_lock);
    MP_THREAD_GIL_ENTER();
    mp_obj_t ms = mp_call_function_0(next_task);
    MP_THREAD_GIL_EXIT();
    pthread_mutex_lock(&clock_lock);
    if (!main_waiting || main_deadline != polled) {
        return 0;  // main moved meanwhile: look again
    }
    if (ms == mp_const_none) {
        return NEVER;
    }
    sim_us_t due = (now_us_locked() / 1000 + mp_obj_get_int(ms)) * 1000;
    return due > polled ? due : polled;
}

static bool is_socket(int fd) {
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

// Walk device time forward by `us`: to the next deadline, until the firmware waits again,
// and so on to the target.
static void walk_locked(sim_us_t us, mp_obj_t next_task) {
    sim_us_t target = now_us_locked() + us;
    for (;;) {
        sim_us_t grace = 0;
        while (!wdt_bitten) {
            if (settled_locked()) {
                if (net_grace_locked(&grace)) {
                    continue;  // an answer came: main runs with it first
                }
                if (settled_locked()) {
                    break;
                }
                continue;  // the grace let go of the lock: main may have woken meanwhile
            }
            sim_us_t now = now_us_locked();
            if (!flowing_locked() && now >= target) {
                return;  // computing (charged) past the target: the walk is over
            }
            // Blocked in a system call of its own: the clock moves on without it (and the
            // watchdog bites if past due), once the waiting threads that are due have run.
            if (main_blocked_real_us && monotonic_us() >= main_blocked_real_us + BLOCKED_US
                && !waiter_due_locked(now)) {
                break;
            }
            cond_wait_us(2000);
        }
        if (wdt_bitten) {
            return;
        }
        sim_us_t due = main_due_locked(next_task);
        if (due == 0) {
            continue;
        }
        sim_us_t now = now_us_locked();
        sim_us_t next = next_deadline_locked(due);
        if (next <= now) {
            next = now;
        }
        if (next >= target) {
            set_clock_locked(target);
            signal_waiters_locked(NEVER);  // every sleeper recomputes its real timeout
            wake_main_locked();
            return;
        }
        set_clock_locked(next);
        signal_waiters_locked(next);
        if (main_waiting && (due <= next || wdt_deadline_locked() <= next)) {
            wake_main_locked();
        }
    }
}

// The task watchdog's thread: bites when device time is past the deadline while the main
// thread is not waiting (busy, or blocked outside a wait) and no waiting thread is due.
// A wait past the deadline bites in wait_main().
static void *watchdog_thread(void *arg) {
    (void)arg;
    pthread_mutex_lock(&clock_lock);
    for (;;) {
        cond_wait_us(TICK_US);
        sim_us_t now = now_us_locked();  // drops a stop first
        last_tick_real_us = monotonic_us();
        if (!main_waiting && wdt_overdue_locked(now) && !waiter_due_locked(now)) {
            bite_locked();
        }
    }
    return NULL;
}

// The chip's random numbers (esp_random: the seed of `random`, os.urandom): the host's, or
// with EPX_SIM_SEED a fixed stream (xorshift32), so a run can be repeated exactly.
void __real_mp_hal_get_random(size_t n, void *buf);
void __wrap_mp_hal_get_random(size_t n, void *buf) {
    static uint32_t state;
    static bool seeded;
    const char *seed = getenv("EPX_SIM_SEED");
    if (!seed) {
        __real_mp_hal_get_random(n, buf);
        return;
    }
    if (!seeded) {
        state = (uint32_t)strtoul(seed, NULL, 0) | 1;
        seeded = true;
    }
    for (size_t i = 0; i < n; i++) {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        ((unsigned char *)buf)[i] = (unsigned char)state;
    }
}

// _simclock.advance(ms[, next_task]): device time moves ms forward. From the host (the
// control thread), a walk in lockstep with the firmware, True if the watchdog bit on the
// way; from the main thread (lightsleep, in-firmware tests), a step past the other threads'
// deadlines, each of them run on its own before the caller goes on (the VM's work in
// between is the caller's).
static mp_obj_t simclock_advance(size_t n_args, const mp_obj_t *args) {
    mp_int_t ms = mp_obj_get_int(args[0]);
    mp_obj_t next_task = n_args > 1 ? args[1] : mp_const_none;
    if (ms < 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("the clock only goes forward"));
    }
    bool main = pthread_equal(pthread_self(), main_thread);
    bool bitten = false;
    MP_THREAD_GIL_EXIT();
    pthread_mutex_lock(&clock_lock);
    if (main) {
        step_locked(ms * 1000ULL);
        signal_waiters_locked(NEVER);  // every sleeper recomputes its real timeout
    } else if (!wdt_bitten) {
        walking = true;
        walk_locked(ms * 1000ULL, next_task);
        bitten = wdt_bitten;
        walking = bitten;  // if it bit, the caller resets the device after answering
        pthread_cond_broadcast(&clock_cv);
    }
    pthread_mutex_unlock(&clock_lock);
    MP_THREAD_GIL_ENTER();
    return mp_obj_new_bool(bitten);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(simclock_advance_obj, 1, 2, simclock_advance);

// _simclock.scale(factor): device seconds per real second from now on.
static mp_obj_t simclock_scale(mp_obj_t factor_in) {
    mp_float_t factor = mp_obj_get_float(factor_in);
    if (!(factor > 0)) {
        mp_raise_ValueError(MP_ERROR_TEXT("scale must be > 0"));
    }
    pthread_mutex_lock(&clock_lock);
    rebase_locked();
    clock_scale = factor;
    signal_waiters_locked(NEVER);
    wake_main_locked();
    pthread_mutex_unlock(&clock_lock);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(simclock_scale_obj, simclock_scale);

// _simclock.now_us(): the device clock, unmasked (ticks_us wraps).
static mp_obj_t simclock_now_us(void) {
    return mp_obj_new_int_from_ull(now_us());
}
static MP_DEFINE_CONST_FUN_OBJ_0(simclock_now_us_obj, simclock_now_us);

// _simclock.busy() -> (busy µs, longest stretch µs, over µs): what the VM's thread computed
// since the last call, and its longest stretch without a wait; counts start again.
static mp_obj_t simclock_busy(void) {
    pthread_mutex_lock(&clock_lock);
    sim_us_t now = now_us_locked();
    mp_obj_t t[3] = { mp_obj_new_int_from_ull(busy_us), mp_obj_new_int_from_ull(longest_us),
                      mp_obj_new_int_from_ull(now - busy_since_us) };
    busy_us = longest_us = 0;
    busy_since_us = now;
    pthread_mutex_unlock(&clock_lock);
    return mp_obj_new_tuple(3, t);
}
static MP_DEFINE_CONST_FUN_OBJ_0(simclock_busy_obj, simclock_busy);

// _simclock.sleep_us(us): a thread of the simulator's world sleeps `us` of device time (a
// walk stops there and waits for it to act); _simclock.done(): it has acted.
static mp_obj_t simclock_sleep_us(mp_obj_t us_in) {
    mp_int_t us = mp_obj_get_int(us_in);
    sim_us_t until = now_us() + (us > 0 ? us : 0);
    MP_THREAD_GIL_EXIT();
    epx_sim_sleep_until_us(until);
    MP_THREAD_GIL_ENTER();
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(simclock_sleep_us_obj, simclock_sleep_us);

static mp_obj_t simclock_done(void) {
    epx_sim_waiter_done();
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(simclock_done_obj, simclock_done);

// _simclock.wake(): interrupt the main thread's poll() or sleep, as the ESP32's ISRs wake
// the main task after scheduling a callback.
static mp_obj_t simclock_wake(void) {
    pthread_mutex_lock(&clock_lock);
    wake_main_locked();
    pthread_mutex_unlock(&clock_lock);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(simclock_wake_obj, simclock_wake);

// _simclock.wdt(timeout_ms): arm the task watchdog, or set its timeout; fed now.
static mp_obj_t simclock_wdt(mp_obj_t timeout_in) {
    mp_int_t ms = mp_obj_get_int(timeout_in);
    pthread_mutex_lock(&clock_lock);
    wdt_timeout_us = ms * 1000ULL;
    wdt_fed_us = now_us_locked();
    wdt_armed = true;
    wake_main_locked();  // a waiting main thread recomputes its wake-up
    pthread_mutex_unlock(&clock_lock);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(simclock_wdt_obj, simclock_wdt);

// _simclock.feed(): feed the task watchdog.
static mp_obj_t simclock_feed(void) {
    pthread_mutex_lock(&clock_lock);
    wdt_fed_us = now_us_locked();
    pthread_mutex_unlock(&clock_lock);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(simclock_feed_obj, simclock_feed);

// _simclock.wdt_wait(): return once the watchdog has bitten (the caller resets the chip),
// unless it bit during a walk: then the walker resets it once the host has its answer.
static mp_obj_t simclock_wdt_wait(void) {
    MP_THREAD_GIL_EXIT();
    pthread_mutex_lock(&clock_lock);
    while (!wdt_bitten || walking) {
        pthread_cond_wait(&clock_cv, &clock_lock);
    }
    sim_us_t now = wdt_bite_us;
    pthread_mutex_unlock(&clock_lock);
    MP_THREAD_GIL_ENTER();
    return mp_obj_new_int_from_ull(now / 1000);
}
static MP_DEFINE_CONST_FUN_OBJ_0(simclock_wdt_wait_obj, simclock_wdt_wait);

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
    { MP_ROM_QSTR(MP_QSTR_sleep_us), MP_ROM_PTR(&simclock_sleep_us_obj) },
    { MP_ROM_QSTR(MP_QSTR_busy), MP_ROM_PTR(&simclock_busy_obj) },
    { MP_ROM_QSTR(MP_QSTR_done), MP_ROM_PTR(&simclock_done_obj) },
    { MP_ROM_QSTR(MP_QSTR_wdt), MP_ROM_PTR(&simclock_wdt_obj) },
    { MP_ROM_QSTR(MP_QSTR_feed), MP_ROM_PTR(&simclock_feed_obj) },
    { MP_ROM_QSTR(MP_QSTR_wdt_wait), MP_ROM_PTR(&simclock_wdt_wait_obj) },
    { MP_ROM_QSTR(MP_QSTR_exit), MP_ROM_PTR(&simclock_exit_obj) },
};
static MP_DEFINE_CONST_DICT(simclock_globals, simclock_globals_table);

const mp_obj_module_t mp_module_simclock = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&simclock_globals,
};

MP_REGISTER_MODULE(MP_QSTR__simclock, mp_module_simclock);
