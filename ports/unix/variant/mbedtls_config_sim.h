// mbedtls as the unix port configures it (ports/unix/mbedtls), with its time as the ESP32
// port's (ports/esp32/boards/sdkconfig.base: CONFIG_MBEDTLS_HAVE_TIME, _HAVE_TIME_DATE,
// _PLATFORM_TIME_ALT): certificate dates are checked against the function
// mbedtls_platform_set_time() installs, the device's wall clock (simrtc.c).
#include "mbedtls/mbedtls_config_port.h"
#define MBEDTLS_PLATFORM_TIME_ALT

// mbedTLS allocates from the ESP32's RAM as the port's does (sdkconfig.base:
// CONFIG_MBEDTLS_DEFAULT_MEM_ALLOC, IDF's heap), the simulator's model of it (simram.c).
// The record buffers are already the ESP32's (extmod/mbedtls/mbedtls_config_common.h:
// 16384 bytes in, 4096 out; sdkconfig.base: CONFIG_MBEDTLS_ASYMMETRIC_CONTENT_LEN=y with
// ESP-IDF's defaults, the same).
#include <stddef.h>
void *sim_ram_tls_calloc(size_t nmemb, size_t size);
void sim_ram_tls_free(void *ptr);
#define MBEDTLS_PLATFORM_MEMORY
#define MBEDTLS_PLATFORM_CALLOC_MACRO sim_ram_tls_calloc
#define MBEDTLS_PLATFORM_FREE_MACRO sim_ram_tls_free
