// mbedtls as the unix port configures it (ports/unix/mbedtls), with its time as the ESP32
// port's (ports/esp32/boards/sdkconfig.base: CONFIG_MBEDTLS_HAVE_TIME, _HAVE_TIME_DATE,
// _PLATFORM_TIME_ALT): certificate dates are checked against the function
// mbedtls_platform_set_time() installs, the device's wall clock (simrtc.c).
#include "mbedtls/mbedtls_config_port.h"
#define MBEDTLS_PLATFORM_TIME_ALT
