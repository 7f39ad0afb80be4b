"""Settling recordings and the sweep, in-process on fakes: each recording of a stream ends
complete, recovered, partial or failed, once; its log line, its problem and its route's
recording_webhook follow; the sweep recovers what a dead recorder left, works in batches from where
it stopped, and holds a call it cannot settle until an operator asks for a retry."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from shared.config.settings import Settings
from shared.core.operations import Event, ProblemKind
from shared.core.recording_outcome import UNFINISHED_LIMIT
from shared.flows.calls import read_call, update_call
from shared.flows.inbound import record_call_event
from shared.flows.problems import list_problems, request_retry
from shared.flows.recording_outcomes import PENDING_PREFIX, Settlement, follow_call_end, settle_recordings
from shared.flows.stream_audio import StreamRecording
from shared.flows.sweep import CURSOR_KEY, run_sweep
from shared.runtime.logs import JsonFormatter
from shared.runtime.task_dispatch import run_task
from tests.fakes import FakeClock, FakeServices
from tools.monitoring import METRICS

COUNTED_BY = {metric.name: metric for metric in METRICS}

NUMBER, VOICEMAIL, CALLER = "447700900004", "447700900003", "447700900123"
HOOK = "http://127.0.0.1:9/recordings"
CHUNK = 256 * 1024
GRACE = 5.0


@pytest.fixture
def services(tmp_path: Path) -> FakeServices:
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        f'"{NUMBER}":\n  flow: stream\n  recording_webhook: {HOOK}\n'
        f'"{VOICEMAIL}":\n  flow: voicemail\n  owner: Sam\n  recipients: ["447700900111"]\n  capture: stream\n'
    )
    env = {
        "ROUTES_FILE": str(routes),
        "RECORDING_GRACE_SECONDS": str(GRACE),
        "SWEEP_BATCH": "2",
        "ALLOW_PRIVATE_CALLBACKS": "true",
        "CALLBACK_SECRET": "recording-secret",
        "VONAGE_APPLICATION_ID": "app",
        "VONAGE_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----",
    }
    fakes = FakeServices.on(tmp_path, Settings.from_env(env))
    # Parts are dated by the file system's clock, so the test's clock starts from it.
    fakes.clock = FakeClock(time.time())
    return fakes


def event(services: FakeServices, call: str, status: str, at: float, leg: str = "leg-1", to: str = NUMBER) -> None:
    params = {"conversation_uuid": call, "uuid": leg, "status": status, "timestamp": _iso(at)}
    params |= {"from": CALLER, "to": to, "direction": "inbound"}
    recorded = record_call_event(services, params, services.clock())
    assert recorded is not None
    follow_call_end(services, recorded.call, recorded.leg)


def _iso(at: float) -> str:
    from shared.core.times import iso

    return iso(at)


def stream(
    services: FakeServices, call: str, seconds: float, *, finish: str | None = "hangup", to: str = NUMBER
) -> str:
    """A stream of `seconds` of audio sent at once, started now; finished unless its recorder died."""
    recording = StreamRecording(
        services.store, call, f"s{len(call):02d}{int(seconds * 10):09d}", 16000, CHUNK, services.clock
    )
    recording.start("leg-1", CALLER, to)
    recording.add_audio(b"\x01\x00" * int(seconds * 16000))
    if finish is not None:
        recording.finish(finish)
    return recording.session


def run_queued(services: FakeServices) -> list[str]:
    """Run every task queued so far (and those they queue), as the tasks function would."""
    results = []
    while services.queue.tasks:
        name, task = next(iter(services.queue.tasks.items()))
        del services.queue.tasks[name]
        results.append(run_task(services, task, 1, services.clock()))
    return results


def finals(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The recording.final log lines, as Cloud Logging would read them."""
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    return [line for line in lines if line.get("event") == Event.RECORDING_FINAL]


def delivered(services: FakeServices) -> list[dict[str, Any]]:
    return [json.loads(body or b"{}") for _, url, body, _ in services.http.requests if url == HOOK]


def recordings(services: FakeServices, call: str) -> list[dict[str, Any]]:
    found = read_call(services.store, call)
    assert found is not None
    return [entry.to_json() for entry in found.recordings]


