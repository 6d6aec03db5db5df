"""esptool's own reading of images, for tests that check what epx wrote."""

import subprocess
import sys


def image_info(path):
    """esptool's own reading of an app image: {field: value} of its report."""
    done = subprocess.run([sys.executable, "-m", "esptool", "image-info", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
