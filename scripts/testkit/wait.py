"""Polling for a condition in scripts' tests."""
import time


def wait_until(what, condition, timeout=30, interval=0.05):
    """Returns `condition()` once it is true; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
