// The C stack: the host's limit, and the ESP32's limit on the product's own depth.
//
// The unix port allows 40000 bytes on a 32-bit host (main.c); the simulator calls back into
// Python where the ESP32 port stays in C (littlefs reads through the Python esp32.Partition,
// the simulated machine and socket), so imports and I/O run deeper here than on the device:
// the host's limit is the 80000 the 64-bit build had.
//
// The ESP32 runs MicroPython in a 16 KB task and raises "maximum recursion depth exceeded"
// 1 KB short of it (ports/esp32/main.c: mp_cstack_init_with_top(sp, MICROPY_TASK_STACK_SIZE);
// mpconfigport.h: MICROPY_STACK_CHECK_MARGIN). _simstack.start(limit) applies that limit to
// the product's code on this thread from the caller's depth on (main.py's, on a device):
// mp_cstack_check, which the VM calls at each call, charges the depth only while the code
// making the call is the product's (its globals are not a simulated module's), less the
// simulator's frames under it. Those are the frames between the product's last call (into
// the simulator) and a callback the simulator's code let run (a scheduled IRQ handler, a
// finaliser): on the device it runs where the VM was, on top of the product's frames.
// Each import in progress holds a path buffer of MICROPY_ALLOC_PATH_MAX (builtinimport.c:
// process_import_at_level), the host's PATH_MAX here, 128 bytes on the port: the
// difference is not charged either.
// docs/port-parity.md, "C stack".

#include <string.h>

#include "py/cstack.h"
#include "py/runtime.h"

#define EPX_SIM_C_STACK (80000)
#define ESP32_STACK_LIMIT (16 * 1024 - 1024)  // ports/esp32/mpconfigport.h
#define ESP32_ALLOC_PATH_MAX (128)

void __real_mp_cstack_init_with_sp_here(size_t stack_size);

static void start(mp_int_t bytes);

// The VM's thread, from the top (main.c): a program run with -c or a file as the port runs
// main.py; _sim_start starts again where boot.py and main.py start.
void __wrap_mp_cstack_init_with_sp_here(size_t stack_size) {
    __real_mp_cstack_init_with_sp_here(stack_size < EPX_SIM_C_STACK ? EPX_SIM_C_STACK : stack_size);
    start(ESP32_STACK_LIMIT);
}

static __thread bool started;  // this thread runs the product (the VM's task)
static __thread mp_int_t importing;  // imports in progress on this thread
static mp_int_t limit;         // bytes of the product's own depth allowed, 0: any
static mp_int_t base;          // usage where the product starts
static mp_int_t skipped;       // the simulator's frames under the running product code
static mp_int_t last;          // usage at the product's latest call
static mp_int_t high;          // the product's own high-water (the control thread reads it)
static mp_obj_dict_t *seen;
static bool seen_sim;

// ports/unix/modules: the simulated port's modules and the simulator's own.
static bool is_simulator(mp_obj_dict_t *globals) {
    mp_map_elem_t *name = mp_map_lookup(&globals->map, MP_OBJ_NEW_QSTR(MP_QSTR___name__), MP_MAP_LOOKUP);
    if (name == NULL || !mp_obj_is_qstr(name->value)) {
        return false;
    }
    switch (MP_OBJ_QSTR_VALUE(name->value)) {
        case MP_QSTR_machine:
        case MP_QSTR_network:
        case MP_QSTR_socket:
        case MP_QSTR_esp32:
        case MP_QSTR__espnow:
        case MP_QSTR_os:
        case MP_QSTR_sim:
        case MP_QSTR__sim_start:
            return true;
    }
    return strncmp(qstr_str(MP_OBJ_QSTR_VALUE(name->value)), "sim.", 4) == 0;
}

bool epx_sim_is_simulator(mp_obj_dict_t *globals) {
    return is_simulator(globals);
}

static bool in_simulator(void) {
    mp_obj_dict_t *globals = mp_globals_get();
    if (globals != seen) {
        seen = globals;
        seen_sim = is_simulator(globals);
    }
    return seen_sim;
}

void __real_mp_cstack_check(void);

void __wrap_mp_cstack_check(void) {
    if (started && !in_simulator()) {
        last = mp_cstack_usage();
        mp_int_t own = last - skipped - base - importing * (MICROPY_ALLOC_PATH_MAX - ESP32_ALLOC_PATH_MAX);
        if (limit && own >= limit) {
            mp_raise_recursion_depth();
        }
        if (own > high) {
            high = own;
        }
    }
    __real_mp_cstack_check();
}

// Every import statement (runtime.c: mp_import_name).
mp_obj_t __real_mp_builtin___import___default(size_t n_args, const mp_obj_t *args);

mp_obj_t __wrap_mp_builtin___import___default(size_t n_args, const mp_obj_t *args) {
    ++importing;
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_obj_t module = __real_mp_builtin___import___default(n_args, args);
        nlr_pop();
        --importing;
        return module;
    }
    --importing;
    nlr_jump(nlr.ret_val);
}

// Scheduled callbacks (mp_sched_run_pending) and finalisers (gc_sweep) run here.
mp_obj_t __real_mp_call_function_1_protected(mp_obj_t fun, mp_obj_t arg);

mp_obj_t __wrap_mp_call_function_1_protected(mp_obj_t fun, mp_obj_t arg) {
    if (!started) {
        return __real_mp_call_function_1_protected(fun, arg);
    }
    mp_int_t outer_skipped = skipped, outer_last = last;
    if (in_simulator()) {
        mp_int_t used = mp_cstack_usage();
        if (used > last) {
            skipped += used - last;
        }
    }
    mp_obj_t result = __real_mp_call_function_1_protected(fun, arg);  // catches all
    skipped = outer_skipped;
    last = outer_last;
    return result;
}

// _simstack.start(limit): from the caller's depth on, the product's code on this thread may
// go `limit` bytes deep (0: no limit but the host's).
static void start(mp_int_t bytes) {
    limit = bytes;
    base = last = mp_cstack_usage();
    skipped = 0;
    started = true;
}

static mp_obj_t simstack_start(mp_obj_t limit_in) {
    start(mp_obj_get_int(limit_in));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(simstack_start_obj, simstack_start);

// _simstack.high(): the deepest the product's code went, in bytes, since start.
static mp_obj_t simstack_high(void) {
    return MP_OBJ_NEW_SMALL_INT(high);
}
static MP_DEFINE_CONST_FUN_OBJ_0(simstack_high_obj, simstack_high);

static const mp_rom_map_elem_t simstack_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__simstack) },
    { MP_ROM_QSTR(MP_QSTR_start), MP_ROM_PTR(&simstack_start_obj) },
    { MP_ROM_QSTR(MP_QSTR_high), MP_ROM_PTR(&simstack_high_obj) },
};
static MP_DEFINE_CONST_DICT(simstack_globals, simstack_globals_table);

const mp_obj_module_t mp_module_simstack = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&simstack_globals,
};

MP_REGISTER_MODULE(MP_QSTR__simstack, mp_module_simstack);
