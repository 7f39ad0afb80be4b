"""Command line of the Vonage stand-in.

python -m tools.standin call --audio file.wav [--to N] [--from N] [--fast] [--dtmf 5@1.0]
                                [--other-party file.wav ...]   # what each connected party says
                                [--vonage-transcript file.json]  # what Vonage's transcription says
python -m tools.standin prompt --to N --pin 1234 --dtmf 1111,1234 [--outcome busy] [--legacy-dtmf]
                                # ask tapedeck's /call for a PIN prompt call, play the person called
Both sign webhooks with VONAGE_SIGNATURE_SECRET when it is set [--unsigned-first] [--get-signing added].
python -m tools.standin setup data      # dev application key, TLS certificate and demo routes, once
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

import requests

from shared.config.settings import Settings
from shared.core.ports import BlobStore
from shared.core.signatures import API_KEY_HEADER
from shared.runtime.logs import configure_logging
from shared.runtime.services import Services
from tools.standin.api import StandinApi, ensure_tls_files, make_application_key, public_key_of, serve_in_thread
from tools.standin.inbound_calls import CallReport, DtmfPress, VonageStandin
from tools.standin.outbound import OUTCOMES, CalleeScript, OutboundReport
from tools.standin.receiver import CallbackReceiver, Delivery
from tools.standin.webhooks import QUERY_READINGS, WebhookSigning

DEMO_ROUTES = """\
# Demo mailboxes for the local platform (ROUTES_FILE). Numbers not listed get DEFAULT_FLOW.
"447700900001":
  flow: voicemail
  announcement: Calls to this number are recorded and transcribed.
  owner: Sam
  recipients: ["447700900111"]
  language: en-US
  max_seconds: 120
  redact: [card, phone, email]
  retention_days: 30
"447700900003":
  flow: voicemail
  capture: stream
  announcement: Calls to this number are recorded and transcribed as you speak.
  owner: Sam
  recipients: ["447700900111"]
  language: en-US
  max_seconds: 120
"447700900002":
  flow: conversation
  connect: ["447700900200"]
  caller_id: "447700900002"
  labels: [Caller, Agent]
  announcement: This call is recorded for quality and training.
  language: en-US
  format: mp3
  recipients: ["447700900111"]
  retention_days: 90
"447700900005":
  flow: voicemail
  engine: vonage
  announcement: Calls to this number are recorded and transcribed by Vonage.
  owner: Sam
  recipients: ["447700900111"]
  language: en-US
  max_seconds: 120
"""
_PAGE_WAIT = 60.0
_TRANSCRIPT_WAIT = 180.0
_POLL_SECONDS = 0.5
_PROMPT_WAIT = 60.0

T = TypeVar("T")


def setup(folder: Path, out: TextIO) -> None:
    """Create the stand-in application key, its API's certificate and the demo routes file if missing."""
    make_application_key(folder / ".standin" / "application.pem")
    cert, _ = ensure_tls_files(folder / ".standin")
    routes = folder / "routes.yaml"
    if not routes.exists():
        routes.parent.mkdir(parents=True, exist_ok=True)
        routes.write_text(DEMO_ROUTES, encoding="utf-8")
    out.write(f"stand-in application key: {folder / '.standin' / 'application.pem'}\n")
    out.write(f"stand-in API certificate: {cert} (trusted through {cert.parent / 'ca-bundle.pem'})\nroutes: {routes}\n")


def _print_report(report: CallReport, out: TextIO) -> None:
    out.write(f"conversation {report.conversation_uuid}\n")
    for text in report.talks:
        out.write(f"  talk: {text}\n")
    if report.frames_sent:
        seconds = report.frames_sent * 0.02
        out.write(f"  streamed {report.bytes_sent} bytes in {report.frames_sent} frames ({seconds:.2f} s of audio)\n")
        out.write(f"  socket closed by {report.closed_by}\n")
    if len(report.sockets) > 1:
        lost = [0.0, *report.lost_seconds()]
        for socket, before in zip(report.sockets, lost, strict=True):
            code = f" ({socket.close_code})" if socket.close_code else ""
            gap = f", {before * 1000:.0f} ms lost before it" if socket is not report.sockets[0] else ""
            out.write(
                f"  socket leg {socket.leg}: {socket.frames_sent * 0.02:.2f} s of audio from "
                f"{socket.first_frame * 0.02:.2f} s{gap}, closed by {socket.closed_by}{code}\n"
            )
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


