"""`python -m appengine.sweep`: run the sweep once, by hand.

Deployed, Cloud Scheduler runs it every SWEEP_INTERVAL (rounded up to whole minutes) through the
`tasks` function; `nox -s serve`'s embedded queue runs it every SWEEP_INTERVAL. One run settles up
to SWEEP_BATCH waiting calls and runs the retries asked for on the Problems page (the webhooks it
settles go through the task queue like any other delivery), erases up to SWEEP_BATCH calls past
their retention, and goes on with each request to forget a number.
"""

from __future__ import annotations

import argparse
import sys
import time

from shared.core.times import instant
from shared.flows.sweep import run_sweep
from shared.runtime.services import services_from_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appengine.sweep", description=__doc__)
    parser.add_argument(
        "--as-of",
        type=_moment,
        help="judge retention as of this UTC time (ISO 8601, e.g. 2027-06-01 or 2027-06-01T12:00:00Z): "
        "calls past their retention by then are erased now",
    )
    args = parser.parse_args(argv)
    report = run_sweep(services_from_env(), time.time(), as_of=args.as_of)
    sys.stdout.write(f"sweep: {report.describe()}\n")
    return 0


def _moment(text: str) -> float:
    moment = instant(text)
    if moment is None:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}")
    return moment


if __name__ == "__main__":
    sys.exit(main())
