"""In-memory stand-ins for every port, and `FakeServices` holding one of each, so a flow runs
in-process and a test reads what it did: the texts sent, the tasks queued, the calls placed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.adapters.local_blob_store import LocalBlobStore
from shared.config.settings import Settings
from shared.core.errors import NotFound
from shared.core.ports import (
    LiveSegment,
    OutboundCall,
    SpeechHints,
    TextMessage,
    Transcript,
    TranscriptionJob,
    VonageCredentials,
)
from shared.core.tasks import Task
from shared.flows.pin_calls import PromptServices
from shared.flows.transcription import RecordedCallServices

__all__ = [
    "FakeCalls",
    "FakeClock",
    "FakeHttp",
    "FakeRecordings",
    "FakeServices",
    "FakeTranscriber",
    "HttpAnswer",
    "QueuedTasks",
    "ScriptedLiveStream",
    "ScriptedLiveTranscriber",
    "SentMessages",
]


@dataclass
class FakeClock:
    """Time that moves only when a test moves it."""

    now: float = 1_796_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass
class FakeTranscriber:
    """A speech engine whose transcripts a test sets. `in_process` engines answer `start` at once;
    the others answer None and are `collect`ed when their event arrives, as a cloud engine is."""

    transcripts: dict[str, Transcript] = field(default_factory=dict)
    in_process: bool = True
    started: list[str] = field(default_factory=list)
    collected: list[str] = field(default_factory=list)
    # Each job as the engine was handed it.
    jobs: list[TranscriptionJob] = field(default_factory=list)

    def start(self, job: TranscriptionJob) -> Transcript | None:
        self.started.append(job.name)
        self.jobs.append(job)
        return self.transcripts[job.name] if self.in_process else None

    def collect(self, job_name: str) -> Transcript:
        self.collected.append(job_name)
        if job_name not in self.transcripts:
            raise NotFound(f"no transcription job {job_name}")
        return self.transcripts[job_name]

    def discard(self, job_name: str) -> int:
        return int(self.transcripts.pop(job_name, None) is not None)


@dataclass
class ScriptedLiveStream:
    """One stream of a ScriptedLiveTranscriber: each segment is handed over, in the feeder's
    thread, once the audio fed reaches its end; the rest when the stream closes."""

    rate: int
    waiting: list[LiveSegment]
    on_segment: Callable[[LiveSegment], None]
    heard: float = 0.0

    def feed(self, frame: bytes) -> None:
        self.heard += len(frame) / 2 / self.rate
        while self.waiting and self.waiting[0].end <= self.heard:
            self.on_segment(self.waiting.pop(0))

    def close(self, timeout: float) -> None:
        while self.waiting:
            self.on_segment(self.waiting.pop(0))


@dataclass
class ScriptedLiveTranscriber:
    """A live engine that hears what a test says was said: the same `segments` on every stream,
    each when the audio reaches it, so what is redacted is exact, not what an engine made of it."""

    segments: Sequence[LiveSegment]
    opened: int = 0
    # What each stream was opened with.
    hints: list[SpeechHints | None] = field(default_factory=list)

    def open(
        self, rate: int, on_segment: Callable[[LiveSegment], None], hints: SpeechHints | None = None
    ) -> ScriptedLiveStream:
        self.opened += 1
        self.hints.append(hints)
        return ScriptedLiveStream(rate, list(self.segments), on_segment)


@dataclass
class SentMessages:
    """A messenger that keeps what it was asked to send, in order."""

    sent: list[tuple[TextMessage, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send(self, message: TextMessage, key: str) -> str:
        with self.lock:
            self.sent.append((message, key))
            return f"fake-{len(self.sent):08d}"

    def forget(self, key: str) -> int:
        with self.lock:
            kept = [(message, k) for message, k in self.sent if k != key]
            removed, self.sent[:] = len(self.sent) - len(kept), kept
            return removed

    @property
    def texts(self) -> list[tuple[str, str]]:
        """(recipient, text) of each message sent."""
        return [(message.to, message.text) for message, _ in self.sent]


@dataclass
class FakeRecordings:
    """Vonage's file API over a dict of URL to bytes."""

    files: dict[str, bytes] = field(default_factory=dict)
    downloads: list[str] = field(default_factory=list)

    def download(self, url: str) -> bytes:
        self.downloads.append(url)
        if url not in self.files:
            raise NotFound(f"no recording at {url}")
        return self.files[url]


@dataclass
class FakeCalls:
    """Call control that places nothing and keeps each call asked for."""

    placed: list[OutboundCall] = field(default_factory=list)

    def check_credentials(self, credentials: VonageCredentials) -> None:
        return None

    def create_call(self, call: OutboundCall, credentials: VonageCredentials) -> str:
        self.placed.append(call)
        return f"call-{len(self.placed):04d}"


@dataclass
class QueuedTasks:
    """A task queue that keeps its tasks for the test to run, once per name as Cloud Tasks does."""

    tasks: dict[str, Task] = field(default_factory=dict)

    def enqueue(self, task: Task) -> None:
        self.tasks.setdefault(task.name, task)


@dataclass(frozen=True)
class HttpAnswer:
    status_code: int = 200
    text: str = ""


@dataclass
class FakeHttp:
    """An HTTP client that answers every request with `answer` and keeps the requests."""

    answer: HttpAnswer = field(default_factory=HttpAnswer)
    requests: list[tuple[str, str, bytes | None, dict[str, str]]] = field(default_factory=list)

    def request(self, method: str, url: str, **options: Any) -> HttpAnswer:
        """HttpClient.request: the body and headers are kept, the other options ignored."""
        self.requests.append((method, url, options.get("data"), dict(options.get("headers") or {})))
        return self.answer


@dataclass
class FakeServices:
    """Every port a flow may ask for, in memory but for the store (a folder under the test's tmp_path)."""

    settings: Settings
    store: LocalBlobStore
    transcriber: FakeTranscriber = field(default_factory=FakeTranscriber)
    messenger: SentMessages = field(default_factory=SentMessages)
    recordings: FakeRecordings = field(default_factory=FakeRecordings)
    calls: FakeCalls = field(default_factory=FakeCalls)
    queue: QueuedTasks = field(default_factory=QueuedTasks)
    http: FakeHttp = field(default_factory=FakeHttp)
    clock: FakeClock = field(default_factory=FakeClock)
    # Engines other than the deployment's TRANSCRIBER (`transcriber`), by name.
    engines: dict[str, FakeTranscriber] = field(default_factory=dict)

    @classmethod
    def on(cls, folder: Path, settings: Settings) -> FakeServices:
        return cls(settings, LocalBlobStore(folder / "data"))

    def transcriber_for(self, engine: str) -> FakeTranscriber:
        return self.engines.get(engine, self.transcriber)


def _serves_every_flow(services: FakeServices) -> tuple[RecordedCallServices, PromptServices]:
    """Never called: mypy checks here that FakeServices satisfies each flow's ports."""
    return services, services
