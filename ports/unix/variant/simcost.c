// What the firmware's computation costs on the ESP32: device time charged to the VM's thread
// (docs/simulator.md, "Device time"; calibration and error in docs/port-parity.md).
//
// MicroPython's own C (py/, extmod/, shared/, littlefs: what the ESP32 runs too) is compiled
// with -fsanitize-coverage=trace-pc: every basic block it enters calls the hook below, which
// counts it for the thread. The main thread's count is the work its code makes the VM do;
// every FOLD_BLOCKS blocks, and wherever the clock is read or the thread waits or sends, it
// is folded into the device clock (simclock.c) at the cost of a block on an ESP32 at its
// configured frequency. The simulator's Python (the port's modules written in Python, the
// world) stands in for C the port runs: its blocks are not counted, each call into it costs
// PORT_CALL_BLOCKS instead. Code that is not counted: the host port's C (sockets, files),
// mbedTLS (charged by what the chip's accelerators take: simirq.c) and native/viper code.

#include <stdint.h>
#include <pthread.h>

#include "py/bc.h"
#include "py/objfun.h"
#include "py/runtime.h"

// A block's cost at 240 MHz, in picoseconds: bench/bench_calibrate.py fits it to the ESP32's
// published tests/perf_bench times (micropython#7850); cost scales with 1/frequency.
#define PS_PER_BLOCK_240MHZ (56719)
#define FOLD_BLOCKS (4096)
// ports/esp32 does in C what the simulated modules do in Python: a call's body there takes
// about as long as a few blocks of the VM's (a method on a pin, a socket, the radio).
#define PORT_CALL_BLOCKS (16)

void epx_sim_charge_ps(uint64_t ps);  // simclock.c
bool epx_sim_try_charge_ps(uint64_t ps);
bool epx_sim_is_simulator(mp_obj_dict_t *globals);  // simstack.c

static __thread uint32_t blocks __attribute__((tls_model("local-exec")));
static __thread uint32_t fold_at __attribute__((tls_model("local-exec")));
static __thread uint32_t settled;  // blocks charged (or skipped) so far
static __thread bool in_simulator;
static pthread_t main_thread;
static uint32_t ps_per_block = PS_PER_BLOCK_240MHZ * 3 / 2;  // ports/esp32 boots at 160 MHz
static uint64_t total_blocks;  // the main thread's, counted

__attribute__((constructor)) static void simcost_init(void) {
    main_thread = pthread_self();
    fold_at = FOLD_BLOCKS;
}

static void fold(bool wait);

__attribute__((no_sanitize_coverage)) void __sanitizer_cov_trace_pc(void) {
    if (++blocks == fold_at) {
        fold(false);
    }
}

// Charge the main thread's blocks since the last fold (those in the simulator: none). From
// the hook (!wait), which may run in a signal handler that interrupted the clock's own code
// on this thread: if the clock is busy, the blocks wait for the next fold.
static void fold(bool wait) {
    if (!pthread_equal(pthread_self(), main_thread)) {
        fold_at = blocks + 0x80000000u;  // not charged: never again soon
        return;
    }
    fold_at = blocks + FOLD_BLOCKS;
    uint32_t n = blocks - settled;
    if (in_simulator || !n) {
        settled = blocks;
        return;
    }
    uint64_t ps = (uint64_t)n * ps_per_block;
    if (wait) {
        epx_sim_charge_ps(ps);
    } else if (!epx_sim_try_charge_ps(ps)) {
        return;
    }
    settled = blocks;
    total_blocks += n;
}

// The main thread's computation so far into the clock (simclock.c, before it reads or waits).
void epx_sim_cost_fold(void) {
    fold(true);
}

// Extra device time on the main thread, as that many blocks.
static void charge_blocks(uint32_t n) {
    total_blocks += n;
    epx_sim_charge_ps((uint64_t)n * ps_per_block);
}

// Every run of a bytecode function (a call, a generator resumed): the product's code is
// counted, the simulator's is not and costs a port call.
mp_vm_return_kind_t __real_mp_execute_bytecode(mp_code_state_t *code_state, volatile mp_obj_t inject_exc);

mp_vm_return_kind_t __wrap_mp_execute_bytecode(mp_code_state_t *code_state, volatile mp_obj_t inject_exc) {
    if (!pthread_equal(pthread_self(), main_thread)) {
        return __real_mp_execute_bytecode(code_state, inject_exc);
    }
    static mp_obj_dict_t *seen;
    static bool seen_sim;
    mp_obj_dict_t *globals = code_state->fun_bc->context->module.globals;
    if (globals != seen) {
        seen = globals;
        seen_sim = epx_sim_is_simulator(globals);
    }
    bool sim = seen_sim, outer = in_simulator;
    if (sim != outer) {
        fold(true);
        in_simulator = sim;
    }
    mp_vm_return_kind_t kind = __real_mp_execute_bytecode(code_state, inject_exc);
    if (sim != outer) {
        fold(true);
        in_simulator = outer;
        if (sim) {
            charge_blocks(PORT_CALL_BLOCKS);
        }
    }
    return kind;
}

static uint32_t cpu_mhz = 160;

uint32_t epx_sim_cpu_mhz(void) {
    return cpu_mhz;
}

// _simcost.freq(hz): the CPU clock the firmware set (machine.freq).
static mp_obj_t simcost_freq(mp_obj_t hz_in) {
    mp_int_t mhz = mp_obj_get_int(hz_in) / 1000000;
    if (mhz <= 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("bad frequency"));
    }
    fold(true);
    cpu_mhz = mhz;
    ps_per_block = (uint32_t)((uint64_t)PS_PER_BLOCK_240MHZ * 240 / mhz);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(simcost_freq_obj, simcost_freq);

// _simcost.blocks(): blocks the main thread's code has been charged for (a calibration reads
// it around a benchmark).
static mp_obj_t simcost_blocks(void) {
    fold(true);
    return mp_obj_new_int_from_ull(total_blocks);
}
static MP_DEFINE_CONST_FUN_OBJ_0(simcost_blocks_obj, simcost_blocks);

// _simcost.ps_per_block(): at the current frequency.
static mp_obj_t simcost_ps_per_block(void) {
    return mp_obj_new_int_from_uint(ps_per_block);
}
static MP_DEFINE_CONST_FUN_OBJ_0(simcost_ps_per_block_obj, simcost_ps_per_block);

static const mp_rom_map_elem_t simcost_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__simcost) },
    { MP_ROM_QSTR(MP_QSTR_freq), MP_ROM_PTR(&simcost_freq_obj) },
    { MP_ROM_QSTR(MP_QSTR_blocks), MP_ROM_PTR(&simcost_blocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_ps_per_block), MP_ROM_PTR(&simcost_ps_per_block_obj) },
};
static MP_DEFINE_CONST_DICT(simcost_globals, simcost_globals_table);

const mp_obj_module_t mp_module_simcost = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&simcost_globals,
};

MP_REGISTER_MODULE(MP_QSTR__simcost, mp_module_simcost);
