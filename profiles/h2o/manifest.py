module("boot.py")
module("main.py")
package("h2o")
