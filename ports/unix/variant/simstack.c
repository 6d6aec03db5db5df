// The C stack the simulated device's Python may use. The unix port allows 40000 bytes on
// a 32-bit host (main.c); the simulator calls back into Python where the ESP32 port stays
// in C (littlefs reads through the Python esp32.Partition, the simulated machine and
// socket), so imports and I/O run deeper here than on the device: it keeps the limit the
// 64-bit build had. docs/port-parity.md lists it among the build's differences.

#include <stddef.h>

#define EPX_SIM_C_STACK (80000)

void __real_mp_cstack_init_with_sp_here(size_t stack_size);

void __wrap_mp_cstack_init_with_sp_here(size_t stack_size) {
    __real_mp_cstack_init_with_sp_here(stack_size < EPX_SIM_C_STACK ? EPX_SIM_C_STACK : stack_size);
}
