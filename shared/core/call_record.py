"""call.json: the record of one conversation, and the rules that keep it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from shared.core.errors import BadRequest
from shared.core.identifiers import CONVERSATION_ID, is_shaped
from shared.core.payloads import FieldReaders, FlatRecord, StoredDocument, each, unless_none
from shared.core.reconnect_record import Reconnect, StitchedRecording
from shared.core.times import instant

__all__ = [
    "CALL_DOCUMENT",
    "ENDED_STATUSES",
    "LEG_DETAIL",
    "CallEvent",
    "CallRecord",
    "Flow",
    "Gap",
    "Keypress",
    "Reconnect",
    "RecordingState",
    "SessionClose",
    "StitchedRecording",
    "StoredRecording",
    "StreamEntry",
    "call_ended",
    "call_ended_at",
    "call_key",
    "check_conversation_uuid",
    "new_call",
    "note_closing",
    "record_dtmf",
    "record_reconnect",
    "record_recording",
    "record_status",
    "record_stream_start",
    "stream_object_key",
]

CALL_DOCUMENT = "call.json"
# Kinds of event that say something about the call without being a state it is in.
_NOT_A_STATE = ("transfer", "error")
# The detail that marks an event of one of the call's websocket legs (sent to a stream connect's
# eventUrl): the leg's own state, not the call's.
LEG_DETAIL = "leg"
# Statuses after which a call (its caller's leg) is over.
ENDED_STATUSES = ("completed", "busy", "cancelled", "failed", "rejected", "timeout", "unanswered")


class Flow(StrEnum):
    """What tapedeck does with a call to a number."""

    STREAM = "stream"
    VOICEMAIL = "voicemail"
    CONVERSATION = "conversation"


class RecordingState(StrEnum):
    """Where a streamed recording is: `streaming` while it goes on; then complete, recovered,
    partial or failed, final once the entry is settled (the rules: shared/core/recording_outcome.py)."""

    STREAMING = "streaming"
    COMPLETE = "complete"
    RECOVERED = "recovered"
    PARTIAL = "partial"
    FAILED = "failed"


class SessionClose(StrEnum):
    """Why the recorder itself closed a session's socket, noted before the close frame goes out:
    the call goes on in a new session (rotation, shutdown, no audio), or the session's end is the
    call's (a live voicemail's message is over)."""

    RECONNECT = "reconnect"
    FINAL = "final"


_EVENT = ("status", "timestamp", "uuid")
# A further field of a status event: a plain value from the webhook.
Detail = str | int | float


@dataclass
class CallEvent:
    """One status event; `details` are the webhook's further plain fields, stored beside the status."""

    status: str
    timestamp: str
    uuid: str | None
    details: dict[str, Detail] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Self:
        details = {k: v for k, v in doc.items() if k not in _EVENT}
        return cls(doc["status"], doc["timestamp"], doc.get("uuid"), details)

    def to_json(self) -> dict[str, object]:
        return {"status": self.status, "timestamp": self.timestamp, "uuid": self.uuid, **self.details}


@dataclass(frozen=True)
class Gap(FlatRecord):
    """Audio known to be missing from a recording: `seconds` of it, after the `at` seconds the
    recording holds, from `start` to `end` (ISO 8601)."""

    at: float
    seconds: float
    start: str
    end: str


# A stream entry's fields in the order they are written: those past `end_reason` only once set.
_STREAM = (
    "session",
    "object",
    "state",
    "sample_rate",
    "bytes",
    "duration",
    "started_at",
    "ended_at",
    "end_reason",
)
_STREAM_LATER = ("recovered_at", "leg", "recorder", "closing", "closed_at", "gaps", "masked", "settled_at")
_STORED = {"object": "object_key", "bytes": "size"}
_STREAM_READ: FieldReaders = {
    "state": RecordingState,
    "gaps": each(Gap.from_json),
    "closing": unless_none(SessionClose),
    "masked": each(lambda m: {"start": float(m["start"]), "end": float(m["end"])}),
}


