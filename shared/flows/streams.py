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
from shared.core.call_record import CallRecord, Flow, SessionClose, check_conversation_uuid, note_closing
from shared.core.dtmf_mask import DtmfMask
from shared.core.errors import TapedeckError
from shared.core.identifiers import DTMF_KEY, is_shaped
from shared.core.legs import MAX_LEGS
from shared.core.live_events import transcript_event
from shared.core.message_end import MessageEnd, beep_frames
from shared.core.ncco import LEG_HEADER, VOICEMAIL_SECONDS, VOICEMAIL_SILENCE
from shared.core.payloads import load_json_object
from shared.core.ports import (
    BlobStore,
    LiveListener,
    SpeechHints,
    StorageLane,
    StorageUnavailable,
    StreamingTranscriber,
)
from shared.core.rotation import Rotation
from shared.core.timeline import lay_out
from shared.core.tokens import verify_stream_token
from shared.core.vonage_limits import RECORD_SECONDS
from shared.flows.calls import iso, noting_transcript
from shared.flows.live_transcripts import LiveTranscript
from shared.flows.redactions import RedactionPolicy, store_redacted_audio
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
# How long a stream goes on after its recorder is told to stop, before its socket closes and its
# call reconnects: the worker stops accepting connections within a second of SIGTERM (gunicorn's
# workers look every second), so the reconnect finds another instance, not this one.
HANDOVER_DELAY = 1.5
# How long a live stream, or a reconnected one, waits for its registration, which names the files
# of its transcript and places it on the call's timeline.
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
    # Told (call, session) once a stream's recording is assembled, so its final state can be settled.
    on_recorded: Callable[[str, str], None] | None = None
    # How long a session's socket is kept before the recorder closes it for the call to reconnect
    # (None: as long as the call lasts), timed by `monotonic`; a live voicemail is never rotated.
    rotate_seconds: float | None = None
    monotonic: Callable[[], float] = time.monotonic
    # Which process records, noted on each session; and how long a stream goes on once `stopping`.
    recorder: str = ""
    handover_delay: float = HANDOVER_DELAY
    # Told of each session that ends in a call of more than one (call, session): its recording is
    # stitched once the call is over.
    after_session: Callable[[str, str], None] | None = None


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
    for a live voicemail, when its message ends; the call's websocket leg it came in on, where it
    starts on the call's timeline, and when its socket is due to rotate."""

    recording: StreamRecording
    live: LiveTranscript | None
    ending: MessageEnd | None
    webhook: _Webhook | None = None
    leg: int = 1
    offset: float = 0.0
    rotation: Rotation | None = None


@dataclass(frozen=True)
class _End:
    """How a stream ended: why, when its audio ended, and what the recorder noted if it closed it."""

    reason: str
    closed_at: str | None = None
    closing: SessionClose | None = None


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
    end = _End("hangup")
    try:
        end = _pump(ws, stream, context)
    finally:
        _close(stream, end, meta, context)


def _leg(meta: dict[str, Any]) -> int:
    """Which of the call's websocket connects this stream came in on (1 when the header is absent)."""
    value = meta.get(LEG_HEADER)
    if isinstance(value, str) and value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_LEGS:
        return int(value)
    return 1


def _offset(call: CallRecord, session: str) -> float:
    """Where `session` starts on the call's timeline, as far as the sessions before it say now."""
    try:
        return lay_out(call.recordings).offset_of(session)
    except (KeyError, ValueError):
        return 0.0


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
    route = context.routes.for_number(_text_field(meta, "to") or "")
    if route.mask_dtmf:
        recording.mask = DtmfMask(rate)
    recording.sensitive_keys = route.sensitive_dtmf
    leg = _leg(meta)
    # A live voicemail's stream says so in its headers; any other stream is the stream flow.
    flow = Flow.VOICEMAIL if meta.get("capture") == "voicemail" else Flow.STREAM
    uuid, caller, called = _text_field(meta, "uuid"), _text_field(meta, "from"), _text_field(meta, "to")
    recording.start(uuid, caller, called, flow, leg=leg, recorder=context.recorder or None)
    log.info(
        "stream started",
        extra={"call": recording.conversation_uuid, "rate": rate, "session": recording.session, "leg": leg},
    )
    try:
        return _listen(ws, meta, rate, context, recording, leg)
    except Exception:
        # The stream never starts: let its registration run, then let its lane go.
        recording.lane.close(FINISH_SECONDS)
        raise


