// The ESP32's internal RAM as ESP-IDF's heap hands it out, shared as on the chip by the GC
// heap the port grows (py/gc.c gc_try_add_heap with MICROPY_GC_SPLIT_HEAP_AUTO; the port's
// gc_get_max_new_split is IDF's largest free block, ports/esp32/gccollect.c), mbedTLS
// (CONFIG_MBEDTLS_DEFAULT_MEM_ALLOC: IDF's calloc, ports/esp32/boards/sdkconfig.base),
// thread stacks (mpthreadport.c: xTaskCreatePinnedToCore) and what the simulated C side
// charges from Python (WiFi's buffers, lwIP's sockets: _simram.take).
//
// The RAM is a few regions, each a counter of free bytes (no fragmentation inside a
// region): an allocation takes the first region with room, as IDF's heap_caps_malloc
// takes the first registered heap that fits; each costs its size rounded to 4 plus a
// 4-byte block header (multi_heap's TLSF). The regions' free bytes are those of an ESP32
// without PSRAM when mp_task starts (docs/port-parity.md cites the figures).
//
// Off unless the environment has EPX_SIM_RAM (the bytes of the -X heapsize heap that the
// chip's initial GC heap is, MICROPY_GC_INITIAL_HEAP_SIZE; the rest is room for the
// simulator's own modules, Python here and C on the chip): then nothing is refused and the
// heap does not grow, as before. That room is not charged, and gc_try_add_heap (which
// sizes a new area by the whole heap: it doubles it) is offered no more than the chip's
// heap would add: the GC's areas are the chip's, charged in full, plus that room.

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "py/gc.h"
#include "py/mpthread.h"
#include "py/runtime.h"

#define N_REGIONS (5)
#define HEADER (4)
#define ROUND(n) (((n) + 3) & ~(size_t)3)

enum { TAG_GC, TAG_TLS, TAG_C, N_TAGS };

typedef struct {
    size_t total, free, min_free;
} region_t;

// esp32.idf_heap_info(esp32.HEAP_DATA) of an ESP32 without PSRAM right after boot
// (micropython issue #7214), with the 64000-byte GC heap of that build given back to the
// region it came from (94064 bytes: 5684 free after it).
static region_t regions[N_REGIONS] = {
    {7288, 176, 176}, {16648, 5608, 5608}, {94064, 69684, 69684},
    {15072, 13448, 13448}, {113840, 112216, 112216},
};

typedef struct {
    size_t cost;
    unsigned char region, tag;
    // 8-byte aligned payload follows
} __attribute__((aligned(8))) block_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int state;  // 0: not read yet, 1: off, 2: on
static size_t in_use[N_TAGS], peak[N_TAGS];

static void *take(size_t n, int tag);

static void init(void) {
    if (state) {
        return;
    }
    const char *heap = getenv("EPX_SIM_RAM");
    state = heap ? 2 : 1;
    if (state == 2) {
        // the port's initial heap: main.c MP_PLAT_ALLOC_HEAP(MICROPY_GC_INITIAL_HEAP_SIZE)
        take(strtoul(heap, NULL, 0), TAG_GC);
    }
}

static int region_for(size_t cost) {
    for (int i = 0; i < N_REGIONS; i++) {
        if (regions[i].free >= cost) {
            return i;
        }
    }
    return -1;
}

// Under lock. The region the cost goes to: -1 when no region has room (on) or none is
// charged (off: the host's RAM, counted only).
static void *take(size_t n, int tag) {
    size_t cost = ROUND(n) + HEADER;
    int r = region_for(cost);
    if (state == 2 && r < 0) {
        return NULL;
    }
    block_t *b = malloc(sizeof(block_t) + n);
    if (b == NULL) {
        return NULL;
    }
    b->cost = cost;
    b->tag = tag;
    b->region = state == 2 ? r : N_REGIONS;
    if (state == 2) {
        regions[r].free -= cost;
        if (regions[r].free < regions[r].min_free) {
            regions[r].min_free = regions[r].free;
        }
    }
    in_use[tag] += cost;
    if (in_use[tag] > peak[tag]) {
        peak[tag] = in_use[tag];
    }
    return b + 1;
}