@dataclass
class StreamEntry(StoredDocument, fields=_STREAM, later=_STREAM_LATER, renamed=_STORED, read=_STREAM_READ):
    """One websocket stream's recording; `recovered_at` is set only for one assembled afterwards,
    `settled_at` once its state is final (and reported), `gaps` only for a `partial` one.

    `leg` is which of the call's websocket connects it came in on (1 for the answer's, then one
    more per reconnect), `recorder` the process that recorded it, `closing` the recorder's own
    reason to close it (absent when the other side closed), and `closed_at` when its audio ended:
    the times that place it on the call's timeline.
    """

    session: str
    object_key: str
    state: RecordingState
    sample_rate: int
    size: int
    duration: float
    started_at: str
    ended_at: str | None = None
    end_reason: str | None = None
    recovered_at: str | None = None
    gaps: list[Gap] = field(default_factory=list)
    settled_at: str | None = None
    leg: int | None = None
    recorder: str | None = None
    closing: SessionClose | None = None
    closed_at: str | None = None
    # Spans of its audio silenced because keys were pressed (`mask_dtmf`), in seconds of it.
    masked: list[dict[str, float]] = field(default_factory=list)

    @property
    def settled(self) -> bool:
        """Whether the recording's state is final."""
        return self.settled_at is not None


@dataclass
class StoredRecording:
    """A recording Vonage made and tapedeck downloaded, with the job that transcribes it."""

    recording_uuid: str
    object_key: str
    size: int
    job: str

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Self:
        return cls(doc["recording_uuid"], doc["object"], doc["bytes"], doc["job"])

    def to_json(self) -> dict[str, object]:
        return {"recording_uuid": self.recording_uuid, "object": self.object_key, "bytes": self.size, "job": self.job}


@dataclass
class Keypress(FlatRecord):
    """A DTMF key heard `at` seconds into the recording of `session`."""

    digit: str
    duration: int | None
    at: float
    session: str


# call.json's fields in the order they are written: those past `dtmf` only once set.
_CALL = (
    "conversation_uuid",
    "uuids",
    "from",
    "to",
    "flow",
    "direction",
    "status",
    "events",
    "recordings",
    "dtmf",
)
_CALL_LATER = (
    "voicemail",
    "conversation",
    "created_at",
    "first_words",
    "deleted",
    "legal_hold",
    "reconnects",
    "stitched",
)
_FROM = {"from": "from_"}
_CALL_READ: FieldReaders = {
    "uuids": list,
    "flow": unless_none(Flow),
    "events": each(CallEvent.from_json),
    "recordings": each(StreamEntry.from_json),
    "dtmf": each(Keypress.from_json),
    "voicemail": unless_none(StoredRecording.from_json),
    "conversation": unless_none(StoredRecording.from_json),
    "reconnects": each(Reconnect.from_json),
    "stitched": unless_none(StitchedRecording.from_json),
}


@dataclass
class CallRecord(StoredDocument, fields=_CALL, later=_CALL_LATER, renamed=_FROM, read=_CALL_READ):
    """call.json. `status` is the latest state Vonage reported, kept as Vonage spells it."""

    conversation_uuid: str
    uuids: list[str] = field(default_factory=list)
    from_: str | None = None
    to: str | None = None
    flow: Flow | None = None
    direction: str | None = None
    status: str | None = None
    events: list[CallEvent] = field(default_factory=list)
    recordings: list[StreamEntry] = field(default_factory=list)
    dtmf: list[Keypress] = field(default_factory=list)
    # The recording of a voicemail or a conversation call, once downloaded.
    voicemail: StoredRecording | None = None
    conversation: StoredRecording | None = None
    # When tapedeck first heard of the call (ISO 8601, UTC): where it sits in the calls index.
    created_at: str | None = None
    # The start of the call's transcript, for the calls list.
    first_words: str | None = None
    # Set when the call's audio and transcripts were deleted: when, and by whom.
    deleted: dict[str, str] | None = None
    # Set while the call is under legal hold (kept past its retention, never erased): since when,
    # by whom, and why.
    legal_hold: dict[str, str] | None = None
    # Each time the call's websocket was connected again after its socket closed before the call.
    reconnects: list[Reconnect] = field(default_factory=list)
    # The sessions of a call recorded in more than one, as one recording.
    stitched: StitchedRecording | None = None

    def stored_recording(self, flow: Flow, recording: StoredRecording) -> None:
        """Note the downloaded recording of a voicemail or conversation call."""
        self.flow = flow
        if flow == Flow.CONVERSATION:
            self.conversation = recording
        else:
            self.voicemail = recording

    def stream(self, session: str) -> StreamEntry | None:
        return next((entry for entry in self.recordings if entry.session == session), None)

    def leg_sessions(self, leg: int) -> list[StreamEntry]:
        """The sessions that came in on websocket connect `leg` (the first connect's may predate legs)."""
        return [entry for entry in self.recordings if (entry.leg or 1) == leg]


