"""`python -m appengine.recover`: turn the parts of streams that died into WAVs.

Run it on a schedule (or by hand after a crash); a stream still receiving audio is left alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from shared.config.settings import Settings
from shared.core.tasks import Retry
from shared.flows.stitching import stitch_recording
from shared.flows.stream_audio import recover_recordings
from shared.runtime.logs import configure_logging
from shared.runtime.services import Services


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appengine.recover", description=__doc__)
    parser.add_argument(
        "--min-age",
        type=float,
        default=120.0,
        help="seconds since a stream's last part before it counts as abandoned (default 120)",
    )
    args = parser.parse_args(argv)
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_level)
    store = Services(settings).store
    recovered = recover_recordings(store, time.time(), args.min_age)
    for summary in recovered:
        sys.stdout.write(f"recovered {summary.object_key}: {summary.bytes} bytes, {summary.duration:.2f} s\n")
    sys.stdout.write(f"{len(recovered)} recording(s) recovered\n")
    # A call recorded in several sessions, one of them recovered, is stitched now that all are stored.
    for conversation_uuid in sorted({summary.object_key.split("/")[1] for summary in recovered}):
        try:
            outcome = stitch_recording(store, conversation_uuid, time.time())
        except Retry as err:
            outcome = str(err)
        if outcome == "stitched":
            sys.stdout.write(f"stitched calls/{conversation_uuid}/recording.wav\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