static void give(void *p) {
    block_t *b = (block_t *)p - 1;
    if (b->region < N_REGIONS) {
        regions[b->region].free += b->cost;
    }
    in_use[b->tag] -= b->cost;
    free(b);
}

static void *sim_ram_alloc(size_t n, int tag) {
    pthread_mutex_lock(&lock);
    init();
    void *p = take(n, tag);
    pthread_mutex_unlock(&lock);
    return p;
}

static void sim_ram_give(void *p) {
    if (p != NULL) {
        pthread_mutex_lock(&lock);
        give(p);
        pthread_mutex_unlock(&lock);
    }
}

// The GC heap's new areas (mpconfigport_sim.h: MP_PLAT_ALLOC_HEAP, MP_PLAT_FREE_HEAP).
void *sim_ram_heap_alloc(size_t n) {
    return sim_ram_alloc(n, TAG_GC);
}

void sim_ram_heap_free(void *p) {
    sim_ram_give(p);
}

static size_t largest(void) {
    size_t best = 0;
    for (int i = 0; i < N_REGIONS; i++) {
        if (regions[i].free > best) {
            best = regions[i].free;
        }
    }
    return best > HEADER ? (best - HEADER) & ~(size_t)3 : 0;
}

// ports/esp32/gccollect.c: heap_caps_get_largest_free_block(MALLOC_CAP_DEFAULT); nothing
// while the model is off (the -X heapsize heap stays the only one). To gc_try_add_heap,
// at most the chip's heap so far (the charged areas): the area it adds is the chip's.
static bool reporting;  // inside gc_info (gc.mem_free, micropython.mem_info)

size_t gc_get_max_new_split(void) {
    pthread_mutex_lock(&lock);
    init();
    size_t n = state == 2 ? largest() : 0;
    if (!reporting && n > in_use[TAG_GC]) {
        n = in_use[TAG_GC];
    }
    pthread_mutex_unlock(&lock);
    return n;
}

void __real_gc_info(gc_info_t *info);

void __wrap_gc_info(gc_info_t *info) {
    reporting = true;
    __real_gc_info(info);
    reporting = false;
}

// mbedTLS's calloc and free (mbedtls_config_sim.h: MBEDTLS_PLATFORM_CALLOC_MACRO).
void *sim_ram_tls_calloc(size_t nmemb, size_t size) {
    if (size && nmemb > (size_t)-1 / 2 / size) {
        return NULL;
    }
    void *p = sim_ram_alloc(nmemb * size, TAG_TLS);
    if (p != NULL) {
        memset(p, 0, nmemb * size);
    }
    return p;
}

void sim_ram_tls_free(void *p) {
    sim_ram_give(p);
}

// --- threads ------------------------------------------------------------------------------
// ports/esp32/mpthreadport.c: a thread is a FreeRTOS task whose stack (the size asked, at
// least 4 KB; 5 KB if none) and TCB come from the IDF heap; the task is deleted, and
// both freed, when the thread's function returns. Creating fails as the port's does.

#define ESP32_THREAD_MIN_STACK (4 * 1024)
#define ESP32_THREAD_DEFAULT_STACK (ESP32_THREAD_MIN_STACK + 1024)
#define ESP32_TCB (352)  // sizeof(StaticTask_t) on the ESP32 (FreeRTOS SMP, IDF 5.2), about

typedef struct {
    void *(*entry)(void *);
    void *arg;
    void *stack;
} thread_start_t;

mp_uint_t __real_mp_thread_create(void *(*entry)(void *), void *arg, size_t *stack_size);

static void *thread_trampoline(void *p) {
    thread_start_t start = *(thread_start_t *)p;
    void *ret = start.entry(start.arg);
    sim_ram_give(start.stack);
    return ret;
}

