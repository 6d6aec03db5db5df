# uumqtt: the hardened MQTT 3.1.1 client.
metadata(description="MQTT 3.1.1 client on asyncio streams", version="0.1.0")
package("uumqtt", files=[
    "__init__.py",
    "errors.py",
    "packet.py",
    "reader.py",
    "client.py",
], base_path="..")
