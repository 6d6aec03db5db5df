# Unit-test firmware of the epx core (loop, config, watchdog, nvram, log, app): tests run
# it with -c, without the host bootloader.
include("../../modules/epx/manifest.py")
