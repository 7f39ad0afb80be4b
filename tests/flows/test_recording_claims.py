"""Exactly once under concurrency: the job claim is the one gate before a recording is downloaded,
transcribed, linked and paged, in-process against fakes of the ports."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.adapters.local_blob_store import LocalBlobStore
from shared.adapters.local_task_queue import LocalTaskQueue
from shared.adapters.outbox_messenger import OutboxMessenger
from shared.config.routes import parse_routes
from shared.config.settings import Settings, StreamSettings
from shared.core.errors import TapedeckError
from shared.core.ports import Transcript, TranscriptionJob
from shared.core.tokens import sign_caller
from shared.flows.jobs import CLAIM_LEASE, job_key
from shared.flows.transcription import receive_recording, run_transcription
from tests.testbed import DATA, TOKEN_SECRET

MAILBOX, CALLER, CONVERSATION = "447700900001", "447700900123", "CON-7d3e1f20-1c2b-4a5d-9e8f-0a1b2c3d4e5f"
OWNERS = ("447700900111", "447700900222")
ROUTES = f'"{MAILBOX}":\n  flow: voicemail\n  owner: Sam\n  recipients: ["{OWNERS[0]}", "{OWNERS[1]}"]\n'
MESSAGE = (DATA / "voicemail_outage.wav").read_bytes()


class UnavailableError(TapedeckError):
    status = 502


@dataclass
class CountingRecordings:
    """Vonage's file API, slow enough that concurrent deliveries overlap; can fail its first calls."""

    failures: int = 0
    downloads: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def download(self, url: str) -> bytes:
        with self.lock:
            self.downloads += 1
            failing = self.downloads <= self.failures
        time.sleep(0.05)
        if failing:
            raise UnavailableError("recording download answered 503")
        return MESSAGE


@dataclass
class CountingTranscriber:
    started: list[str] = field(default_factory=list)

    def start(self, job: TranscriptionJob) -> Transcript | None:
        self.started.append(job.name)
        return Transcript(job.name, "completed", "the database is down")

    def collect(self, job_name: str) -> Transcript:
        raise AssertionError("an in-process engine is never collected")

    def discard(self, job_name: str) -> int:
        return 0


@dataclass
class ClaimServices:
    """The real local store, outbox and queue, with counting fakes of the recordings and the engine."""

    settings: Settings
    store: LocalBlobStore
    messenger: OutboxMessenger
    recordings: CountingRecordings
    transcriber: CountingTranscriber
    http: requests.Session = field(default_factory=requests.Session)
    queue: LocalTaskQueue = field(init=False)

    def __post_init__(self) -> None:
        self.queue = LocalTaskQueue(self.store)

    def transcriber_for(self, engine: str) -> CountingTranscriber:
        return self.transcriber


@pytest.fixture
def services(tmp_path: Path) -> ClaimServices:
    store = LocalBlobStore(tmp_path / "data")
    settings = Settings(
        stream=StreamSettings(token_secret=TOKEN_SECRET),
        public_url="https://fn.example.test",
        routes=parse_routes(ROUTES, "routes.yaml", default_flow="stream"),
    )
    return ClaimServices(settings, store, OutboxMessenger(store), CountingRecordings(), CountingTranscriber())


def webhook(recording_uuid: str = "5f0c8d2e-3b4a-4c1d-9e7f-8a6b5c4d3e2f") -> dict[str, Any]:
    # The seal the record eventUrl carries (shared.flows.jobs.recording_event_url).
    seal = sign_caller(TOKEN_SECRET, CONVERSATION, f"{CALLER}|{MAILBOX}")
    return {
        "recording_url": f"https://api.nexmo.com/v1/files/{recording_uuid}",
        "size": len(MESSAGE),
        "recording_uuid": recording_uuid,
        "conversation_uuid": CONVERSATION,
        "timestamp": "2026-11-30T09:15:40.426Z",
        "caller": CALLER,
        "to": MAILBOX,
        "sig": seal,
    }


def deliver_concurrently(count: int, work: Callable[[], Any]) -> list[Any]:
    start = threading.Barrier(count)

    def run(_: int) -> Any:
        start.wait()
        try:
            return work()
        except TapedeckError as err:
            return err

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_ten_concurrent_deliveries_start_one_download_transcription_link_and_page(services: ClaimServices) -> None:
    jobs = deliver_concurrently(10, lambda: receive_recording(services, webhook(), time.time()))
    started = [job for job in jobs if job is not None]
    assert len(started) == 1 and services.recordings.downloads == 1
    assert run_transcription(services, started[0], time.time()) == "completed"
    # The queue delivers at least once: the task run again changes nothing.
    assert run_transcription(services, started[0], time.time()) == "already handled"
    assert services.transcriber.started == [started[0].name]
    assert len(services.store.list("links/")) == 1
    pages = services.store.list("outbox/")
    assert sorted(info.key.rsplit("-", 1)[1] for info in pages) == [f"{owner}.json" for owner in OWNERS]


def test_a_failed_download_releases_the_claim_so_the_retry_is_taken(services: ClaimServices) -> None:
    services.recordings.failures = 1
    with pytest.raises(UnavailableError):
        receive_recording(services, webhook(), time.time())
    assert services.store.list("jobs/") == []  # as if the failed delivery had never come
    job = receive_recording(services, webhook(), time.time())
    assert job is not None and services.recordings.downloads == 2


def test_a_claim_left_by_a_request_that_died_is_taken_over_after_its_lease(services: ClaimServices) -> None:
    now = time.time()
    job = receive_recording(services, webhook(), now)
    assert job is not None
    # The request that claimed it died before finishing: its job stays `received`.
    services.store.delete(job_key(job.name))
    services.store.write(job_key(job.name), b'{"state": "received", "received_at": %f}' % now)
    assert receive_recording(services, webhook(), now + 60) is None
    taken = deliver_concurrently(5, lambda: receive_recording(services, webhook(), now + CLAIM_LEASE + 1))
    assert sum(result is not None for result in taken) == 1
