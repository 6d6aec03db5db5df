from epx.version import VERSION, PROFILE, BOARD
