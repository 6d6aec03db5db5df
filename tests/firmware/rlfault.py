# The relay firmware plus test-only fault injection (faults/faults.py).
include("../../modules/epx/manifest.py")
include("../../modules/third/manifest.py", drivers=("ssd1306",))
module("boot.py", base_path="../../profiles/relay")
package("relay", base_path="../../profiles/relay")
package("switch", files=["__init__.py", "keep.py"], base_path="../../profiles/switch")
module("faults.py", base_path="faults")
module("main.py", base_path="rlfault")