def test_a_call_that_ends_with_its_stream_is_complete_and_its_webhook_arrives_once(
    services: FakeServices, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    start = services.clock()
    event(services, "CON-a", "answered", start)
    session = stream(services, "CON-a", 10.0)
    event(services, "CON-a", "completed", start + 10.4)

    assert [t.kind for t in services.queue.tasks.values()] == ["settle-recordings"]
    run_queued(services)
    event(services, "CON-a", "completed", start + 10.4, leg="leg-socket")  # a later leg's end asks again
    run_queued(services)

    (entry,) = recordings(services, "CON-a")
    assert (entry["state"], entry["settled_at"] is not None, "gaps" not in entry) == ("complete", True, True)
    (hook,) = delivered(services)
    assert hook["state"] == "complete" and hook["session"] == session and hook["gaps"] == []
    assert hook["duration"] == 10.0 and hook["link"].startswith("http://localhost:8080/link?id=")
    (line,) = finals(caplog)
    assert (line["severity"], line["call"], line["state"], line["duration"], line["gaps"]) == (
        "INFO", "CON-a", "complete", 10.0, 0,
    )  # fmt: skip
    assert not any(metric.counts(line) for metric in METRICS)
    assert list_problems(services.store)[0] == [] and services.store.list(PENDING_PREFIX) == []


def test_a_dead_recorder_is_recovered_after_the_grace_and_reported_partial(
    services: FakeServices, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    clock = services.clock
    start = clock()
    event(services, "CON-b", "answered", start)
    stream(services, "CON-b", 9.0, finish=None)  # one part of 8.192 s flushed, then the recorder died
    clock.advance(20)
    event(services, "CON-b", "completed", clock())

    assert run_queued(services) == ["waiting"]
    assert recordings(services, "CON-b")[0]["state"] == "streaming"
    assert [i.key for i in services.store.list(PENDING_PREFIX)] == [f"{PENDING_PREFIX}CON-b.json"]
    assert run_sweep(services, clock()).waiting == 1  # within the grace: left alone
    clock.advance(GRACE)
    report = run_sweep(services, clock())
    assert (report.settled, report.waiting) == (1, 0)
    run_queued(services)
    assert run_sweep(services, clock.advance(60)).looked_at == 0
    run_queued(services)

    (entry,) = recordings(services, "CON-b")
    assert entry["state"] == "partial" and entry["recovered_at"] and entry["bytes"] == CHUNK
    (gap,) = entry["gaps"]
    assert gap["at"] == 8.192 and gap["seconds"] == pytest.approx(20 - 8.192, abs=0.01)
    (hook,) = delivered(services)
    assert (hook["state"], hook["gaps"], hook["end_reason"]) == ("partial", entry["gaps"], "recorder stopped")
    (line,) = finals(caplog)
    assert (line["severity"], line["state"], line["missing_seconds"]) == ("WARNING", "partial", gap["seconds"])
    # The deploy's metric counts this line, and the failed one does not.
    assert COUNTED_BY["tapedeck_recordings_incomplete"].counts(line)
    assert not COUNTED_BY["tapedeck_recordings_failed"].counts(line)
    (problem,) = list_problems(services.store)[0]
    assert (problem.kind, problem.call, problem.retryable) == (ProblemKind.RECORDING, "CON-b", False)
    assert problem.summary.startswith("partial: 8.2 s recorded, 11.8 s missing")
    assert services.store.list("calls/CON-b/parts/") == []


def test_a_recorder_that_died_as_the_caller_hung_up_is_recovered(services: FakeServices) -> None:
    start = services.clock()
    event(services, "CON-c", "answered", start)
    stream(services, "CON-c", 8.192, finish=None)
    event(services, "CON-c", "completed", start + 9.0)
    services.clock.advance(9.0 + GRACE + 1)
    run_sweep(services, services.clock())
    run_queued(services)
    assert recordings(services, "CON-c")[0]["state"] == "recovered"
    assert [h["state"] for h in delivered(services)] == ["recovered"]


def test_an_answered_stream_call_with_no_stream_or_no_audio_fails(
    services: FakeServices, caplog: pytest.LogCaptureFixture
) -> None:
    start = services.clock()
    event(services, "CON-d", "answered", start)
    event(services, "CON-d", "completed", start + 12)
    event(services, "CON-e", "answered", start)
    stream(services, "CON-e", 0.0)
    event(services, "CON-e", "completed", start + 12)
    run_queued(services)
    # Without a stream, the grace is waited out: one may still be starting.
    assert recordings(services, "CON-d") == [] and recordings(services, "CON-e")[0]["state"] == "failed"
    services.clock.advance(GRACE + 13)
    run_sweep(services, services.clock())
    run_queued(services)

    (none,) = recordings(services, "CON-d")
    assert (none["state"], none["object"], none["end_reason"]) == ("failed", "", "no stream connected")
    hooks = {h["conversation_uuid"]: h for h in delivered(services)}
    assert (hooks["CON-d"]["state"], hooks["CON-d"]["link"]) == ("failed", None)
    assert (hooks["CON-e"]["state"], hooks["CON-e"]["end_reason"]) == ("failed", "hangup")
    assert {p.summary for p in list_problems(services.store)[0]} == {
        "failed: no stream connected",
        "failed: no audio received",
    }
    lines = finals(caplog)
    assert len(lines) == 2 and all(COUNTED_BY["tapedeck_recordings_failed"].counts(line) for line in lines)


def test_a_stream_that_ended_while_the_caller_stayed_is_partial_without_waiting(services: FakeServices) -> None:
    start = services.clock()
    event(services, "CON-f", "answered", start)
    stream(services, "CON-f", 5.0, finish="idle timeout")
    event(services, "CON-f", "completed", start + 65)
    run_queued(services)
    (entry,) = recordings(services, "CON-f")
    assert entry["state"] == "partial" and entry["gaps"][0]["seconds"] == pytest.approx(60, abs=0.01)


def test_a_call_vonage_never_ends_waits_then_is_settled_as_assembled(services: FakeServices) -> None:
    start = services.clock()
    event(services, "CON-g", "answered", start)
    stream(services, "CON-g", 3.0)
    assert settle_recordings(services, "CON-g", services.clock()) == Settlement.WAITING
    assert run_sweep(services, start + UNFINISHED_LIMIT - 1).waiting == 1
    assert run_sweep(services, start + UNFINISHED_LIMIT + 1).settled == 1
    assert recordings(services, "CON-g")[0]["state"] == "complete"


def test_a_live_voicemail_taken_by_the_fallback_recording_is_no_failed_stream(services: FakeServices) -> None:
    from shared.core.call_record import Flow, StoredRecording

    start = services.clock()
    event(services, "CON-h", "answered", start, to=VOICEMAIL)
    update_call(
        services.store,
        "CON-h",
        lambda call: call.stored_recording(Flow.VOICEMAIL, StoredRecording("rec-1", "calls/CON-h/message.mp3", 9, "j")),
        start,
    )
    event(services, "CON-h", "completed", start + 20, to=VOICEMAIL)
    services.clock.advance(GRACE + 30)
    run_queued(services)
    assert settle_recordings(services, "CON-h", services.clock()) == Settlement.SETTLED
    assert recordings(services, "CON-h") == []


def test_the_sweep_works_through_waiting_calls_a_batch_a_run(services: FakeServices) -> None:
    start = services.clock()
    for call in ("CON-1", "CON-2", "CON-3"):
        event(services, call, "answered", start)
        stream(services, call, 2.0)
        settle_recordings(services, call, services.clock())
    first = run_sweep(services, start + 1)
    assert (first.looked_at, first.more) == (2, True)
    assert json.loads(services.store.read(CURSOR_KEY).data)["after"] == f"{PENDING_PREFIX}CON-2.json"  # type: ignore[union-attr]
    second = run_sweep(services, start + 2)
    assert (second.looked_at, second.more) == (1, False)
    assert run_sweep(services, start + 3).looked_at == 2  # round again from the first


def test_a_call_that_cannot_be_settled_is_held_until_a_retry_is_asked_for(services: FakeServices) -> None:
    start = services.clock()
    event(services, "CON-x", "answered", start)
    stream(services, "CON-x", 9.0, finish=None)
    event(services, "CON-x", "completed", start + 20)
    assert run_queued(services) == ["waiting"]

    def unreadable_rate(call: Any) -> None:
        call.recordings[0].sample_rate = 0

    update_call(services.store, "CON-x", unreadable_rate, start)
    services.clock.advance(GRACE + 21)
    assert run_sweep(services, services.clock()).held == 1
    (problem,) = list_problems(services.store)[0]
    assert problem.retryable and problem.summary.startswith("recordings could not be settled: ZeroDivisionError")
    assert run_sweep(services, services.clock()).held == 1  # not tried again on its own

    def repaired(call: Any) -> None:
        call.recordings[0].sample_rate = 16000

    update_call(services.store, "CON-x", repaired, start)
    assert request_retry(services.store, problem.kind, problem.ident, services.clock(), "ops@example.com")
    report = run_sweep(services, services.clock())
    run_queued(services)
    assert report.retried == 1 and recordings(services, "CON-x")[0]["state"] == "partial"
    assert [p.summary.split(":")[0] for p in list_problems(services.store)[0]] == ["partial"]
    assert [h["state"] for h in delivered(services)] == ["partial"]


def test_a_held_call_settled_by_a_later_task_leaves_no_held_problem(services: FakeServices) -> None:
    start = services.clock()
    event(services, "CON-y", "answered", start)
    stream(services, "CON-y", 9.0, finish=None)
    event(services, "CON-y", "completed", start + 20)
    run_queued(services)

    def broken(call: Any) -> None:
        call.recordings[0].sample_rate = 0

    def repaired(call: Any) -> None:
        call.recordings[0].sample_rate = 16000

    update_call(services.store, "CON-y", broken, start)
    services.clock.advance(GRACE + 21)
    assert run_sweep(services, services.clock()).held == 1
    update_call(services.store, "CON-y", repaired, start)
    assert settle_recordings(services, "CON-y", services.clock()) == Settlement.SETTLED
    assert [p.ident for p in list_problems(services.store)[0]] == [
        f"CON-y-{recordings(services, 'CON-y')[0]['session']}"
    ]
