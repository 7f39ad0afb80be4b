"""A transcription job's document (`jobs/<name>.json`): one recording, from its webhook to its page."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self

from shared.core.call_record import Flow
from shared.core.payloads import JsonObject, unknown_fields

__all__ = ["Job", "JobState"]


class JobState(StrEnum):
    RECEIVED = "received"
    NO_MESSAGE = "no-message"
    NO_RECORDING = "no-recording"
    TRANSCRIBING = "transcribing"
    TRANSCRIBED = "transcribed"
    PAGED = "paged"


# Fields written once a job moves on; absent until then.
_LATER = (
    "labels",
    "channels",
    "result_webhook",
    "engines",
    "request",
    "audio_key",
    "attempts",
    "engine",
    "detected_language",
    "transcript_status",
    "paged",
)


@dataclass
class Job:
    """A job as stored. Fields a job has not reached yet are None, and absent from its JSON."""

    name: str
    flow: Flow
    conversation_uuid: str
    recording_uuid: str
    caller: str
    called: str
    recipients: list[str]
    language: str
    state: JobState
    received_at: float
    # A conversation's: one label per channel, the channel count, and where its result goes.
    labels: list[str] | None = None
    channels: int | None = None
    result_webhook: str | None = None
    # The engines its route tries in turn, as they were when the recording came.
    engines: list[str] | None = None
    # What its engines are asked to transcribe (a TranscriptionJob's fields), kept by the first
    # attempt so that a later one, started from an engine's event or a deadline, asks the same.
    request: dict[str, Any] | None = None
    audio_key: str | None = None
    # One entry per engine tried: {"engine", "started_at", "outcome", "reason", "ended_at"}; the
    # outcome is running, completed, failed or late (given up on at its deadline).
    attempts: list[dict[str, Any]] | None = None
    # The engine whose transcript was used, and the language it identified, when asked to.
    engine: str | None = None
    detected_language: str | None = None
    transcript_status: str | None = None
    paged: list[str] | None = None
    # Fields this version does not know, kept as they were.
    extra: JsonObject = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Self:
        known = {f: doc[f] for f in (*_FIRST, *_LATER) if f in doc}
        extra = unknown_fields(doc, *_FIRST, *_LATER)
        return cls(**{**known, "flow": Flow(doc["flow"]), "state": JobState(doc["state"])}, extra=extra)

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {f: getattr(self, f) for f in _FIRST}
        doc.update({f: getattr(self, f) for f in _LATER if getattr(self, f) is not None})
        return doc | self.extra

    def move(
        self,
        state: JobState,
        *,
        audio_key: str | None = None,
        transcript_status: str | None = None,
        paged: list[str] | None = None,
    ) -> None:
        """Enter `state`, noting what this step learnt (a field left None keeps what it was)."""
        self.state = state
        self.audio_key = audio_key if audio_key is not None else self.audio_key
        self.transcript_status = transcript_status if transcript_status is not None else self.transcript_status
        self.paged = paged if paged is not None else self.paged


# The fields of a job as it is claimed, in the order they are written.
_FIRST = (
    "name",
    "flow",
    "conversation_uuid",
    "recording_uuid",
    "caller",
    "called",
    "recipients",
    "language",
    "state",
    "received_at",
)