def check_conversation_uuid(value: object) -> str:
    """The conversation uuid if it is a safe identifier, else BadRequest.

    Conversation ids become storage prefixes, so only path-safe ids are accepted.
    """
    if not is_shaped(value, CONVERSATION_ID):
        raise BadRequest("conversation_uuid is missing or malformed")
    return value


def call_key(conversation_uuid: str, name: str) -> str:
    """The storage key of one object of a call: `calls/<conversation_uuid>/<name>`."""
    return f"calls/{check_conversation_uuid(conversation_uuid)}/{name}"


def new_call(conversation_uuid: str, created_at: str | None = None) -> CallRecord:
    return CallRecord(conversation_uuid, created_at=created_at)


def _note_parties(call: CallRecord, uuid: str | None, from_: str | None, to: str | None) -> None:
    if uuid and uuid not in call.uuids:
        call.uuids.append(uuid)
    if from_ and not call.from_:
        call.from_ = from_
    if to and not call.to:
        call.to = to


def record_status(
    call: CallRecord,
    *,
    status: str,
    timestamp: str,
    uuid: str | None = None,
    from_: str | None = None,
    to: str | None = None,
    direction: str | None = None,
    details: Mapping[str, Detail] | None = None,
) -> bool:
    """Add one status event unless it is already there; return whether anything changed."""
    if any(e.status == status and e.timestamp == timestamp and e.uuid == uuid for e in call.events):
        return False
    _note_parties(call, uuid, from_, to)
    if direction and not call.direction:
        call.direction = direction
    call.events.append(CallEvent(status, timestamp, uuid, dict(details or {})))
    # Vonage may deliver out of order, so events are kept in timestamp order; the sort is stable,
    # so events with equal timestamps (Vonage's `started` and `ringing` often share one) keep the
    # order they arrived in.
    call.events.sort(key=lambda e: _instant(e.timestamp))
    states = [e.status for e in call.events if e.status not in _NOT_A_STATE and LEG_DETAIL not in e.details]
    call.status = states[-1] if states else call.status
    return True


def call_ended(call: CallRecord) -> bool:
    """Whether the caller's leg is over (see `call_ended_at`), even when its time is unreadable."""
    return bool(_caller_ends(call))


def call_ended_at(call: CallRecord) -> float | None:
    """When the caller's leg ended, as Vonage timed it; None while the call goes on, or when no
    end was reported with a readable time."""
    ends = [moment for event in _caller_ends(call) for moment in [instant(event.timestamp)] if moment is not None]
    return max(ends) if ends else None


def _caller_ends(call: CallRecord) -> list[CallEvent]:
    """The final statuses of the call's own leg, never of a websocket leg.

    The caller's leg is the first uuid the call heard of (its `started` event, or the stream's
    headers). A websocket leg's events carry the leg detail, whatever uuid they carry (which uuid
    Vonage gives them is unconfirmed), so a socket's `disconnected` or `completed` never ends the
    call. With no uuid known yet, any final status without the leg detail does.
    """
    caller = call.uuids[0] if call.uuids else None
    return [
        event
        for event in call.events
        if event.status in ENDED_STATUSES
        and LEG_DETAIL not in event.details
        and (caller is None or event.uuid in (None, caller))
    ]


