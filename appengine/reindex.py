"""`python -m appengine.reindex`: put every stored call in the recordings browser's calls index.

New calls are indexed as they change; run this once after upgrading from a version without the
index, so calls stored before it show in the list (dated by their first event or recording).
Safe to run again: it rewrites each call's summary from its call.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from shared.config.settings import Settings
from shared.flows.calls import reindex_calls
from shared.runtime.logs import configure_logging
from shared.runtime.services import Services


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m appengine.reindex", description=__doc__).parse_args(argv)
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_level)
    count = reindex_calls(Services(settings).store, time.time())
    sys.stdout.write(f"{count} call(s) in the index\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
