# Test firmware for the simulated ESP32 itself: the port modules (always frozen into host
# firmware) and a probe application whose main.py runs the scenario a test names.
module("main.py", base_path="simcheck")
package("simcheck", files=["__init__.py"], base_path=".")
