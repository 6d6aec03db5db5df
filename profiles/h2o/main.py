import epx

print("epx", epx.VERSION)
