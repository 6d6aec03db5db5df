# Board facts product code reads instead of hard-coding pins.
NAME = "EPX_WT32_ETH01"
# network.LAN arguments of the LAN8720 PHY (pin numbers; PHY and clock mode by name).
LAN = {"mdc": 23, "mdio": 18, "power": 16, "phy_type": "PHY_LAN8720", "phy_addr": 1,
       "ref_clk": 0, "ref_clk_mode": "IN"}
