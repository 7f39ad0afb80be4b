"""Cloud Storage as it really fails, end to end: concurrent calls through the recorder started as
app.yaml starts it (gunicorn, gevent, two workers) and the functions, with the storage emulator
behind the fault proxy (tests/faultproxy.py): a share of requests answered 503, 429, 500 or 408,
some connections reset after the request was applied, some answers slow, and generation
preconditions enforced as Cloud Storage enforces them.

Every call must come out as if nothing had failed: its WAV byte for byte, call.json naming that
WAV, one recording entry for its one stream, one entry per key press, every event kept, no parts
or intermediate objects left behind.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.faultproxy import ERROR, RESET, SLOW, FaultRates, Request
from tests.servers import Emulator
from tests.storage_platform import FIXTURE, KEYS, FaultyPlatform, call_problems, faulty_platform, wait_settled
from tests.testbed import SECRET
from tools.standin import VonageStandin

pytestmark = pytest.mark.slow

CALLS = 20
# The bench's rates, with shorter slow answers to keep the test's time down.
FAULTS = FaultRates(errors=0.15, resets=0.05, slow=0.05, slow_seconds=(0.2, 1.0))


@pytest.fixture
def faulty(storage_emulator: Emulator, tmp_path: Path) -> Iterator[FaultyPlatform]:
    with faulty_platform(storage_emulator, tmp_path) as platform:
        yield platform


def composes(request: Request) -> bool:
    return request.kind == "compose"


def call_json_writes(request: Request) -> bool:
    return request.kind == "upload" and request.name.endswith("/call.json")


def test_concurrent_calls_through_failing_storage_are_stored_exactly_once(faulty: FaultyPlatform) -> None:
    faulty.proxy.rates = FAULTS
    # Beside the rates, for certain: compose requests and writes of call.json applied with their
    # answers lost, and compose requests answered 503.
    faulty.proxy.inject(RESET, composes, times=3)
    faulty.proxy.inject(ERROR, composes, times=3, status=503)
    faulty.proxy.inject(RESET, call_json_writes, times=3)

    def ring(index: int) -> Any:
        # Callers 0.1 s apart: twenty calls at once saturate the emulator, which serves one request
        # at a time, until a webhook's answer can outlast the stand-in's 10 s.
        time.sleep(index * 0.1)
        standin = VonageStandin(SECRET)
        return standin.inbound_call(faulty.answer_url, faulty.event_url, FIXTURE, fast=True, dtmf=KEYS)

    with ThreadPoolExecutor(CALLS) as pool:
        reports = list(pool.map(ring, range(CALLS)))
    deadline = time.monotonic() + 90
    calls = {r.conversation_uuid: wait_settled(faulty.store, r.conversation_uuid, deadline) for r in reports}
    faulty.proxy.rates = FaultRates()

    problems = {uuid: call_problems(faulty.store, uuid, call) for uuid, call in calls.items()}
    assert {uuid: found for uuid, found in problems.items() if found} == {}
    assert all(set(report.event_statuses.values()) == {204} for report in reports)
    # The faults really happened, of every kind, to the recorder's writes as well as to the rest.
    seen = faulty.proxy.faults()
    assert {s.fault for s in seen} == {ERROR, RESET, SLOW}
    assert {s.kind for s in seen if s.fault == RESET} >= {"upload", "compose"}
    assert len(faulty.proxy.faults("compose")) >= 6
