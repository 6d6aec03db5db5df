module("boot.py")
module("main.py")
package("relay")
# Kept outputs (RTC memory and NVS) are the switch profile's.
package("switch", files=["__init__.py", "keep.py"], base_path="../switch")
