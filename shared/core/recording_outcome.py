"""How a streamed recording ends, and what its route's `recording_webhook` receives. Pure.

Every recording of a stream (a `stream` route, or a voicemail with `capture: stream`) ends in one
final state, decided once the call is over, which is when Vonage reports its first leg (the
caller's) `completed`, or ended otherwise (`busy`, `failed`, ...):

- `complete`: the recorder assembled the WAV when the stream ended, and the audio runs to within
  END_TOLERANCE seconds of the call's end (or of the start of the call's next stream);
- `recovered`: the recorder died; the WAV was assembled afterwards from the parts it had written,
  and the audio still runs to within END_TOLERANCE of the call's end;
- `partial`: assembled either way and holding audio, but audio is known to be missing: it stops
  more than END_TOLERANCE before the call (or its next stream) did. `gaps` says how much and
  when. A recorder that died loses the part it had not yet flushed, so a recovered recording of a
  call that went on is `partial`; so is a stream the network dropped while the caller stayed;
- `failed`: not one byte of audio: the stream sent none, or the call was answered and no stream
  ever connected (NO_STREAM).

The audio's end is the stream's start plus the audio's duration (Vonage sends audio in real
time), compared with Vonage's timestamp of the call's end: missing audio is placed at the end of
what the recording holds, since where within a stream frames were lost cannot be known.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Self

from shared.core.call_record import CallRecord, Gap, RecordingState, StreamEntry, call_ended_at
from shared.core.payloads import JsonObject, unknown_fields
from shared.core.times import instant, iso

__all__ = [
    "END_TOLERANCE",
    "FINAL_STATES",
    "NO_AUDIO",
    "NO_STREAM",
    "UNFINISHED_LIMIT",
    "Verdict",
    "WaitingCall",
    "answered",
    "final_state",
    "missing_stream",
    "recording_event",
    "settle",
    "verdicts",
]

# How far before the call's end the audio may stop and still count as whole: the socket closes a
# moment after the caller hangs up, and the recorder's clock and Vonage's differ a little.
END_TOLERANCE = 2.0
# A call Vonage never reports ended is settled anyway this long after it was first waited on.
UNFINISHED_LIMIT = 86400.0
FINAL_STATES = (RecordingState.COMPLETE, RecordingState.RECOVERED, RecordingState.PARTIAL, RecordingState.FAILED)
NO_STREAM = "no stream connected"
NO_AUDIO = "no audio received"


@dataclass
class WaitingCall:
    """A call whose recordings are not all settled yet (`sweep/pending/<conversation_uuid>.json`):
    since when it waits, and the error that holds it back until an operator asks for a retry."""

    since: float
    error: str | None = None
    extra: JsonObject = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Self:
        return cls(doc["since"], doc.get("error"), unknown_fields(doc, "since", "error"))

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {"since": self.since, "error": self.error}
        return doc | self.extra


def answered(call: CallRecord) -> bool:
    """Whether Vonage answered the call: only then is a stream expected."""
    return any(event.status == "answered" for event in call.events)


def final_state(entry: StreamEntry, limit: float | None) -> tuple[RecordingState, list[Gap]]:
    """The final state of an assembled recording whose audio should have run until `limit` (the
    call's end, or the call's next stream's start; None when unknown), and its gaps."""
    if entry.size == 0:
        return RecordingState.FAILED, []
    started = instant(entry.started_at)
    if limit is not None and started is not None:
        audio_end = started + entry.duration
        missing = limit - audio_end
        if missing > END_TOLERANCE:
            gap = Gap(round(entry.duration, 3), round(missing, 3), iso(audio_end), iso(limit))
            return RecordingState.PARTIAL, [gap]
    state = entry.state if entry.state in (RecordingState.COMPLETE, RecordingState.RECOVERED) else None
    return state or RecordingState.COMPLETE, []


@dataclass(frozen=True)
class Verdict:
    """The final state one recording is to be settled in."""

    session: str
    state: RecordingState
    gaps: list[Gap]


def verdicts(call: CallRecord, ended: float | None) -> list[Verdict]:
    """The final state of each assembled recording not yet settled, the call having ended at
    `ended`: each stream should have run until the next one began, the last until the call ended."""
    ordered = sorted(call.recordings, key=lambda e: instant(e.started_at) or 0.0)
    found = []
    for index, entry in enumerate(ordered):
        if entry.settled or entry.state == RecordingState.STREAMING:
            continue
        following = [instant(later.started_at) for later in ordered[index + 1 :] if later.object_key]
        limits = [moment for moment in (ended, *following) if moment is not None]
        state, gaps = final_state(entry, min(limits) if limits else None)
        found.append(Verdict(entry.session, state, gaps))
    return found


def missing_stream(conversation_uuid: str, ended: float) -> StreamEntry:
    """The failed recording of an answered call whose stream never connected: no audio, no object."""
    session = "none-" + hashlib.sha256(conversation_uuid.encode()).hexdigest()[:12]
    at = iso(ended)
    return StreamEntry(session, "", RecordingState.FAILED, 0, 0, 0.0, at, at, NO_STREAM)


def settle(call: CallRecord, found: list[Verdict], now: float) -> list[StreamEntry]:
    """Make each verdict final in the record, unless its recording is settled already; returns the
    entries this settled."""
    settled = []
    for verdict in found:
        entry = call.stream(verdict.session)
        if entry is None or entry.settled:
            continue
        entry.state, entry.gaps, entry.settled_at = verdict.state, list(verdict.gaps), iso(now)
        settled.append(entry)
    return settled


def recording_event(call: CallRecord, entry: StreamEntry, link: str | None) -> dict[str, object]:
    """What a route's recording_webhook receives once a recording's state is final."""
    ended = call_ended_at(call)
    return {
        "event": "recording",
        "conversation_uuid": call.conversation_uuid,
        "session": entry.session,
        "caller": call.from_ or "",
        "called": call.to or "",
        "state": str(entry.state),
        "duration": entry.duration,
        "gaps": [gap.to_json() for gap in entry.gaps],
        "link": link,
        "started_at": entry.started_at,
        "ended_at": entry.ended_at,
        "end_reason": entry.end_reason,
        "call_ended_at": iso(ended) if ended is not None else None,
    }
