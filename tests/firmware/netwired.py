# netcheck for a wired board: tests build it with board EPX_WT32_ETH01 (LAN8720 PHY).
include("netcheck.py")
