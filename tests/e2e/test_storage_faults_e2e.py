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

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.gcs_blob_store import GcsBlobStore
from shared.core.wav import parse_wav
from tests.bundles import entrypoint
from tests.faultproxy import ERROR, RESET, SLOW, FaultProxy, FaultRates
from tests.servers import BIN, ROOT, Emulator, free_port, fresh_bucket, gcs_client, running
from tests.testbed import DATA, SECRET, TOKEN_SECRET
from tools.standin import DtmfPress, VonageStandin

pytestmark = pytest.mark.slow

FIXTURE = DATA / "voicemail_outage.wav"
FIXTURE_PCM = parse_wav(FIXTURE.read_bytes()).pcm
CALLS = 20
KEYS = [DtmfPress("5", 1.0), DtmfPress("#", 2.5)]
# The bench's rates, with shorter slow answers to keep the test's time down.
FAULTS = FaultRates(errors=0.15, resets=0.05, slow=0.05, slow_seconds=(0.2, 1.0))
EVENTS = ["started", "ringing", "answered", "transfer", "completed"]


@dataclass
class FaultyPlatform:
    proxy: FaultProxy
    store: GcsBlobStore  # the emulator itself, past the proxy: what is really stored
    answer_url: str
    event_url: str
    logs: Path


@pytest.fixture
def faulty(storage_emulator: Emulator, tmp_path: Path) -> Iterator[FaultyPlatform]:
    bucket = fresh_bucket(storage_emulator)
    recorder_port, answer_port, event_port = free_port(), free_port(), free_port()
    logs = tmp_path / "logs"
    logs.mkdir()
    with FaultProxy(storage_emulator.url, seed=20261207) as proxy:
        env = {
            "STORAGE": "gcs",
            "GCS_BUCKET": bucket,
            "STORAGE_EMULATOR_HOST": proxy.url,
            "STREAM_TOKEN_SECRET": TOKEN_SECRET,
            "VONAGE_SIGNATURE_SECRET": SECRET,
            "RECORDER_URL": f"ws://127.0.0.1:{recorder_port}/socket",
            "PUBLIC_URL": f"http://127.0.0.1:{event_port}",
            "PATH": f"{BIN}:/usr/bin:/bin",
        }
        # The recorder as App Engine starts it: app.yaml's entrypoint, as written.
        recorder_env = env | {"PORT": str(recorder_port), "HOME": str(tmp_path)}
        command = ["/bin/sh", "-c", f"exec {entrypoint(ROOT)}"]
        with running(command, recorder_env, f"http://127.0.0.1:{recorder_port}/healthz", logs / "recorder.log"):
            functions = [str(BIN / "functions-framework"), "--source=functions/main.py", "--host=127.0.0.1"]
            answer_cm = running(
                [*functions, "--target=answer", f"--port={answer_port}"],
                env | {"PYTHONPATH": str(ROOT)},
                f"http://127.0.0.1:{answer_port}/x",
                logs / "answer.log",
            )
            event_cm = running(
                [*functions, "--target=event", f"--port={event_port}"],
                env | {"PYTHONPATH": str(ROOT)},
                f"http://127.0.0.1:{event_port}/x",
                logs / "event.log",
            )
            with answer_cm, event_cm:
                yield FaultyPlatform(
                    proxy,
                    GcsBlobStore(bucket, gcs_client(storage_emulator)),
                    f"http://127.0.0.1:{answer_port}/",
                    f"http://127.0.0.1:{event_port}/",
                    logs,
                )


def _settled(store: GcsBlobStore, conversation_uuid: str) -> dict[str, Any] | None:
    """call.json once its recordings are complete and their parts gone, else None."""
    blob = store.read(f"calls/{conversation_uuid}/call.json")
    if blob is None:
        return None
    call: dict[str, Any] = json.loads(blob.data)
    done = call["recordings"] and all(r["state"] == "complete" for r in call["recordings"])
    statuses = {e["status"] for e in call["events"]}
    if done and "completed" in statuses and not store.list(f"calls/{conversation_uuid}/parts/"):
        return call
    return None


def _wait_settled(store: GcsBlobStore, conversation_uuid: str, deadline: float) -> dict[str, Any]:
    while time.monotonic() < deadline:
        call = _settled(store, conversation_uuid)
        if call is not None:
            return call
        time.sleep(0.25)
    blob = store.read(f"calls/{conversation_uuid}/call.json")
    names = [info.key for info in store.list(f"calls/{conversation_uuid}/")]
    raise AssertionError(f"{conversation_uuid} never settled: {names}\n{blob.data.decode() if blob else ''}")


def test_concurrent_calls_through_failing_storage_are_stored_exactly_once(faulty: FaultyPlatform) -> None:
    faulty.proxy.rates = FAULTS

    def ring(_: int) -> Any:
        standin = VonageStandin(SECRET)
        return standin.inbound_call(faulty.answer_url, faulty.event_url, FIXTURE, fast=True, dtmf=KEYS)

    with ThreadPoolExecutor(CALLS) as pool:
        reports = list(pool.map(ring, range(CALLS)))
    deadline = time.monotonic() + 90
    calls = {
        report.conversation_uuid: _wait_settled(faulty.store, report.conversation_uuid, deadline) for report in reports
    }
    faulty.proxy.rates = FaultRates()

    for report in reports:
        conversation_uuid = report.conversation_uuid
        call = calls[conversation_uuid]
        (recording,) = call["recordings"]
        assert recording["object"] == f"calls/{conversation_uuid}/audio.wav"
        assert (recording["state"], recording["bytes"]) == ("complete", len(FIXTURE_PCM))
        assert [(d["digit"], d["at"], d["session"]) for d in call["dtmf"]] == [
            ("5", 1.0, recording["session"]),
            ("#", 2.5, recording["session"]),
        ]
        assert [e["status"] for e in call["events"]] == EVENTS
        wav = faulty.store.read(f"calls/{conversation_uuid}/audio.wav")
        assert wav is not None and parse_wav(wav.data).pcm == FIXTURE_PCM
        assert wav.data[:44] == FIXTURE.read_bytes()[:44]
        stored = sorted(info.key.rsplit("/", 1)[-1] for info in faulty.store.list(f"calls/{conversation_uuid}/"))
        assert stored == ["audio.wav", "call.json"]
    # The faults really happened, of every kind, to the recorder's writes as well as to the rest.
    seen = faulty.proxy.faults()
    assert {s.fault for s in seen} == {ERROR, RESET, SLOW}
    assert {s.kind for s in seen if s.fault == RESET} >= {"upload", "compose"}
    assert len(faulty.proxy.faults("compose")) >= 3
