"""Vonage's websocket protocol on the recorder side: handshake message, audio, DTMF, end."""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.config.routes import Routes
from shared.config.settings import STREAM_RATES
from shared.core.call_record import Flow, check_conversation_uuid
from shared.core.errors import TapedeckError
from shared.core.identifiers import DTMF_KEY, is_shaped
from shared.core.live_events import transcript_event
from shared.core.message_end import MessageEnd, beep_frames
from shared.core.ncco import VOICEMAIL_SECONDS, VOICEMAIL_SILENCE
from shared.core.payloads import load_json_object
from shared.core.ports import BlobStore, LiveListener, StorageLane, StorageUnavailable, StreamingTranscriber
from shared.core.tokens import verify_stream_token
from shared.core.vonage_limits import RECORD_SECONDS
from shared.flows.calls import noting_transcript
from shared.flows.live_transcripts import LiveTranscript
from shared.flows.stream_audio import DOCUMENT_SPACING, FINISH_SECONDS, InlineLane, StreamRecording
from shared.flows.turns import STORAGE_TURNS, StorageTurns
from shared.flows.voicemail import LiveMessage

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_INTERNAL_ERROR",
    "CLOSE_POLICY",
    "CLOSE_TOO_BIG",
    "CLOSE_UNSUPPORTED",
    "STORAGE_TURNS",
    "Socket",
    "StreamClosed",
    "StreamContext",
    "parse_content_type",
    "run_stream",
]

log = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED = 1003
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011
_FIRST_MESSAGE_TIMEOUT = 10.0
# Vonage sends a frame every 20 ms, silence included; a long gap means the network is gone.
IDLE_TIMEOUT = 30.0
_POLL = 1.0
_CONTENT_TYPE = re.compile(r"\s*audio/l16\s*;\s*rate\s*=\s*([0-9]{1,6})\s*", re.IGNORECASE | re.ASCII)
# The handshake message is a few hundred bytes; Vonage caps the NCCO headers it repeats at 512.
MAX_FIRST_MESSAGE = 8 * 1024
# How long a live stream waits for its registration, which names the files of its transcript.
_REGISTRATION_TIMEOUT = 10.0


class StreamClosed(Exception):
    """The peer closed the socket, or the connection dropped."""


class Socket(Protocol):
    def receive(self, timeout: float | None = None) -> str | bytes | None: ...

    def send(self, data: bytes) -> None: ...

    def close(self, reason: int, message: str) -> None: ...


@dataclass
class StreamContext:
    """What a running recorder shares between streams: storage, settings and a stop flag."""

    store: BlobStore
    token_secret: str
    chunk_bytes: int
    clock: Callable[[], float] = time.time
    stopping: threading.Event = field(default_factory=threading.Event)
    idle_timeout: float = IDLE_TIMEOUT
    # The engine that transcribes streams as they come, if any.
    live: StreamingTranscriber | None = None
    # Where a live voicemail's message goes when it ends.
    on_message: Callable[[LiveMessage], None] | None = None
    # Turns at a recording's start and end (STORAGE_TURNS at once; see shared/flows/turns.py).
    storage_turns: StorageTurns = field(default_factory=StorageTurns)
    # Where each stream's storage steps run: at once, in the stream, unless the recorder hands in
    # lanes that run them away from it (shared/runtime/storage_lane.py).
    lane: Callable[[], StorageLane] = InlineLane
    # Seconds at least between one stream's writes of call.json.
    document_spacing: float = DOCUMENT_SPACING
    # The called numbers' routes, for their live_webhook; a listener that sends a stream's live
    # events to one; and the queued delivery of a result (call, name, URL, payload) to it.
    routes: Routes = field(default_factory=Routes)
    listen: Callable[[str], LiveListener] | None = None
    post_result: Callable[[str, str, str, Mapping[str, object]], None] | None = None


class _Rejected(TapedeckError):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def parse_content_type(value: object) -> int:
    """The sample rate of an `audio/l16;rate=N` content type tapedeck can record."""
    match = _CONTENT_TYPE.fullmatch(value) if isinstance(value, str) else None
    if not match or int(match.group(1)) not in STREAM_RATES:
        raise _Rejected(CLOSE_UNSUPPORTED, f"unsupported content-type {value!r}")
    return int(match.group(1))


