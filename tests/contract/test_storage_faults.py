"""Cloud Storage as it really fails, one rule at a time: GcsBlobStore against the emulator behind
the fault proxy. Each test scripts the fault its rule is about."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from shared.adapters.gcs_blob_store import GcsBlobStore, StorageRetry
from shared.core.ports import StorageConflict, StorageUnavailable
from shared.flows.documents import claim_once
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
    # 66 sources: two groups of 32 and one of 2 composed apart, then the three together.
    keys = [f"calls/A/parts/s/{i:06d}.pcm" for i in range(66)]
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
    assert len([s for s in faults.seen if s.kind == "compose" and s.fault == RESET]) == 4
    assert store.read("calls/A/audio.wav").data == b"".join(bytes([i]) * 3 for i in range(66))  # type: ignore[union-attr]
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