def _print_heard(report: CallReport, out: TextIO) -> None:
    """What tapedeck played back over the socket (a live voicemail's beep): its pitch and length."""
    import numpy as np

    rate = report.stream_rate or 16000
    samples = np.frombuffer(report.heard, "<i2").astype(np.float64)
    pitch = np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(np.abs(np.fft.rfft(samples))))]
    after = f", {report.heard_at:.2f} s after the socket opened" if report.heard_at is not None else ""
    out.write(f"  heard from tapedeck: {len(samples) / rate:.2f} s of a {pitch:.0f} Hz tone{after}\n")


def _print_live_pages(store: BlobStore, api: StandinApi, report: CallReport, out: TextIO) -> None:
    """Wait for a live voicemail's pages, and say how long after the hang-up each went out."""

    def pages() -> list[Any]:
        outbox = (store.read(info.key) for info in store.list("outbox/live-"))
        sent = [json.loads(blob.data) for blob in outbox if blob is not None]
        ended = report.socket_closed_at or 0.0
        return [page for page in sent if page.get("sent_at", 0) >= ended] + list(api.sms)

    sent = _wait_for(pages, _PAGE_WAIT)
    if not sent:
        out.write(f"  no page within {_PAGE_WAIT:.0f} s\n")
    for page in sent or []:
        after = page.get("sent_at", 0) - (report.socket_closed_at or 0)
        out.write(f"  page to {page['to']}, {after:.2f} s after the hang-up:\n\n{page['text']}\n\n")


def _print_delivery(delivery: Delivery, out: TextIO) -> None:
    signature = "verified" if delivery.signature_valid else "NOT verified"
    content = delivery.json if delivery.json is not None else delivery.fields
    # One write per delivery: it comes from the receiver's thread while the call is printed.
    out.write(
        f"callback {delivery.method} {delivery.path}: answered {delivery.answered}, signature {signature}\n"
        f"  {json.dumps(content, sort_keys=True)}\n"
    )


def _print_outbound(report: OutboundReport, out: TextIO) -> None:
    lines = [f"call {report.uuid} to {report.to} from {report.from_} ({report.conversation_uuid})"]
    lines += [f"  talk: {text}" for text in report.talks]
    lines += [f"  typed {d or '(nothing, timed out)'}: input webhook answered {s}" for d, s in report.inputs]
    lines.append(f"  events: {', '.join(f'{status} {http}' for status, http in report.events)}")
    if report.error:
        lines.append(f"  error: {report.error}")
    out.write("\n".join(lines) + "\n")


