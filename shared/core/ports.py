"""The ports tapedeck's use cases are written against."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.core.errors import TapedeckError
from shared.core.tasks import Task
from shared.core.transcript_parsers import Word

__all__ = [
    "BINARY",
    "Blob",
    "BlobInfo",
    "BlobStore",
    "CallControl",
    "LiveListener",
    "LiveSegment",
    "LiveTranscription",
    "Messenger",
    "OutboundCall",
    "Recordings",
    "SpeechHints",
    "StorageConflict",
    "StorageLane",
    "StorageUnavailable",
    "StreamingTranscriber",
    "TaskQueue",
    "TextMessage",
    "Transcriber",
    "Transcript",
    "TranscriptionJob",
    "VonageCredentials",
]


# The content type of an object whose type the writer does not say.
BINARY = "application/octet-stream"


@dataclass(frozen=True)
class Blob:
    """An object's bytes and the generation they were read at."""

    data: bytes
    generation: int


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    updated: float  # seconds since the epoch


class StorageConflict(Exception):
    """The object is not at the generation a conditional write asked for, or changed while read."""


class StorageUnavailable(TapedeckError):
    """Storage kept failing (error answers, timeouts, broken connections) past every retry of a request."""

    status = 503


class BlobStore(Protocol):
    """Object storage: a local folder or a Cloud Storage bucket.

    Every step a use case takes through it is safe to run twice (a store may replay a request whose
    answer was lost): a write is keyed by what it records and carries the whole of it, a conditional
    write that was applied is not reported as a conflict, and compose never reads its own output.
    """

    def read(self, key: str) -> Blob | None:
        """The object, or None when there is none."""
        ...

    def write(self, key: str, data: bytes, content_type: str = BINARY, if_generation_match: int | None = None) -> int:
        """Store `data` and return its generation.

        With `if_generation_match` the write happens only if the object is still at that
        generation (0: only if absent); otherwise StorageConflict is raised.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""
        ...

    def list(self, prefix: str) -> list[BlobInfo]:
        """Every object whose key starts with `prefix`, sorted by key."""
        ...

    def list_after(self, prefix: str, start_after: str, limit: int) -> builtins.list[BlobInfo]:
        """Up to `limit` objects under `prefix` whose keys sort after `start_after`, sorted by key:
        one page of a long listing, read without listing what comes before it."""
        ...

    def read_many(self, keys: Sequence[str]) -> builtins.list[Blob | None]:
        """The objects at `keys`, in order (None where there is none); a store may read them at once."""
        ...

    def compose(self, key: str, sources: Sequence[str], content_type: str) -> None:
        """Write `key` as the concatenation of `sources`, which are left in place; running it again
        with the same sources gives the same object."""
        ...


class StorageLane(Protocol):
    """Where one stream's storage steps run, one after another in the order given, so that the
    stream itself never waits for storage. Every step must be safe to run twice: a step that fails
    may be tried again."""

    def run(self, step: Callable[[], object]) -> None:
        """Queue `step` behind the steps queued before it."""
        ...

    def carry(self, data: bytes, step: Callable[[bytes], object]) -> None:
        """Queue `step(data)`: `data` (a part of the audio) waits in memory only while the lane has
        nothing else to do, otherwise on local disk. StorageUnavailable when the lane is so far
        behind that its local disk holds its limit."""
        ...

    def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds until every step queued so far has run; True if they have."""
        ...

    def close(self, timeout: float) -> bool:
        """No more steps: wait up to `timeout` seconds for those queued, then give up on the rest.
        True when every step ran."""
        ...


@dataclass(frozen=True)
class TranscriptionJob:
    """One recording to transcribe. `name` is deterministic, so a retried start is recognised."""

    name: str
    audio_key: str  # the stored audio, in the BlobStore
    media_format: str  # "wav" or "mp3"
    language: str  # BCP-47, e.g. "en-US"
    channels: int = 1
    # What the engine may redact itself, where it can (shared.core.redaction's kinds); tapedeck
    # redacts the transcript anyway.
    redact: tuple[str, ...] = ()
    # Phrases the route's callers say, for an engine that can be told to expect them.
    vocabulary: tuple[str, ...] = ()
    # The languages an engine that identifies the spoken one chooses among (`language` among them).
    languages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Transcript:
    """A finished job: its plain text, and the engine's own document when it has one."""

    job_name: str
    status: str  # "completed" or "failed"
    text: str
    document: dict[str, Any] | None = None
    failure: str | None = None
    # The language the engine identified the speech as, when it was asked to choose.
    language: str | None = None


