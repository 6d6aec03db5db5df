# energy: mains meter (PZEM-004T v3 on UART2, Modbus-RTU): V, A, W, power factor, Wh per hour.
include("../modules/epx/manifest.py")
include("../modules/third/manifest.py", drivers=("pzem",))
include("../profiles/energy/manifest.py")