def _listen(
    ws: Socket, meta: dict[str, Any], rate: int, context: StreamContext, recording: StreamRecording, leg: int
) -> _Stream:
    """What else a stream opens: its route's live webhook, its live transcript, a voicemail's end,
    its rotation."""
    webhook = _webhook(meta, context)
    voicemail = meta.get("capture") == "voicemail"
    # A reconnected session starts where the sessions before it end, on the call's timeline.
    offset = 0.0
    if leg > 1 and recording.wait_started(_REGISTRATION_TIMEOUT) and recording.registered is not None:
        offset = _offset(recording.registered, recording.session)
    live = None
    # A live transcript's files are named after the stream's WAV, which its registration chooses.
    if context.live is not None and not recording.wait_started(_REGISTRATION_TIMEOUT):
        log.warning("stream not transcribed live: registration late", extra={"call": recording.conversation_uuid})
    elif context.live is not None:
        listener = webhook.listener if webhook else None
        route = context.routes.for_number(_text_field(meta, "to") or "")
        transcript = LiveTranscript(
            context.store,
            recording.conversation_uuid,
            recording.object_key,
            recording.session,
            listener,
            offset,
            policy=RedactionPolicy(route.redact, route.keep_unredacted),
        )
        hints = SpeechHints(route.language, route.vocabulary)
        live = transcript if transcript.start(context.live, rate, hints) else None
    ending = None
    if voicemail:
        ending = MessageEnd(rate, VOICEMAIL_SILENCE, _max_seconds(meta.get("max_seconds")))
        # The caller hears the beep: Vonage plays each binary message sent back as 20 ms of audio.
        for frame in beep_frames(rate):
            ws.send(frame)
    # A message is short and ends on its own; any other stream's socket is closed before the platform does.
    rotation = Rotation(context.rotate_seconds, rate) if context.rotate_seconds and not voicemail else None
    return _Stream(recording, live, ending, webhook, leg, offset, rotation)


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


def _close(stream: _Stream, end: _End, meta: dict[str, Any], context: StreamContext) -> None:
    recording = stream.recording
    # The live words first: a session counts as stored (and a call in several may be stitched)
    # once its recording is finished, and by then its transcript is too.
    text = stream.live.finish() if stream.live is not None else None
    recording.finish(end.reason, end.closed_at)
    if context.on_recorded is not None:
        context.on_recorded(recording.conversation_uuid, recording.session)
    audio_key = recording.object_key
    if stream.live is not None and stream.live.spans:
        audio_key = store_redacted_audio(context.store, audio_key, stream.live.spans, keep=True)
    if stream.ending is not None and context.on_message is not None:
        message = LiveMessage(
            recording.conversation_uuid,
            recording.session,
            _text_field(meta, "from") or "",
            _text_field(meta, "to") or "",
            audio_key,
            "wav",
            text,
        )
        context.on_message(message)
    if stream.live is not None and stream.live.document is not None and stream.leg == 1:
        # After the page: call.json's writes are spaced a second apart (Cloud Storage's rate for
        # one object), and the list's preview of the words must not hold the owner's page up.
        # A call in several sessions takes its first words from the stitched transcript.
        try:
            recording.change_call(noting_transcript(stream.live.document["dialogue"]))
        except StorageUnavailable as err:
            # Only the calls list's preview of the words: the message and its webhook go on.
            log.warning("transcript start not noted", extra={"call": recording.conversation_uuid, "error": str(err)})
    if stream.webhook is not None:
        _send_transcript(stream, meta, context)
    if context.after_session is not None and (stream.leg > 1 or end.closing == SessionClose.RECONNECT):
        context.after_session(recording.conversation_uuid, recording.session)


def _send_transcript(stream: _Stream, meta: dict[str, Any], context: StreamContext) -> None:
    """After the live events, the whole transcript once, through the queue's retried delivery."""
    assert stream.webhook is not None
    recording, url = stream.recording, stream.webhook.url
    document = stream.live.document if stream.live is not None else None
    caller, called = _text_field(meta, "from") or "", _text_field(meta, "to") or ""
    event = transcript_event(recording.conversation_uuid, recording.session, caller, called, document, stream.offset)
    post = context.post_result

    def deliver() -> None:
        if post is not None:
            post(recording.conversation_uuid, f"live-{recording.session}", url, event)

    stream.webhook.listener.close(deliver)