class Transcriber(Protocol):
    """Speech to text: pocketsphinx offline, Amazon Transcribe, or Google Speech-to-Text."""

    def start(self, job: TranscriptionJob) -> Transcript | None:
        """Begin the job. Engines that finish in-process return the transcript; cloud
        engines return None and their result is fetched with `collect` once notified.
        Starting a job that is already running is not an error."""
        ...

    def collect(self, job_name: str) -> Transcript:
        """The result of a finished job, after the engine said it changed state."""
        ...

    def discard(self, job_name: str) -> int:
        """Remove every copy the engine keeps of a job (staged audio, its transcript, the job
        itself); returns how many it removed. A job never started, or gone, is not an error."""
        ...


@dataclass(frozen=True)
class TextMessage:
    to: str  # E.164 without '+'
    sender: str
    text: str


class Messenger(Protocol):
    """Sends a text message: Vonage SMS, or an outbox in storage."""

    def send(self, message: TextMessage, key: str) -> str:
        """Send once and return the provider's message id; `key` names this message for idempotency."""
        ...

    def forget(self, key: str) -> int:
        """Remove what the messenger keeps of the message `key` names; returns how many copies it
        removed (an SMS already delivered to a phone cannot be recalled)."""
        ...


class Recordings(Protocol):
    """Fetches a call recording from Vonage with the application's credentials."""

    def download(self, url: str) -> bytes: ...


@dataclass(frozen=True)
class VonageCredentials:
    """Whose Vonage application places a call: its id and key, or a JWT it signed (forwarded as is)."""

    application_id: str = ""
    private_key: str = field(default="", repr=False)
    bearer: str = field(default="", repr=False)


@dataclass(frozen=True)
class OutboundCall:
    to: str  # E.164 without '+'
    from_: str
    answer_url: str
    event_url: str


class CallControl(Protocol):
    """Places calls through the Vonage Voice API."""

    def check_credentials(self, credentials: VonageCredentials) -> None:
        """Raise BadRequest for credentials that could never place a call (a key that is no key)."""
        ...

    def create_call(self, call: OutboundCall, credentials: VonageCredentials) -> str:
        """Ask Vonage to place the call; returns its uuid once Vonage accepted it."""
        ...


class TaskQueue(Protocol):
    """Runs a step later, in a request of its own: Cloud Tasks, or the embedded local queue."""

    def enqueue(self, task: Task) -> None:
        """Hand `task` over once the queue holds it; the same task name again is not an error."""
        ...


@dataclass(frozen=True)
class LiveSegment:
    """Words heard on a live stream, timed in seconds from the stream's start. An interim segment
    may still change; a final one will not. A gap is audio the engine never heard (it fell behind
    or failed): `words` is empty and `start`-`end` is the stretch missed."""

    final: bool
    text: str
    start: float
    end: float
    words: tuple[Word, ...] = ()
    gap: bool = False


class LiveTranscription(Protocol):
    """One call's live transcription: fed frame by frame, never blocking the feeder."""

    def feed(self, frame: bytes) -> None:
        """Hand over the next 20 ms frame; if the engine is behind, the frame is skipped and noted."""
        ...

    def close(self, timeout: float) -> None:
        """End of audio: wait up to `timeout` seconds for the last segments, then let go."""
        ...


class LiveListener(Protocol):
    """Where one stream's live events go as they happen (a route's `live_webhook`), in order."""

    def send(self, event: Mapping[str, object]) -> None:
        """Hand over the next event; never waits for the receiver."""
        ...

    def close(self, then: Callable[[], None] | None = None) -> None:
        """No more events: send those still waiting, then call `then`; never waits either."""
        ...


@dataclass(frozen=True)
class SpeechHints:
    """What a route tells a live engine of its calls: their language, and phrases to expect."""

    language: str = "en-US"
    vocabulary: tuple[str, ...] = ()


class StreamingTranscriber(Protocol):
    """Speech to text while the call goes on."""

    def open(
        self, rate: int, on_segment: Callable[[LiveSegment], None], hints: SpeechHints | None = None
    ) -> LiveTranscription | None:
        """Start transcribing a stream of 16-bit mono PCM at `rate`; each segment goes to
        `on_segment` as it comes. `hints`: the route's (None: the engine's own language, no
        phrases). None when the engine is at its limit of concurrent streams."""
        ...