mp_uint_t __wrap_mp_thread_create(void *(*entry)(void *), void *arg, size_t *stack_size) {
    size_t esp32_stack = *stack_size == 0 ? ESP32_THREAD_DEFAULT_STACK
        : *stack_size < ESP32_THREAD_MIN_STACK ? ESP32_THREAD_MIN_STACK : *stack_size;
    // On the GC heap: the port's thread list holds it as the thread's argument until the
    // thread ends, and the GC finds the real argument through it.
    thread_start_t *start = m_new_obj(thread_start_t);
    start->entry = entry;
    start->arg = arg;
    start->stack = sim_ram_alloc(esp32_stack + ESP32_TCB, TAG_C);
    if (start->stack == NULL) {
        mp_raise_msg(&mp_type_OSError, MP_ERROR_TEXT("can't create thread"));
    }
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_uint_t id = __real_mp_thread_create(thread_trampoline, start, stack_size);
        nlr_pop();
        return id;
    }
    sim_ram_give(start->stack);
    nlr_jump(nlr.ret_val);
}

// --- _simram: the Python side ------------------------------------------------------------

// take(n): n bytes of C heap for the simulated C side (WiFi, lwIP); a handle, or None
// when no region has room (the caller raises as its IDF function would).
static mp_obj_t simram_take(mp_obj_t n_in) {
    void *p = sim_ram_alloc(mp_obj_get_int(n_in), TAG_C);
    return p == NULL ? mp_const_none : mp_obj_new_int_from_uint((uintptr_t)p);
}
static MP_DEFINE_CONST_FUN_OBJ_1(simram_take_obj, simram_take);

static mp_obj_t simram_give(mp_obj_t h_in) {
    sim_ram_give((void *)(uintptr_t)mp_obj_get_int_truncated(h_in));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(simram_give_obj, simram_give);

// info(): esp32.idf_heap_info's list, one (total, free, largest free block, min free)
// per region; None while the model is off.
static mp_obj_t simram_info(void) {
    pthread_mutex_lock(&lock);
    init();
    if (state != 2) {
        pthread_mutex_unlock(&lock);
        return mp_const_none;
    }
    region_t copy[N_REGIONS];
    memcpy(copy, regions, sizeof(regions));
    pthread_mutex_unlock(&lock);
    mp_obj_t list = mp_obj_new_list(0, NULL);
    for (int i = 0; i < N_REGIONS; i++) {
        size_t big = copy[i].free > HEADER ? (copy[i].free - HEADER) & ~(size_t)3 : 0;
        mp_obj_t t[4] = {
            mp_obj_new_int_from_uint(copy[i].total), mp_obj_new_int_from_uint(copy[i].free),
            mp_obj_new_int_from_uint(big), mp_obj_new_int_from_uint(copy[i].min_free),
        };
        mp_obj_list_append(list, mp_obj_new_tuple(4, t));
    }
    return list;
}
static MP_DEFINE_CONST_FUN_OBJ_0(simram_info_obj, simram_info);

// use(): bytes held now and at most, (gc areas, mbedTLS, the rest of C), for ctl state.
static mp_obj_t simram_use(void) {
    pthread_mutex_lock(&lock);
    init();
    mp_obj_t t[6] = {
        mp_obj_new_int_from_uint(in_use[TAG_GC]), mp_obj_new_int_from_uint(peak[TAG_GC]),
        mp_obj_new_int_from_uint(in_use[TAG_TLS]), mp_obj_new_int_from_uint(peak[TAG_TLS]),
        mp_obj_new_int_from_uint(in_use[TAG_C]), mp_obj_new_int_from_uint(peak[TAG_C]),
    };
    pthread_mutex_unlock(&lock);
    return mp_obj_new_tuple(6, t);
}
static MP_DEFINE_CONST_FUN_OBJ_0(simram_use_obj, simram_use);

static const mp_rom_map_elem_t simram_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__simram) },
    { MP_ROM_QSTR(MP_QSTR_take), MP_ROM_PTR(&simram_take_obj) },
    { MP_ROM_QSTR(MP_QSTR_give), MP_ROM_PTR(&simram_give_obj) },
    { MP_ROM_QSTR(MP_QSTR_info), MP_ROM_PTR(&simram_info_obj) },
    { MP_ROM_QSTR(MP_QSTR_use), MP_ROM_PTR(&simram_use_obj) },
};
static MP_DEFINE_CONST_DICT(simram_globals, simram_globals_table);

const mp_obj_module_t mp_module_simram = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&simram_globals,
};

MP_REGISTER_MODULE(MP_QSTR__simram, mp_module_simram);