def _instant(timestamp: object) -> tuple[int, float]:
    """A sort key for an ISO 8601 timestamp (`...34.796Z` and `...04Z` alike); unreadable ones go last."""
    try:
        return 0, datetime.fromisoformat(str(timestamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 1, 0.0


def stream_object_key(call: CallRecord, session: str) -> str:
    """Where a stream's WAV goes: the one its session was given already, else `audio.wav` for the
    call's first stream, `audio-<session>.wav` for any other."""
    entry = call.stream(session)
    if entry is not None:
        return entry.object_key
    first = call_key(call.conversation_uuid, "audio.wav")
    taken = {r.object_key for r in call.recordings}
    return first if first not in taken else call_key(call.conversation_uuid, f"audio-{session}.wav")


def record_stream_start(
    call: CallRecord,
    *,
    entry: StreamEntry,
    uuid: str | None,
    from_: str | None,
    to: str | None,
    flow: Flow = Flow.STREAM,
) -> StreamEntry:
    """Note a websocket stream that has begun writing its object, and the call's flow (a stream,
    or a live voicemail) unless one is noted already. A session is noted once: noting it again
    keeps the first entry, which is returned."""
    _note_parties(call, uuid, from_, to)
    call.flow = call.flow or flow
    noted = call.stream(entry.session)
    if noted is not None:
        return noted
    call.recordings.append(entry)
    return entry


def record_recording(
    call: CallRecord,
    session: str,
    *,
    state: RecordingState,
    size: int,
    duration: float,
    ended_at: str | None,
    end_reason: str | None,
    recovered_at: str | None = None,
    closed_at: str | None = None,
    masked: list[dict[str, float]] | None = None,
) -> None:
    """Note the end of one recording session: its state, size, duration, why it ended, when known
    when its audio did, and the spans silenced for key presses."""
    entry = call.stream(session)
    if entry is None:
        return
    entry.state, entry.size, entry.duration = state, size, duration
    entry.ended_at, entry.end_reason = ended_at, end_reason
    if recovered_at is not None:
        entry.recovered_at = recovered_at
    if closed_at is not None:
        entry.closed_at = closed_at
    if masked:
        entry.masked = list(masked)


def note_closing(
    call: CallRecord, session: str, *, closing: SessionClose, closed_at: str, reason: str, size: int, duration: float
) -> None:
    """Note, before the recorder closes a session's socket, why and when, and the audio it holds:
    the event webhook that follows reads it to tell a socket to reconnect from one whose end is
    the call's, and the next session finds where it starts on the call's timeline."""
    entry = call.stream(session)
    if entry is None:
        return
    entry.closing, entry.closed_at, entry.end_reason = closing, closed_at, reason
    entry.size, entry.duration = size, duration


def record_reconnect(call: CallRecord, *, leg: int, disconnected_at: str, answered_at: str) -> bool:
    """Note that websocket connect `leg` was asked for; False (and nothing changed) if it was already."""
    if any(r.leg == leg for r in call.reconnects):
        return False
    call.reconnects.append(Reconnect(leg, disconnected_at, answered_at))
    call.reconnects.sort(key=lambda r: r.leg)
    return True


def record_dtmf(call: CallRecord, *, session: str, digit: str, duration: int | None, at: float) -> bool:
    """Add a keypress heard `at` seconds into the recording of `session`, unless it is noted
    already: a key press is known by its session, its second of audio and its digit. Returns
    whether anything changed."""
    press = Keypress(digit, duration, round(at, 3), session)
    if any((k.session, k.at, k.digit) == (press.session, press.at, press.digit) for k in call.dtmf):
        return False
    call.dtmf.append(press)
    return True
