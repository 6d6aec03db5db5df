# Test firmware for the OTA building blocks (image check, HTTP client, HMAC, partition
# writer), run as scripts without an appliance.
package("epx", files=["__init__.py", "appimage.py", "config.py", "hmac.py", "http.py", "loop.py",
                     "otawrite.py", "watchdog.py"],
        base_path="../../modules")
