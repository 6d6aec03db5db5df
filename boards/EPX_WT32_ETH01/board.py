# Board facts product code reads instead of hard-coding pins.
NAME = "EPX_WT32_ETH01"
# network.LAN arguments of the LAN8720 PHY (pin numbers; PHY and clock mode by name).
LAN = {"mdc": 23, "mdio": 18, "power": 16, "phy_type": "PHY_LAN8720", "phy_addr": 1,
       "ref_clk": 0, "ref_clk_mode": "IN"}
# GPIOs the board gives to something else, with what (epx.pins refuses them): the EMAC's
# RMII pads, wired to the PHY whether or not the firmware uses Ethernet.
RESERVED = {
    0: "Ethernet REF_CLK", 16: "Ethernet PHY power", 18: "Ethernet MDIO",
    19: "Ethernet TXD0", 21: "Ethernet TX_EN", 22: "Ethernet TXD1", 23: "Ethernet MDC",
    25: "Ethernet RXD0", 26: "Ethernet RXD1", 27: "Ethernet CRS_DV",
}
# The default GPIO of each pin key (epx.pins), among the pins its headers bring out
# (2, 4, 5, 12, 14, 15, 17, 32, 33, 35, 36, 39).
PINS = {
    "sda": 33, "scl": 32,
    "flowpin": 14,
    "relays": (4, 14, 15, 17),
    "uarttx": 17, "uartrx": 5,
    "hx711_dout": 32, "hx711_sck": 33,
}