def _handshake(message: str | bytes | None, context: StreamContext) -> tuple[dict[str, Any], int]:
    # Vonage sends one JSON text frame with the call's metadata before any audio.
    if not isinstance(message, str):
        raise _Rejected(CLOSE_POLICY, "first message must be the websocket:connected text message")
    if len(message) > MAX_FIRST_MESSAGE:
        raise _Rejected(CLOSE_TOO_BIG, f"first message is over {MAX_FIRST_MESSAGE} characters")
    try:
        meta = load_json_object(message, "first message")
    except TapedeckError as err:
        raise _Rejected(CLOSE_POLICY, str(err)) from err
    rate = parse_content_type(meta.get("content-type"))
    try:
        conversation_uuid = check_conversation_uuid(meta.get("conversation_uuid"))
        token = meta.get("token")
        if not isinstance(token, str):
            raise _Rejected(CLOSE_POLICY, "stream token is missing")
        verify_stream_token(context.token_secret, conversation_uuid, token, context.clock())
    except _Rejected:
        raise
    except TapedeckError as err:
        raise _Rejected(CLOSE_POLICY, str(err)) from err
    return meta, rate


def _text_field(meta: dict[str, Any], name: str) -> str | None:
    value = meta.get(name)
    return value if isinstance(value, str) and value else None


@dataclass
class _Webhook:
    """A route's live_webhook and the listener sending this stream's events to it."""

    url: str
    listener: LiveListener


@dataclass
class _Stream:
    """One stream under way: its recording, its live transcript and its route's live webhook, and,
    for a live voicemail, when its message ends."""

    recording: StreamRecording
    live: LiveTranscript | None
    ending: MessageEnd | None
    webhook: _Webhook | None = None


def run_stream(ws: Socket, context: StreamContext) -> None:
    """Record one websocket stream until it ends, however it ends."""
    try:
        meta, rate = _handshake(ws.receive(timeout=_FIRST_MESSAGE_TIMEOUT), context)
    except _Rejected as err:
        log.warning("stream refused", extra={"reason": str(err), "close_code": err.code})
        # A close frame's reason has room for 123 bytes of UTF-8.
        ws.close(err.code, str(err).encode()[:120].decode(errors="ignore"))
        return
    except StreamClosed:
        log.info("stream closed before its first message")
        return
    stream = _open(ws, meta, rate, context)
    reason = "hangup"
    try:
        reason = _pump(ws, stream, context)
    finally:
        _close(stream, reason, meta, context)


def _open(ws: Socket, meta: dict[str, Any], rate: int, context: StreamContext) -> _Stream:
    recording = StreamRecording(
        context.store,
        meta["conversation_uuid"],
        uuidlib.uuid4().hex[:12],
        rate,
        context.chunk_bytes,
        context.clock,
        lane=context.lane(),
        turns=context.storage_turns,
        spacing=context.document_spacing,
    )
    # A live voicemail's stream says so in its headers; any other stream is the stream flow.
    flow = Flow.VOICEMAIL if meta.get("capture") == "voicemail" else Flow.STREAM
    recording.start(_text_field(meta, "uuid"), _text_field(meta, "from"), _text_field(meta, "to"), flow)
    log.info("stream started", extra={"call": recording.conversation_uuid, "rate": rate, "session": recording.session})
    try:
        return _listen(ws, meta, rate, context, recording)
    except Exception:
        # The stream never starts: let its registration run, then let its lane go.
        recording.lane.close(FINISH_SECONDS)
        raise


def _listen(ws: Socket, meta: dict[str, Any], rate: int, context: StreamContext, recording: StreamRecording) -> _Stream:
    """What else a stream opens: its route's live webhook, its live transcript, a voicemail's end."""
    webhook = _webhook(meta, context)
    live = None
    # A live transcript's files are named after the stream's WAV, which its registration chooses.
    if context.live is not None and not recording.wait_started(_REGISTRATION_TIMEOUT):
        log.warning("stream not transcribed live: registration late", extra={"call": recording.conversation_uuid})
    elif context.live is not None:
        listener = webhook.listener if webhook else None
        transcript = LiveTranscript(
            context.store, recording.conversation_uuid, recording.object_key, recording.session, listener
        )
        live = transcript if transcript.start(context.live, rate) else None
    ending = None
    if meta.get("capture") == "voicemail":
        ending = MessageEnd(rate, VOICEMAIL_SILENCE, _max_seconds(meta.get("max_seconds")))
        # The caller hears the beep: Vonage plays each binary message sent back as 20 ms of audio.
        for frame in beep_frames(rate):
            ws.send(frame)
    return _Stream(recording, live, ending, webhook)


