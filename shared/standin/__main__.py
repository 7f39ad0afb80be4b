"""Command line of the Vonage stand-in.

python -m shared.standin call --audio file.wav [--to N] [--from N] [--fast] [--dtmf 5@1.0]
                                [--other-party file.wav ...]   # what each connected party says
python -m shared.standin setup data      # dev application key and demo routes, once
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO, TypeVar

from shared.logs import configure_logging
from shared.ports import BlobStore
from shared.services import build_services
from shared.settings import Settings
from shared.standin.api import StandinApi, make_application_key, public_key_of
from shared.standin.calls import CallReport, DtmfPress, VonageStandin

DEMO_ROUTES = """\
# Demo mailboxes for the local platform (ROUTES_FILE). Numbers not listed get DEFAULT_FLOW.
"447700900001":
  flow: voicemail
  owner: Sam
  recipients: ["447700900111"]
  language: en-US
  max_seconds: 120
"447700900002":
  flow: conversation
  connect: ["447700900200"]
  caller_id: "447700900002"
  labels: [Caller, Agent]
  notice: This call is recorded for quality and training.
  language: en-US
  format: mp3
  recipients: ["447700900111"]
"""
_PAGE_WAIT = 60.0
_TRANSCRIPT_WAIT = 180.0
_POLL_SECONDS = 0.5

T = TypeVar("T")


def setup(folder: Path, out: TextIO) -> None:
    """Create the stand-in application key and the demo routes file if they are missing."""
    make_application_key(folder / ".standin" / "application.pem")
    routes = folder / "routes.yaml"
    if not routes.exists():
        routes.parent.mkdir(parents=True, exist_ok=True)
        routes.write_text(DEMO_ROUTES, encoding="utf-8")
    out.write(f"stand-in application key: {folder / '.standin' / 'application.pem'}\nroutes: {routes}\n")


def _print_report(report: CallReport, out: TextIO) -> None:
    out.write(f"conversation {report.conversation_uuid}\n")
    for text in report.talks:
        out.write(f"  talk: {text}\n")
    if report.frames_sent:
        seconds = report.frames_sent * 0.02
        out.write(f"  streamed {report.bytes_sent} bytes in {report.frames_sent} frames ({seconds:.2f} s of audio)\n")
        out.write(f"  socket closed by {report.closed_by}\n")
    for number, status in report.party_statuses.items():
        out.write(f"  party {number}: {status}\n")
    if report.recording_uuid:
        layout = f"{report.recording_channels} channel {report.recording_format}"
        out.write(f"  recorded {report.recording_bytes} bytes ({layout}), ended by {report.recording_ended_by}\n")
    out.write(f"  webhooks: {', '.join(f'{k} {v}' for k, v in report.event_statuses.items())}\n")


def _wait_for(found: Callable[[], T | None], timeout: float) -> T | None:
    """Poll `found` until it returns something, or give up after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = found()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(_POLL_SECONDS)


def _print_transcript(store: BlobStore, report: CallReport, out: TextIO) -> bool:
    """Wait for the recorded conversation's transcript and print it; False if none came."""
    blob = _wait_for(lambda: store.read(f"calls/{report.conversation_uuid}/transcript.txt"), _TRANSCRIPT_WAIT)
    if blob is None:
        out.write(f"  no transcript within {_TRANSCRIPT_WAIT:.0f} s\n")
        return False
    out.write(f"  transcript:\n\n{blob.data.decode().rstrip()}\n\n")
    return True


def _print_pages(store: BlobStore, api: StandinApi, report: CallReport, out: TextIO) -> None:
    """Wait for the recording's SMS pages to come out, from the outbox or the stand-in's SMS API."""

    def pages() -> list[Any]:
        outbox = (store.read(info.key) for info in store.list(f"outbox/{report.recording_uuid}"))
        return [json.loads(blob.data) for blob in outbox if blob is not None] + list(api.sms)

    sent = _wait_for(pages, _PAGE_WAIT)
    if not sent:
        out.write(f"  no page within {_PAGE_WAIT:.0f} s\n")
    for page in sent or []:
        out.write(f"  page to {page['to']}:\n\n{page['text']}\n\n")


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_env(os.environ)
    parser = argparse.ArgumentParser(prog="python -m shared.standin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    call = commands.add_parser("call", help="place a simulated inbound call")
    call.add_argument("--audio", type=Path, required=True, help="WAV file the caller 'says'")
    call.add_argument("--from", dest="from_", default="447700900123", help="caller number ('' for withheld)")
    call.add_argument("--to", default="447700900000", help="the tapedeck number called")
    call.add_argument("--fast", action="store_true", help="send audio as fast as possible, not in real time")
    call.add_argument("--dtmf", default="", help="keypresses as digit@second, e.g. 5@1.0,#@2.5")
    call.add_argument(
        "--other-party",
        dest="other_parties",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="WAV file the party reached by the next phone connect says (repeat per party)",
    )
    call.add_argument("--webhook-copies", type=int, default=1, help="deliver each recording webhook this often")
    call.add_argument("--answer-url", default=f"{settings.public_url}/answer")
    call.add_argument("--event-url", default=f"{settings.public_url}/event")
    prepare = commands.add_parser("setup", help="create the dev application key and demo routes")
    prepare.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    configure_logging("WARNING")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if args.command == "setup":
        setup(args.folder, sys.stdout)
        return 0
    key = settings.vonage_private_key
    api = StandinApi(public_key_of(key.encode()) if key else None)
    host, _, port = settings.vonage_api_host.partition(":")
    try:
        with api.serving(host, int(port or 0)) as base:
            standin = VonageStandin(
                settings.vonage_signature_secret, api=api, api_base=base, webhook_copies=args.webhook_copies
            )
            report = standin.inbound_call(
                args.answer_url,
                args.event_url,
                args.audio,
                from_=args.from_,
                to=args.to,
                fast=args.fast,
                dtmf=DtmfPress.parse_list(args.dtmf),
                other_parties=args.other_parties,
            )
            _print_report(report, sys.stdout)
            if report.recording_uuid:
                store = build_services(settings).store
                split = report.recording_channels > 1
                if not split or _print_transcript(store, report, sys.stdout):
                    _print_pages(store, api, report, sys.stdout)
    except (OSError, ValueError) as err:
        sys.stderr.write(f"call failed: {err}\n")
        return 1
    if settings.storage == "local":
        folder = settings.local_storage_dir / "calls" / report.conversation_uuid
        sys.stdout.write(f"  stored in {folder}/\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
