# The radio's country: the `country` key (an ESP-IDF country code; "01", world safe mode,
# is ESP-IDF's default) and the 2.4 GHz channels it allows, checked with every channel key
# when config.txt is read. The radio's own errors come from the port's esp_exceptions as
# OSError or, for codes it does not name (ESP_ERR_INVALID_ARG), RuntimeError.
import network

from epx import config

ERRORS = (OSError, RuntimeError)

# esp_wifi.h, esp_wifi_set_country_code: the codes ESP-IDF v5.2 knows
CODES = ("01", "AT", "AU", "BE", "BG", "BR", "CA", "CH", "CN", "CY", "CZ", "DE", "DK", "EE",
         "ES", "FI", "FR", "GB", "GR", "HK", "HR", "HU", "IE", "IN", "IS", "IT", "JP", "KR",
         "LI", "LT", "LU", "LV", "MT", "MX", "NL", "NO", "NZ", "PL", "PT", "RO", "SE", "SI",
         "SK", "TW", "US")


def channels(code):
    """The highest channel `code` allows (from 1): world safe mode and the FCC's 11,
    Japan 14, the rest 13."""
    return 14 if code == "JP" else 11 if code in ("01", "US", "CA", "TW") else 13


def _country(text):
    code = text.strip().upper()
    if code not in CODES:
        raise ValueError("%r is not an ESP-IDF country code (01, DE, FR, GB, JP, US, ...)" % text)
    return code


COUNTRY = config.key("country", _country, "01", "WiFi country||DE|Its channels: 01 (anywhere) and US 1-11, JP 1-14, most others 1-13")


def channel_key(name, *default, doc=""):
    """Declare a WiFi channel key (1-14), checked against `country`."""
    k = config.key(name, config.int_range(1, 14), *default, doc=doc)
    config.rule(lambda value: _check(name, value))
    return k


def _check(name, value):
    channel, code = value(name), value("country", "01")
    if channel is not None and channel > channels(code):
        return name, "channel %d is not allowed in country %s (1-%d; see the country key)" % (
            channel, code, channels(code))
    return None


def set_country():
    """Tell the port the country (the v1.25 ESP32 port only stores it: ESP-IDF keeps "01"
    until an access point's beacon names another)."""
    network.country(COUNTRY.value)
