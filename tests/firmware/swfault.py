# The switch firmware plus test-only fault injection (faults/faults.py).
include("../../modules/epx/manifest.py")
include("../../modules/third/manifest.py", drivers=("shiftreg",))
module("boot.py", base_path="../../profiles/switch")
package("switch", base_path="../../profiles/switch")
module("faults.py", base_path="faults")
module("main.py", base_path="swfault")
