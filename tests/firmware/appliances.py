# Unit tests of the energy, weather and scale appliances' drivers and logic, run inside
# the host firmware against the device models (ports/unix/modules/sim/models).
include("../../modules/third/manifest.py", drivers=("pzem", "hdc1080", "bme280", "hx711"))
package("energy", files=["__init__.py", "meter.py", "days.py"], base_path="../../profiles/energy")
package("weather", files=["__init__.py", "station.py"], base_path="../../profiles/weather")
package("appliances")
module("fwunit.py")
package("scale", files=["__init__.py", "weigh.py", "sequence.py"], base_path="../../profiles/scale")
module("epx/netnow.py", base_path="../../modules")
module("epx/hmac.py", base_path="../../modules")
module("epx/replay.py", base_path="../../modules")
module("epx/nvram.py", base_path="../../modules")
module("epx/tz.py", base_path="../../modules")
module("epx/__init__.py", base_path="../../modules")