def _webhook(meta: dict[str, Any], context: StreamContext) -> _Webhook | None:
    """The called number's live_webhook, with a listener for this stream, if it has one."""
    url = context.routes.for_number(_text_field(meta, "to") or "").live_webhook
    if not url or context.listen is None:
        return None
    return _Webhook(url, context.listen(url))


def _max_seconds(value: object) -> int:
    text = value if isinstance(value, str) else ""
    low, high = RECORD_SECONDS
    return int(text) if text.isascii() and text.isdigit() and low <= int(text) <= high else VOICEMAIL_SECONDS


def _close(stream: _Stream, reason: str, meta: dict[str, Any], context: StreamContext) -> None:
    recording = stream.recording
    recording.finish(reason)
    text = stream.live.finish() if stream.live is not None else None
    if stream.live is not None and stream.live.document is not None:
        try:
            recording.change_call(noting_transcript(stream.live.document["dialogue"]))
        except StorageUnavailable as err:
            # Only the calls list's preview of the words: the message and its webhook go on.
            log.warning("transcript start not noted", extra={"call": recording.conversation_uuid, "error": str(err)})
    if stream.ending is not None and context.on_message is not None:
        message = LiveMessage(
            recording.conversation_uuid,
            recording.session,
            _text_field(meta, "from") or "",
            _text_field(meta, "to") or "",
            recording.object_key,
            "wav",
            text,
        )
        context.on_message(message)
    if stream.webhook is not None:
        _send_transcript(stream, meta, context)


def _send_transcript(stream: _Stream, meta: dict[str, Any], context: StreamContext) -> None:
    """After the live events, the whole transcript once, through the queue's retried delivery."""
    assert stream.webhook is not None
    recording, url = stream.recording, stream.webhook.url
    document = stream.live.document if stream.live is not None else None
    caller, called = _text_field(meta, "from") or "", _text_field(meta, "to") or ""
    event = transcript_event(recording.conversation_uuid, recording.session, caller, called, document)
    post = context.post_result

    def deliver() -> None:
        if post is not None:
            post(recording.conversation_uuid, f"live-{recording.session}", url, event)

    stream.webhook.listener.close(deliver)


def _pump(ws: Socket, stream: _Stream, context: StreamContext) -> str:
    last = time.monotonic()
    recording, live, ending = stream.recording, stream.live, stream.ending
    while True:
        if context.stopping.is_set():
            ws.close(CLOSE_GOING_AWAY, "recorder shutting down")
            return "recorder shutdown"
        try:
            message = ws.receive(timeout=_POLL)
        except StreamClosed:
            return "hangup"
        if message is None:
            if time.monotonic() - last > context.idle_timeout:
                ws.close(CLOSE_GOING_AWAY, "no audio received")
                return "idle timeout"
            continue
        last = time.monotonic()
        if isinstance(message, bytes):
            try:
                recording.add_audio(message)
            except StorageUnavailable:
                # Storage has been failing so long that the audio waiting for it filled its place.
                ws.close(CLOSE_INTERNAL_ERROR, "storage unavailable")
                return "storage unavailable"
            if live is not None:
                live.feed(message)
            end = ending.audio(message) if ending is not None else None
        else:
            digit = _on_text(message, recording)
            end = ending.key(digit) if ending is not None and digit else None
        if end:
            # The message is over: closing the socket moves Vonage on to the next NCCO action.
            ws.close(CLOSE_NORMAL, f"message ended: {end}")
            return end


def _on_text(message: str, recording: StreamRecording) -> str | None:
    """Keep a DTMF event in call.json and return its key; other text frames are logged."""
    try:
        event = load_json_object(message, "text frame")
    except TapedeckError as err:
        log.warning("ignored a text frame", extra={"call": recording.conversation_uuid, "error": str(err)})
        return None
    if event.get("event") == "websocket:dtmf":
        digit = event.get("digit")
        duration = event.get("duration")
        if is_shaped(digit, DTMF_KEY):
            valid = isinstance(duration, int) and not isinstance(duration, bool) and 0 <= duration <= 3_600_000
            recording.add_dtmf(digit, duration if valid else None)
            return digit
        log.warning("ignored a malformed DTMF event", extra={"call": recording.conversation_uuid})
        return None
    log.debug("ignored a text event", extra={"call": recording.conversation_uuid, "event": event.get("event")})
    return None
