"""What operators see of pages, deliveries and tasks, in-process on fakes: each outcome is one JSON
log line with stable fields; a failed page, a failed delivery and a task the queue gave up on are
kept as problems; a retry asked for on the Problems page runs at the next sweep, once, and a
retry that succeeds clears its problem."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from shared.config.settings import DeliveryPolicy, Settings
from shared.core.errors import TapedeckError
from shared.core.operations import Event, ProblemKind
from shared.core.pin_prompt import PromptRequest, new_transaction
from shared.core.ports import TextMessage
from shared.core.tasks import Task
from shared.flows.pin_calls import transaction_key
from shared.flows.problems import dismiss_problem, list_problems, request_retry
from shared.flows.results import claim_result
from shared.flows.sweep import run_sweep
from shared.runtime.logs import JsonFormatter
from shared.runtime.task_dispatch import run_task
from tests.fakes import FakeServices, HttpAnswer, SentMessages
from tests.flows.mailbox import JOB, SPOKEN, received, voicemail_services
from tools.monitoring import METRICS

COUNTED_BY = {metric.name: metric for metric in METRICS}

CALL = "CON-8c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f"
HOOK = "http://127.0.0.1:9/results"
ATTEMPTS = 3


@pytest.fixture
def services(tmp_path: Path) -> FakeServices:
    policy = DeliveryPolicy(attempts=ATTEMPTS, allow_private=True, secret="s")
    return FakeServices.on(tmp_path, Settings(delivery=policy))


def lines(caplog: pytest.LogCaptureFixture, event: Event) -> list[dict[str, Any]]:
    """The log lines of one event, as Cloud Logging reads them."""
    found = [json.loads(JsonFormatter().format(record)) for record in caplog.records]
    return [line for line in found if line.get("event") == event]


def run_all(services: FakeServices, attempt: int = 1) -> list[str]:
    results = []
    while services.queue.tasks:
        name = next(iter(services.queue.tasks))
        results.append(run_task(services, services.queue.tasks.pop(name), attempt, services.clock()))
    return results


def test_a_delivery_given_up_is_a_problem_and_its_retry_delivers_it(
    services: FakeServices, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    claim_result(services, CALL, "rec-1", HOOK, {"event": "transcript"})
    (task,) = services.queue.tasks.values()
    services.http.answer = HttpAnswer(500)
    with pytest.raises(TapedeckError):
        run_task(services, task, 1, services.clock())
    assert run_task(services, task, ATTEMPTS, services.clock()) == "failed"

    (retrying,) = lines(caplog, Event.DELIVERY_RETRYING)
    (failed,) = lines(caplog, Event.DELIVERY_FAILED)
    assert failed | {"logger": "", "message": ""} == {
        "severity": "ERROR",
        "message": "",
        "logger": "",
        "event": "delivery.failed",
        "call": CALL,
        "delivery": "rec-1",
        "webhook": "result",
        "attempt": ATTEMPTS,
        "http": 500,
        "error": "HTTP 500",
    }
    assert retrying["attempt"] == 1 and retrying["severity"] == "WARNING"
    assert COUNTED_BY["tapedeck_deliveries_failed"].counts(failed)
    assert not COUNTED_BY["tapedeck_deliveries_failed"].counts(retrying)
    (problem,) = list_problems(services.store)[0]
    assert (problem.kind, problem.ident, problem.retryable) == (ProblemKind.DELIVERY, f"{CALL}-rec-1", True)
    assert problem.summary == f"result webhook to {HOOK}: HTTP 500 (attempt {ATTEMPTS})"

    services.queue.tasks.clear()
    assert request_retry(services.store, problem.kind, problem.ident, services.clock(), "ops")
    assert request_retry(services.store, problem.kind, problem.ident, services.clock(), "ops")  # asked twice, run once
    assert run_sweep(services, services.clock()).retried == 1
    (rerun,) = services.queue.tasks.values()
    assert rerun.name == "deliver-result-rec-1-rerun-1"
    services.http.answer = HttpAnswer(200)
    assert run_all(services) == ["delivered"]
    assert run_sweep(services, services.clock()).retried == 0
    assert list_problems(services.store)[0] == []
    assert [line["attempt"] for line in lines(caplog, Event.DELIVERY_DELIVERED)] == [1]


def test_a_pin_prompt_callback_given_up_is_retried_the_same_way(services: FakeServices) -> None:
    tid = "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a9f"
    request = PromptRequest("447700900001", "447700900000", "PIN?", "1234", HOOK)
    doc = new_transaction(tid, request, time.time(), 7).to_json() | {"status": "ok", "detail": "PIN entered correctly"}
    doc["callback"]["state"] = "sending"  # type: ignore[index]
    services.store.write(transaction_key(tid), json.dumps(doc).encode())
    services.http.answer = HttpAnswer(503)
    assert run_task(services, Task("deliver-callback", tid), ATTEMPTS, services.clock()) == "failed"
    (problem,) = list_problems(services.store)[0]
    assert (problem.ident, problem.call, problem.detail) == (f"prompt-{tid}", None, {"tid": tid})

    request_retry(services.store, problem.kind, problem.ident, services.clock(), "ops")
    run_sweep(services, services.clock())
    services.http.answer = HttpAnswer(200)
    assert run_all(services) == ["delivered"]
    assert list_problems(services.store)[0] == []


class FailingMessenger(SentMessages):
    def send(self, message: TextMessage, key: str) -> str:
        raise TapedeckError("SMS refused: throttled")


def test_a_page_that_fails_is_a_problem_and_its_retry_sends_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from shared.core.ports import Transcript
    from shared.flows.transcription import run_transcription

    caplog.set_level(logging.INFO)
    services = voicemail_services(tmp_path)
    job = received(services)
    services.transcriber.transcripts[JOB] = Transcript(JOB, "completed", SPOKEN)
    working, services.messenger = services.messenger, FailingMessenger()
    run_transcription(services, job, services.clock())

    failed = lines(caplog, Event.PAGE_FAILED)
    assert [(line["severity"], line["error"]) for line in failed] == [("ERROR", "SMS refused: throttled")] * 2
    assert all(COUNTED_BY["tapedeck_pages_failed"].counts(line) for line in failed)
    problems, _ = list_problems(services.store)
    assert sorted(p.detail["to"] for p in problems) == ["447700900111", "447700900222"]
    assert all(p.kind == ProblemKind.PAGE and p.retryable for p in problems)

    services.messenger = working
    first = problems[0]
    request_retry(services.store, first.kind, first.ident, services.clock(), "ops")
    assert run_sweep(services, services.clock()).retried == 1
    ((to, text),) = services.messenger.texts
    assert to == first.detail["to"] and SPOKEN.upper() in text
    assert [p.ident for p in list_problems(services.store)[0]] == [problems[1].ident]
    assert [line["to"] for line in lines(caplog, Event.PAGE_SENT)] == [to]


def test_a_task_that_fails_its_last_attempt_is_given_up_told_and_can_be_run_again(
    services: FakeServices, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    broken = Task("settle-recordings", "CON-1-leg", {"conversation_uuid": "../escape"})
    with pytest.raises(TapedeckError):
        run_task(services, broken, 1, services.clock())
    assert run_task(services, broken, ATTEMPTS, services.clock()) == "given up"

    (line,) = lines(caplog, Event.TASK_EXHAUSTED)
    assert (line["task"], line["kind"], line["attempts"], line["severity"]) == (
        "settle-recordings-CON-1-leg", "settle-recordings", ATTEMPTS, "ERROR",
    )  # fmt: skip
    assert line["error"].startswith("BadRequest") and "exception" in line
    assert COUNTED_BY["tapedeck_tasks_exhausted"].counts(line)
    (problem,) = list_problems(services.store)[0]
    assert problem.ident == "settle-recordings-CON-1-leg" and problem.detail["task"]["kind"] == "settle-recordings"

    request_retry(services.store, problem.kind, problem.ident, services.clock(), "ops")
    run_sweep(services, services.clock())
    assert [t.name for t in services.queue.tasks.values()] == ["settle-recordings-CON-1-leg-rerun-1"]
    dismiss_problem(services.store, problem.kind, problem.ident, "ops")
    assert list_problems(services.store)[0] == []


def test_a_problem_with_no_retry_that_makes_sense_cannot_be_asked_to_retry(services: FakeServices) -> None:
    from shared.core.operations import Problem
    from shared.flows.problems import note_problem

    note_problem(services.store, Problem(ProblemKind.RECORDING, f"{CALL}-s1", 1.0, "partial", CALL))
    assert request_retry(services.store, ProblemKind.RECORDING, f"{CALL}-s1", 2.0, "ops") is None
    assert request_retry(services.store, ProblemKind.PAGE, "gone", 2.0, "ops") is None
