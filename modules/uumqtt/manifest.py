# uumqtt: the hardened MQTT 3.1.1 client.
package("uumqtt", files=[
    "__init__.py",
    "errors.py",
    "packet.py",
    "reader.py",
    "client.py",
], base_path="..")