def prompt(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Ask tapedeck's /call for a PIN prompt call, play the callee as scripted, and wait for the callback."""
    # Settings keeps neither as given (a missing callback secret is made up), so read them as set.
    api_key = os.environ.get("PROMPT_API_KEY", "")
    callback_secret = os.environ.get("CALLBACK_SECRET", "")
    if not callback_secret:
        out.write("warning: CALLBACK_SECRET is not set, so the callback's signature cannot verify\n")
    key = settings.vonage.private_key
    api = StandinApi(public_key_of(key.encode()) if key else None, signing=_signing(args, settings))
    api.scripts[args.to] = _callee_script(args)
    receiver = CallbackReceiver(callback_secret, on_delivery=lambda delivery: _print_delivery(delivery, out))
    host, _, port = settings.vonage.api_host.partition(":")
    tls = ensure_tls_files(args.folder / ".standin", host)
    no_call_hint = (
        f"hint: no call reached the stand-in; tapedeck needs VONAGE_API_HOST={settings.vonage.api_host} "
        f"and REQUESTS_CA_BUNDLE={tls[0].parent / 'ca-bundle.pem'}\n"
    )
    with (
        api.serving(host, int(port or 443), tls=tls),
        serve_in_thread(receiver.app(), "127.0.0.1", 0) as callback_url,
    ):
        headers = {API_KEY_HEADER: api_key} if api_key else {}
        response = requests.post(args.url, json=_prompt_body(args, callback_url), headers=headers, timeout=30)
        out.write(f"tapedeck answered {response.status_code}: {response.text.strip()}\n")
        if not response.ok:
            if not api_key:
                out.write("hint: PROMPT_API_KEY is not set, so no API key was sent\n")
            elif response.status_code >= 500 and not api.outbound:
                out.write(no_call_hint)
            return 1
        callback = _wait_for_callback(api, receiver, no_call_hint, out)
    if callback is None:
        return 1
    content = callback.json if callback.json is not None else callback.fields
    out.write(f"callback received by {callback.method}: {json.dumps(content, sort_keys=True)}\n")
    out.write(f"  signature verified: {'yes' if callback.signature_valid else 'no'}\n")
    return 0


def _callee_script(args: argparse.Namespace) -> CalleeScript:
    """How the person called behaves, from the command line."""
    return CalleeScript(
        outcome=args.outcome,
        dtmf=CalleeScript.parse_dtmf(args.dtmf),
        legacy_dtmf=args.legacy_dtmf,
        webhook_copies=args.webhook_copies,
        completed_first=args.completed_first,
        ring_seconds=args.ring_seconds,
    )


def _prompt_body(args: argparse.Namespace, callback_url: str) -> dict[str, Any]:
    """The request to tapedeck's /call, calling back to the local receiver."""
    body: dict[str, Any] = {
        "to": args.to,
        "from": args.from_,
        "text": args.text,
        "pin_code": args.pin,
        "callback": f"{callback_url}/callback",
        "callback_method": args.method,
        "bye_text": args.bye_text,
        "failed_text": args.failed_text,
    }
    if args.max_attempts is not None:
        body["max_attempts"] = args.max_attempts
    return body


def _wait_for_callback(api: StandinApi, receiver: CallbackReceiver, no_call_hint: str, out: TextIO) -> Delivery | None:
    """Print the call the stand-in played, then return the first callback accepted (None if none came)."""
    deadline = time.monotonic() + _PROMPT_WAIT
    try:
        _print_outbound(api.wait_for_call(timeout=_PROMPT_WAIT), out)
    except TimeoutError as err:
        out.write(f"{err}\n" + ("" if api.outbound else no_call_hint))
    try:
        (callback, *_) = receiver.wait(1, timeout=max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        out.write(f"no callback accepted within {_PROMPT_WAIT:.0f} s\n")
        if any(not delivery.signature_valid for delivery in receiver.deliveries):
            out.write("  its signature did not verify: is CALLBACK_SECRET the same here and in tapedeck?\n")
        return None
    return callback


def _signing(args: argparse.Namespace, settings: Settings) -> WebhookSigning:
    """How webhooks are signed: with VONAGE_SIGNATURE_SECRET, as the command line chose."""
    return WebhookSigning(
        settings.vonage.signature_secret, query_reading=args.get_signing, unsigned_first=args.unsigned_first
    )


def _signing_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--unsigned-first",
        action="store_true",
        help="send each webhook unsigned first, then signed when answered 5xx (as Vonage does after an error)",
    )
    parser.add_argument(
        "--get-signing",
        choices=QUERY_READINGS,
        default="all",
        help="what a GET webhook's signature covers: every query parameter, or only those Vonage added",
    )


def _prompt_arguments(parser: argparse.ArgumentParser, settings: Settings) -> None:
    _signing_arguments(parser)
    parser.add_argument("--to", required=True, help="the number tapedeck calls")
    parser.add_argument("--pin", required=True, help="the PIN the person must type")
    parser.add_argument("--dtmf", default="", help="keys typed at each input, e.g. 1111,-,1234 ('-' or '': none)")
    parser.add_argument("--from", dest="from_", default="447700900002", help="the caller ID tapedeck calls from")
    parser.add_argument("--text", default="Your verification call. Please enter your PIN, then press hash.")
    parser.add_argument("--bye-text", default="Thank you. Goodbye.")
    parser.add_argument("--failed-text", default="That PIN was not right. Please try again.")
    parser.add_argument("--max-attempts", type=int, default=None, help="tries tapedeck allows (its default if unset)")
    parser.add_argument("--method", choices=("POST", "GET"), default="POST", help="how tapedeck calls back")
    parser.add_argument("--outcome", choices=OUTCOMES, default="answer", help="what happens when the phone rings")
    parser.add_argument("--legacy-dtmf", action="store_true", help="send input webhooks in the pre-2020 shape")
    parser.add_argument("--webhook-copies", type=int, default=1, help="deliver each event and input this often")
    parser.add_argument("--completed-first", action="store_true", help="post completed before the last input")
    parser.add_argument("--ring-seconds", type=float, default=1.0, help="ringing time before the outcome")
    parser.add_argument("--url", default=f"{settings.public_url}/call", help="tapedeck's /call")
    parser.add_argument("--folder", type=Path, default=Path("data"), help="where `setup` keeps the stand-in's files")


def _call_arguments(parser: argparse.ArgumentParser, settings: Settings) -> None:
    parser.add_argument("--audio", type=Path, required=True, help="WAV file the caller 'says'")
    parser.add_argument("--from", dest="from_", default="447700900123", help="caller number ('' for withheld)")
    parser.add_argument("--to", default="447700900000", help="the tapedeck number called")
    parser.add_argument("--fast", action="store_true", help="send audio as fast as possible, not in real time")
    parser.add_argument("--dtmf", default="", help="keypresses as digit@second, e.g. 5@1.0,#@2.5")
    parser.add_argument(
        "--other-party",
        dest="other_parties",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="WAV file the party reached by the next phone connect says (repeat per party)",
    )
    parser.add_argument("--webhook-copies", type=int, default=1, help="deliver each recording webhook this often")
    parser.add_argument(
        "--vonage-transcript",
        type=Path,
        default=None,
        metavar="FILE",
        help="transcript file (Vonage's JSON) served when the NCCO asks Vonage to transcribe; "
        "default: the words the offline engine hears in the recording",
    )
    _signing_arguments(parser)
    parser.add_argument("--answer-url", default=f"{settings.public_url}/answer")
    parser.add_argument("--event-url", default=f"{settings.public_url}/event")


def _parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.standin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    _call_arguments(commands.add_parser("call", help="place a simulated inbound call"), settings)
    _prompt_arguments(commands.add_parser("prompt", help="have tapedeck place a PIN prompt call"), settings)
    _setup_arguments(commands.add_parser("setup", help="create the dev application key, certificate and demo routes"))
    return parser


def _setup_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("folder", type=Path)
    return parser


def call(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Ring tapedeck as Vonage would, then print what came of the call: its transcript and pages."""
    key = settings.vonage.private_key
    api = StandinApi(public_key_of(key.encode()) if key else None)
    host, _, port = settings.vonage.api_host.partition(":")
    with api.serving(host, int(port or 0)) as base:
        standin = VonageStandin(
            api=api,
            api_base=base,
            webhook_copies=args.webhook_copies,
            signing=_signing(args, settings),
            transcript=args.vonage_transcript.read_bytes() if args.vonage_transcript else None,
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
        _print_report(report, out)
        if report.heard:
            _print_heard(report, out)
        if report.recording_uuid:
            store = Services(settings).store
            split = report.recording_channels > 1
            if not split or _print_transcript(store, report, out):
                _print_pages(store, api, report, out)
        elif report.heard:
            _print_live_pages(Services(settings).store, api, report, out)
    if settings.storage.kind == "local":
        folder = settings.storage.local_dir / "calls" / report.conversation_uuid
        out.write(f"  stored in {folder}/\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["setup"]:
        # The set-up makes the files the settings name (the application key), so it reads none:
        # a user's routes file is checked by the server, with the settings the server is given.
        folder = _setup_arguments(argparse.ArgumentParser(prog="python -m tools.standin setup")).parse_args(argv[1:])
        setup(folder.folder, sys.stdout)
        return 0
    settings = Settings.from_env(os.environ)
    args = _parser(settings).parse_args(argv)
    configure_logging("WARNING")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    run = prompt if args.command == "prompt" else call
    try:
        return run(args, settings, sys.stdout)
    except (OSError, ValueError) as err:
        sys.stderr.write(f"{args.command} failed: {err}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