def _pump(ws: Socket, stream: _Stream, context: StreamContext) -> _End:
    opened = last = context.monotonic()
    last_audio = context.clock()
    stop_seen: float | None = None
    recording, live, ending, rotation = stream.recording, stream.live, stream.ending, stream.rotation
    while True:
        if context.stopping.is_set():
            if stop_seen is None:
                # What the stream holds is stored at once: the process may not outlive its grace.
                stop_seen = context.monotonic()
                recording.flush()
            # A message is not handed over; a stream goes on until no new socket can reach this worker.
            if ending is not None or context.monotonic() - stop_seen >= context.handover_delay:
                return _close_socket(
                    ws, stream, context, "recorder shutdown", CLOSE_GOING_AWAY, "recorder shutting down"
                )
        try:
            message = ws.receive(timeout=_POLL)
        except StreamClosed:
            return _End("hangup", iso(context.clock()))
        now = context.monotonic()
        if message is None:
            if now - last > context.idle_timeout:
                # The audio stopped when the last frame came, not when the recorder gave up waiting.
                return _close_socket(
                    ws, stream, context, "idle timeout", CLOSE_GOING_AWAY, "no audio received", iso(last_audio)
                )
            continue
        last, last_audio = now, context.clock()
        end = None
        if isinstance(message, bytes):
            try:
                recording.add_audio(message)
            except StorageUnavailable:
                # Storage has been failing so long that the audio waiting for it filled its place.
                ws.close(CLOSE_INTERNAL_ERROR, "storage unavailable")
                return _End("storage unavailable", iso(context.clock()))
            if live is not None:
                live.feed(message)
            end = ending.audio(message) if ending is not None else None
            if rotation is not None and rotation.due(now - opened, message):
                return _close_socket(ws, stream, context, "rotation", CLOSE_NORMAL, "rotating to a new socket")
        else:
            digit = _on_text(message, recording)
            end = ending.key(digit) if ending is not None and digit else None
        if end:
            # The message is over: closing the socket moves Vonage on to the next NCCO action.
            return _close_socket(ws, stream, context, end, CLOSE_NORMAL, f"message ended: {end}")


def _close_socket(
    ws: Socket, stream: _Stream, context: StreamContext, reason: str, code: int, message: str, ended: str | None = None
) -> _End:
    """Close the socket from this side, once what it recorded is stored and why it closes is noted.

    The note comes before the close frame, so the event webhook that the close sets off reads it:
    a live voicemail's end is final; any other stream closes to hand the call over to a new
    session, and what arrived while the note was written is taken before the socket closes.
    """
    recording = stream.recording
    closing = SessionClose.FINAL if stream.ending is not None else SessionClose.RECONNECT
    recording.flush()
    _note_closing(recording, closing, ended or iso(context.clock()), reason, context)
    if closing == SessionClose.RECONNECT:
        _drain(ws, stream)
    ws.close(code, message)
    return _End(reason, ended or iso(context.clock()), closing)


def _note_closing(
    recording: StreamRecording, closing: SessionClose, closed_at: str, reason: str, context: StreamContext
) -> None:
    size = recording.received - recording.received % 2

    def change(call: CallRecord) -> None:
        note_closing(
            call,
            recording.session,
            closing=closing,
            closed_at=closed_at,
            reason=reason,
            size=size,
            duration=round(recording.seconds, 3),
        )

    try:
        recording.change_call(change)
    except Exception:
        # The socket closes all the same; without the note, the event that follows waits a moment
        # for a hang-up before it reconnects the call.
        log.exception("could not note why the stream closes", extra={"call": recording.conversation_uuid})


def _drain(ws: Socket, stream: _Stream) -> None:
    """Take the frames already received, without waiting for more."""
    while True:
        try:
            message = ws.receive(timeout=0)
        except StreamClosed:
            return
        if message is None:
            return
        if isinstance(message, bytes):
            stream.recording.add_audio(message)
            if stream.live is not None:
                stream.live.feed(message)
        else:
            _on_text(message, stream.recording)


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
