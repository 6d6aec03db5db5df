module("boot.py")
module("main.py")
package("bare")
