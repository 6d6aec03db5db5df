# Typed values in the ESP32's NVS. A missing key reads as the default; a write that would
# not change the stored value touches no flash. Each namespace is opened once: the port's
# esp32.NVS never closes its IDF handle (no finaliser), so every NVS() made would hold
# some IDF heap until the next reset.
from esp32 import NVS

# check_esp_err raises OSError(-esp_err_t).
_NOT_FOUND = const(-0x1102)  # ESP_ERR_NVS_NOT_FOUND
_TOO_SMALL = const(-0x110C)  # ESP_ERR_NVS_INVALID_LENGTH
_FIRST_READ = const(64)
_MAX_BLOB = const(4000)  # NVS's limit for one string


_opened = {}  # namespace -> its esp32.NVS


class NVRAM:
    def __init__(self, namespace):
        nvs = _opened.get(namespace)
        if nvs is None:
            nvs = _opened[namespace] = NVS(namespace)
        self._nvs = nvs

    def get_int(self, key, default=None):
        try:
            return self._nvs.get_i32(key)
        except OSError as e:
            if e.errno != _NOT_FOUND:
                raise
            return default

    def set_int(self, key, value):
        if self.get_int(key) != value:
            self._nvs.set_i32(key, value)
            self._nvs.commit()

    def get_bytes(self, key, default=None):
        size = _FIRST_READ
        while True:
            buf = bytearray(size)
            try:
                return bytes(buf[: self._nvs.get_blob(key, buf)])
            except OSError as e:
                if e.errno == _NOT_FOUND:
                    return default
                if e.errno != _TOO_SMALL or size >= _MAX_BLOB:
                    raise
                size = min(size * 4, _MAX_BLOB)

    def set_bytes(self, key, value):
        value = bytes(value)
        if self.get_bytes(key) != value:
            self._nvs.set_blob(key, value)
            self._nvs.commit()

    def get_str(self, key, default=None):
        value = self.get_bytes(key)
        return default if value is None else value.decode()

    def set_str(self, key, value):
        self.set_bytes(key, value.encode())

    def erase(self, key):
        """Forget key; nothing to do when it is not there."""
        try:
            self._nvs.erase_key(key)
        except OSError as e:
            if e.errno != _NOT_FOUND:
                raise
            return
        self._nvs.commit()
