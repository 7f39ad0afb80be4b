"""The fault proxy does what Cloud Storage does and the emulator does not: it enforces generation
preconditions on every kind of request, and fails as Cloud Storage fails, reproducibly."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
import requests

from tests.faultproxy import ERROR, RESET, SLOW, FaultProxy, FaultRates
from tests.servers import Emulator, fresh_bucket, gcs_client

# The proxy stands in front of the storage emulator.
pytestmark = pytest.mark.slow


def bucket_behind(faults: FaultProxy, emulator: Emulator) -> tuple[Any, Any]:
    """One fresh bucket, as clients of the proxy and of the emulator itself see it, without retries."""
    name = fresh_bucket(emulator)
    return gcs_client(Emulator(faults.url, name)).bucket(name), gcs_client(emulator).bucket(name)


def test_generation_preconditions_hold_on_uploads_compose_deletes_and_metadata(
    faults: FaultProxy, storage_emulator: Emulator
) -> None:
    from google.api_core.exceptions import NotModified, PreconditionFailed

    bucket, _ = bucket_behind(faults, storage_emulator)
    blob = bucket.blob("doc.json")
    blob.upload_from_string(b"1", if_generation_match=0, retry=None)
    first = blob.generation
    with pytest.raises(PreconditionFailed):
        bucket.blob("doc.json").upload_from_string(b"2", if_generation_match=0, retry=None)
    bucket.blob("doc.json").upload_from_string(b"2", if_generation_match=first, retry=None)
    with pytest.raises(PreconditionFailed):
        bucket.blob("doc.json").upload_from_string(b"3", if_generation_match=first, retry=None)
    with pytest.raises(PreconditionFailed):
        bucket.blob("doc.json").upload_from_string(b"3", if_generation_not_match=bucket.get_blob("doc.json").generation)
    current = bucket.get_blob("doc.json")
    with pytest.raises(NotModified):
        bucket.get_blob("doc.json", if_generation_not_match=current.generation)
    assert bucket.get_blob("doc.json", if_generation_match=current.generation).download_as_bytes() == b"2"

    with pytest.raises(PreconditionFailed):
        bucket.blob("out").compose([current], if_generation_match=12345, retry=None)
    with pytest.raises(PreconditionFailed):
        bucket.blob("out").compose([current], if_source_generation_match=[first], retry=None)
    bucket.blob("out").compose([current], if_generation_match=0, retry=None)

    current.metadata = {"a": "1"}
    with pytest.raises(PreconditionFailed):
        current.patch(if_metageneration_match=current.metageneration + 5, retry=None)
    current.patch(if_metageneration_match=current.metageneration, retry=None)
    with pytest.raises(PreconditionFailed):
        bucket.blob("doc.json").delete(if_generation_match=first, retry=None)
    bucket.blob("doc.json").delete(if_generation_match=current.generation, retry=None)
    assert bucket.get_blob("doc.json") is None


def test_an_error_is_answered_before_the_request_is_applied(faults: FaultProxy, storage_emulator: Emulator) -> None:
    from google.api_core.exceptions import TooManyRequests

    bucket, direct = bucket_behind(faults, storage_emulator)
    faults.inject(ERROR, lambda r: r.kind == "upload", status=429)
    with pytest.raises(TooManyRequests):
        bucket.blob("x").upload_from_string(b"x", retry=None)
    assert direct.get_blob("x") is None
    assert [(s.kind, s.fault, s.status) for s in faults.faults()] == [("upload", ERROR, 429)]


def test_a_reset_comes_after_the_request_was_applied(faults: FaultProxy, storage_emulator: Emulator) -> None:
    bucket, direct = bucket_behind(faults, storage_emulator)
    faults.inject(RESET, lambda r: r.kind == "upload" and r.name == "x")
    with pytest.raises(requests.ConnectionError):
        bucket.blob("x").upload_from_string(b"applied", retry=None)
    assert direct.get_blob("x").download_as_bytes() == b"applied"


def test_a_slow_answer_is_late_and_whole(faults: FaultProxy, storage_emulator: Emulator) -> None:
    bucket, _ = bucket_behind(faults, storage_emulator)
    bucket.blob("x").upload_from_string(b"late")
    faults.rates = FaultRates(slow=1.0, slow_seconds=(0.4, 0.4))
    started = time.monotonic()
    assert bucket.blob("x").download_as_bytes() == b"late"
    assert time.monotonic() - started >= 0.4
    assert {s.fault for s in faults.faults()} == {SLOW}


def test_the_same_seed_draws_the_same_faults(storage_emulator: Emulator) -> None:
    rates = FaultRates(errors=0.3, resets=0.2, slow=0.1, slow_seconds=(0.0, 0.0))

    def draws(seed: int) -> list[Any]:
        with FaultProxy(storage_emulator.url, rates, seed=seed) as proxy:
            name = fresh_bucket(storage_emulator)
            for n in range(20):
                with contextlib.suppress(requests.ConnectionError):
                    requests.get(f"{proxy.url}/storage/v1/b/{name}/o/x{n}", timeout=5)
            return [(s.fault, s.status) for s in proxy.seen]

    first = draws(11)
    assert first == draws(11) != draws(12)
    assert {fault for fault, _ in first} == {None, ERROR, RESET, SLOW}
