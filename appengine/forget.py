"""`python -m appengine.forget --number +447700900123`: erase every call and PIN prompt transaction
in which a number took part, everywhere tapedeck keeps them, as the retention sweep does.

It runs to the end at once (the recordings browser's Forget asks the sweep to do the same, a batch
a run). Run again after a crash, it goes on where it stopped; run again after it finished, it
changes nothing. Its record, `erasures/forgotten/<digest>.json`, says who asked, when and how many
objects of each kind were erased, never the number. Calls under legal hold are kept, and calls
not over yet are erased by a later sweep.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time

from shared.core.erasure import read_number
from shared.core.errors import BadRequest
from shared.flows.erase import check_forgettable, forget_number
from shared.runtime.services import services_from_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appengine.forget", description=__doc__)
    parser.add_argument("--number", required=True, help="the phone number, in E.164 form (+447700900123)")
    parser.add_argument("--by", default=None, help="who asks, for the record (default: this machine's user)")
    args = parser.parse_args(argv)
    services = services_from_env()
    try:
        number = read_number(args.number)
        check_forgettable(services.settings, number)
    except BadRequest as err:
        parser.error(str(err))
    report = forget_number(services, number, args.by or f"{getpass.getuser()} (command line)", time.time())
    sys.stdout.write(f"{report.describe()}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
