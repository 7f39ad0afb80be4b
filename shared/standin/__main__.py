"""Command line of the Vonage stand-in: `python -m shared.standin call --audio file.wav`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from shared.logs import configure_logging
from shared.settings import Settings
from shared.standin.calls import DtmfPress, VonageStandin


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_env(os.environ)
    parser = argparse.ArgumentParser(prog="python -m shared.standin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    call = commands.add_parser("call", help="place a simulated inbound call")
    call.add_argument("--audio", type=Path, required=True, help="WAV file the caller 'says'")
    call.add_argument("--from", dest="from_", default="447700900123", help="caller number")
    call.add_argument("--to", default="447700900000", help="the tapedeck number called")
    call.add_argument("--fast", action="store_true", help="send audio as fast as possible, not in real time")
    call.add_argument("--dtmf", default="", help="keypresses as digit@second, e.g. 5@1.0,#@2.5")
    call.add_argument("--answer-url", default=f"{settings.public_url}/answer")
    call.add_argument("--event-url", default=f"{settings.public_url}/event")
    args = parser.parse_args(argv)
    configure_logging("WARNING")
    standin = VonageStandin(settings.vonage_signature_secret)
    try:
        report = standin.inbound_call(
            args.answer_url,
            args.event_url,
            args.audio,
            from_=args.from_,
            to=args.to,
            fast=args.fast,
            dtmf=DtmfPress.parse_list(args.dtmf),
        )
    except (OSError, ValueError) as err:
        sys.stderr.write(f"call failed: {err}\n")
        return 1
    out = sys.stdout
    out.write(f"conversation {report.conversation_uuid}\n")
    for text in report.talks:
        out.write(f"  talk: {text}\n")
    seconds = report.frames_sent * 0.02
    out.write(f"  streamed {report.bytes_sent} bytes in {report.frames_sent} frames ({seconds:.2f} s of audio)\n")
    out.write(f"  socket closed by {report.closed_by}\n")
    out.write(f"  webhooks: {', '.join(f'{k} {v}' for k, v in report.event_statuses.items())}\n")
    if settings.storage == "local":
        folder = settings.local_storage_dir / "calls" / report.conversation_uuid
        out.write(f"  stored in {folder}/ (audio.wav, call.json)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
