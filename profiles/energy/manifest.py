module("boot.py")
module("main.py")
package("energy")
module("epx/tz.py", base_path="../../modules")  # the local time zone (the core has no use for it)
