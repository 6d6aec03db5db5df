import sys

# Firmware code comes from the image only: a stray .py on the filesystem shadows nothing.
sys.path[:] = [".frozen", ""]
