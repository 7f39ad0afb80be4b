"""`python -m appengine.sweep`: run the sweep once, by hand.

Deployed, Cloud Scheduler runs it every SWEEP_INTERVAL (rounded up to whole minutes) through the
`tasks` function; `nox -s serve`'s embedded queue runs it every SWEEP_INTERVAL. One run settles up
to SWEEP_BATCH waiting calls and runs the retries asked for on the Problems page; the webhooks it
settles go through the task queue like any other delivery.
"""

from __future__ import annotations

import argparse
import sys
import time

from shared.flows.sweep import run_sweep
from shared.runtime.services import services_from_env


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m appengine.sweep", description=__doc__).parse_args(argv)
    report = run_sweep(services_from_env(), time.time())
    sys.stdout.write(f"sweep: {report.describe()}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
