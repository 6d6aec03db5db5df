module("boot.py")
module("main.py")
package("scale_manager")
