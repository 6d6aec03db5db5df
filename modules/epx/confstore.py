# config.txt and its candidates. A change is a candidate: stored whole (a temporary file
# renamed over the target: littlefs renames atomically), booted once on trial and kept only
# once MQTT is up on it; otherwise the next boot is back on config.txt and says why.
#     config.new   a candidate staged, not booted yet
#     config.try   the candidate on trial: found at boot, that trial failed
# Each step is one rename or remove, so a power cut at any point leaves config.txt whole,
# and at most one whole candidate that has not failed yet.
import os

from epx import config, crash, log, loop
from epx.nvram import NVRAM

# Minutes a candidate has to bring MQTT up. The value in force when the change is staged
# counts (kept in NVS), not the candidate's own.
TRIAL_MIN = config.key("configtrial", config.int_range(1, 1440), 5, "Config trial|min|5|A changed config not online by then is dropped; 1-1440")

NEW = "config.new"
TRY = "config.try"
_TMP = "config.tmp"
_NV_TRIAL = "conftrial"

trial = False  # this boot runs a candidate
reverted = False  # this boot dropped a candidate that failed
_timer = None


def write(path, text):
    """Replace path with text (bytes or str): after a power cut it holds the old text or
    the new, whole."""
    with open(_TMP, "wb") as f:
        f.write(text)
    os.rename(_TMP, path)


def store(text):
    """Check text as a whole config.txt; with no errors store it as the candidate the next
    boot tries. The errors (nothing stored when there are any)."""
    errs = config.check(text)
    if not errs:
        NVRAM("epx").set_int(_NV_TRIAL, TRIAL_MIN.value)
        write(NEW, text)
    return errs


def stage(text, why="config: a candidate to try"):
    """store(text) and reboot into the candidate; the errors when it was refused."""
    errs = store(text)
    if errs:
        return errs
    crash.reboot(why)


def staged():
    """Is a candidate waiting for its trial boot?"""
    return _exists(NEW)


def begin():
    """At boot, before config.load(): the file to load (a candidate, or config.txt)."""
    global trial, reverted
    _remove(_TMP)
    if _exists(NEW):
        os.rename(NEW, TRY)  # over a failed trial: the newest candidate is tried
        trial = True
        return TRY
    if _exists(TRY):
        _remove(TRY)
        reverted = True
    return config.FILE


def start_trial(fail):
    """On a trial boot: call fail(minutes) unless keep() comes within the trial time."""
    global _timer
    minutes = NVRAM("epx").get_int(_NV_TRIAL, TRIAL_MIN.value)
    _timer = loop.later(minutes * 60000, lambda: fail(minutes))


def keep():
    """The candidate brought MQTT up: it becomes config.txt. True when it did just now."""
    global trial
    if not trial:
        return False
    os.rename(TRY, config.FILE)
    trial = False
    if _timer is not None:
        _timer.cancel()
    log.info("config: candidate kept")
    return True


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass
