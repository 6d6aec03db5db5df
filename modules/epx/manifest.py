# The epx core. Profiles that talk ESP-NOW add netnow=True.
options.defaults(netnow=False)
metadata(description="epx: reliable appliances on MicroPython", version="0.1.0")
package("epx", files=[
    "__init__.py",
    "pulse.py",
], base_path="..")
if options.netnow:
    package("epx", files=["netnow.py"], base_path="..")
