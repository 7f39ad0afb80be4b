"""Cloud Storage as it really fails, one rule at a time: GcsBlobStore and the recording's steps
against the emulator behind the fault proxy. Each test scripts the fault its rule is about."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from shared.adapters.gcs_blob_store import GcsBlobStore, StorageRetry
from shared.core.ports import StorageConflict, StorageUnavailable
from shared.core.wav import parse_wav
from shared.flows.documents import claim_once
from shared.flows.stream_audio import StreamRecording
from shared.runtime.storage_lane import BackgroundStorageLane
from tests.faultproxy import ERROR, RESET, FaultProxy, FaultRates, Request
from tests.servers import Emulator, fresh_bucket, gcs_client
from tests.testbed import QUICK_RETRY

# The proxy stands in front of the storage emulator.
pytestmark = pytest.mark.slow


# What Google's retry strategy says to retry: 408, 429 and 5xx.
STATUSES = (408, 429, 500, 502, 503, 504)


def stores(faults: FaultProxy, emulator: Emulator, retry: StorageRetry = QUICK_RETRY) -> tuple[GcsBlobStore, Any]:
    """A fresh bucket: tapedeck's store through the proxy, and the emulator's own view of it."""
    name = fresh_bucket(emulator)
    store = GcsBlobStore(name, gcs_client(Emulator(faults.url, name)), retry)
    return store, gcs_client(emulator).bucket(name)


def uploads_of(name: str) -> Any:
    return lambda request: request.kind == "upload" and request.name == name


def test_a_write_applied_before_its_answer_was_lost_is_known_as_our_own(
    faults: FaultProxy, storage_emulator: Emulator
) -> None:
    store, bucket = stores(faults, storage_emulator)
    first = store.write("calls/A/call.json", b'{"n": 1}', "application/json", if_generation_match=0)
    faults.inject(RESET, uploads_of("calls/A/call.json"))
    second = store.write("calls/A/call.json", b'{"n": 2}', "application/json", if_generation_match=first)
    # Applied, its answer lost, retried, answered 412: still our write, at the generation stored.
    assert [(s.fault, s.status) for s in faults.seen if s.kind == "upload"][-2:] == [(RESET, None), (None, 412)]
    assert second == bucket.get_blob("calls/A/call.json").generation != first
    assert store.read("calls/A/call.json").data == b'{"n": 2}'  # type: ignore[union-attr]

    # A claim whose answer was lost is still the claimant's, and only its.
    faults.inject(RESET, uploads_of("jobs/j.json"))
    assert claim_once(store, "jobs/j.json", {"by": "first"}) is True
    assert claim_once(store, "jobs/j.json", {"by": "second"}) is False
    assert json.loads(store.read("jobs/j.json").data) == {"by": "first"}  # type: ignore[union-attr]


def test_another_writer_is_still_a_conflict(faults: FaultProxy, storage_emulator: Emulator) -> None:
    store, _ = stores(faults, storage_emulator)
    seen = store.write("doc.json", b"1", if_generation_match=0)
    store.write("doc.json", b"2", if_generation_match=seen)
    faults.inject(RESET, uploads_of("doc.json"))
    with pytest.raises(StorageConflict):
        store.write("doc.json", b"3", if_generation_match=seen)
    assert store.read("doc.json").data == b"2"  # type: ignore[union-attr]


def test_a_replayed_compose_round_appends_nothing_twice(faults: FaultProxy, storage_emulator: Emulator) -> None:
    store, _ = stores(faults, storage_emulator)
    # 33 sources: the first 32 composed into an intermediate object, then it and the last.
    keys = [f"calls/A/parts/s/{i:06d}.pcm" for i in range(33)]
    for i, key in enumerate(keys):
        store.write(key, bytes([i]) * 3)
    # Every compose request, intermediate and final, is applied and then its answer lost, once.
    composed: set[str] = set()

    def first_time(request: Request) -> bool:
        if request.kind != "compose" or request.name in composed:
            return False
        composed.add(request.name)
        return True

    faults.inject(RESET, first_time, times=100)
    store.compose("calls/A/audio.wav", keys, "audio/wav")
    assert len([s for s in faults.seen if s.kind == "compose" and s.fault == RESET]) == 2
    assert store.read("calls/A/audio.wav").data == b"".join(bytes([i]) * 3 for i in range(33))  # type: ignore[union-attr]
    # The intermediate objects are gone; the sources are left in place.
    assert [info.key for info in store.list("calls/A/")] == ["calls/A/audio.wav", *keys]


@pytest.mark.parametrize("kind", ["upload", "download", "get", "list", "delete", "compose"])
def test_every_request_is_retried_on_408_429_and_5xx(faults: FaultProxy, storage_emulator: Emulator, kind: str) -> None:
    store, _ = stores(faults, storage_emulator)
    store.write("p/0", b"ab")
    store.write("p/1", b"cd")
    for status in STATUSES:
        faults.inject(ERROR, lambda request: request.kind == kind, status=status)
    if kind == "upload":
        store.write("p/0", b"AB")
    elif kind in ("download", "get"):
        assert store.read("p/0").data == b"ab"  # type: ignore[union-attr]
    elif kind == "list":
        assert [info.key for info in store.list("p/")] == ["p/0", "p/1"]
    elif kind == "delete":
        store.delete("p/1")
    else:
        store.compose("out", ["p/0", "p/1"], "audio/wav")
    assert [(s.kind, s.status) for s in faults.faults()] == [(kind, status) for status in STATUSES]
    assert store.retries == len(STATUSES)


def test_storage_failing_past_the_deadline_is_unavailable(faults: FaultProxy, storage_emulator: Emulator) -> None:
    store, _ = stores(faults, storage_emulator, StorageRetry(initial=0.05, maximum=0.2, deadline=1.0))
    faults.rates = FaultRates(errors=1.0)
    started = time.monotonic()
    with pytest.raises(StorageUnavailable, match=r"still failing after 1\.0 s"):
        store.write("p/0", b"x")
    assert 0.5 < time.monotonic() - started < 3
    assert store.retries >= 3


class LostThenFailing:
    """The first upload of `name` that holds `marker` is applied and its answer lost; the uploads of
    `name` in the `seconds` after it fail, so that the store gives up on the write it had made."""

    def __init__(self, faults: FaultProxy, name: str, marker: bytes, seconds: float) -> None:
        self.name, self.marker, self.seconds = name, marker, seconds
        self.lost_at: float | None = None
        faults.inject(RESET, self.lose)
        faults.inject(ERROR, self.failing, times=10_000)

    def lose(self, request: Request) -> bool:
        if request.kind == "upload" and request.name == self.name and self.marker in request.body:
            self.lost_at = time.monotonic()
            return True
        return False

    def failing(self, request: Request) -> bool:
        return (
            self.lost_at is not None
            and request.kind == "upload"
            and request.name == self.name
            and time.monotonic() - self.lost_at < self.seconds
        )


def test_a_recording_step_tried_again_after_its_write_was_applied_changes_call_json_once(
    faults: FaultProxy, storage_emulator: Emulator
) -> None:
    """The registration and the key press are applied, their answers lost, and storage fails past
    the store's deadline, so the lane runs each step again: one entry, one key press."""
    store, _ = stores(faults, storage_emulator, StorageRetry(initial=0.02, maximum=0.05, deadline=0.3))
    doc = "calls/CON-1/call.json"
    registration = LostThenFailing(faults, doc, b'"streaming"', 0.6)
    key_press = LostThenFailing(faults, doc, b'"digit"', 0.6)
    lane = BackgroundStorageLane(backoff=(0.1, 0.2))
    recording = StreamRecording(store, "CON-1", "s1", 16000, 256 * 1024, lane=lane)
    recording.start("leg-1", "447700900123", "447700900000")
    recording.add_audio(bytes(32000))
    recording.add_dtmf("5", 100)
    recording.add_audio(bytes(32000))
    summary = recording.finish("hangup", timeout=30)

    assert registration.lost_at is not None and key_press.lost_at is not None
    assert summary is not None and summary.object_key == "calls/CON-1/audio.wav"
    assert lane.failures >= 2
    call = json.loads(store.read(doc).data)  # type: ignore[union-attr]
    assert [(r["session"], r["object"], r["state"]) for r in call["recordings"]] == [
        ("s1", "calls/CON-1/audio.wav", "complete")
    ]
    assert [(k["digit"], k["at"]) for k in call["dtmf"]] == [("5", 1.0)]
    assert parse_wav(store.read("calls/CON-1/audio.wav").data).pcm == bytes(64000)  # type: ignore[union-attr]
