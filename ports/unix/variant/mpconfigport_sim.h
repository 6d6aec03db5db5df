// The unix port's configuration (MP_CONFIGFILE, set in mpconfigvariant.mk) with the ESP32
// port's epoch: ports/esp32 leaves MICROPY_EPOCH_IS_1970 unset, so time.time(), localtime(),
// mktime() and machine.RTC count seconds from 2000-01-01. ports/unix/mpconfigport.h sets it
// after the variant's header, hence this wrapper.
#include <mpconfigport.h>
#undef MICROPY_EPOCH_IS_1970
