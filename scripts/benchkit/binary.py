"""The built binary a benchmark runs, the same way in every benchmark script.

    parser = argparse.ArgumentParser()
    binary.add_argument(parser)
    options = parser.parse_args()
    built = binary.prepare(options.binary, work, companions=["-bench"])
    built.path      # the copy to run
    built.name      # how the report names it: relative to the repository when inside it
    built.built     # when it was built (the file's time, UTC)

The binary is copied into the run's folder (with its companions, such as
`payment-status-bench` beside `payment-status`), so that a build finishing
meanwhile does not change what runs under the measurement.
"""
import os
import shutil
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT = os.path.join(ROOT, ".build/release/payment-status")


class Built:
    def __init__(self, path, name, built):
        self.path, self.name, self.built = path, name, built


def add_argument(parser):
    parser.add_argument("--binary", default=DEFAULT,
                        help="the payment-status binary to measure (default: the release build)")


def display_name(path):
    """The path relative to the repository when inside it, else absolute (never `../…`)."""
    path = os.path.abspath(path)
    return os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path


def prepare(given, work, companions=()):
    """Checks that `given` (and `given + suffix` for each companion) is built, and copies them into `work`."""
    given = os.path.abspath(given)
    wanted = [given] + [given + suffix for suffix in companions]
    missing = [path for path in wanted if not os.access(path, os.X_OK)]
    if missing:
        products = ["payment-status"] + ["payment-status" + suffix for suffix in companions]
        raise SystemExit(f"{', '.join(missing)} must be built first: "
                         + " && ".join(f"swift build -c release --product {product}" for product in products))
    copy = os.path.join(work, os.path.basename(given))
    for path in wanted:
        shutil.copy2(path, copy + path[len(given):])
    return Built(copy, display_name(given), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(given))))
