"""Tasks: their shape on the wire, and the trace that ties a call's deferred steps to it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from shared.adapters.local_blob_store import LocalBlobStore
from shared.config.settings import DeliveryPolicy, Settings
from shared.core.errors import BadRequest
from shared.core.tasks import Task, parse_task, task_key
from shared.runtime.logs import JsonFormatter, current_trace, trace_context
from shared.runtime.services import Services

TRACE = "105445aa7843bc8bf206b12000100000/1;o=1"


def test_a_task_survives_the_trip_through_json() -> None:
    task = Task("deliver-result", "r-1", {"conversation_uuid": "CON-1", "recording_uuid": "r-1"}, trace=TRACE)
    assert parse_task(json.loads(json.dumps(task.to_json()))) == task
    assert task.name == "deliver-result-r-1"


@pytest.mark.parametrize(
    "document",
    [
        {"kind": "format-disk", "key": "k", "payload": {}},
        {"kind": "transcribe", "key": "../k", "payload": {}},
        {"kind": "transcribe", "key": "k\n", "payload": {}},
        {"kind": "transcribe", "key": "k", "payload": []},
        {"kind": "transcribe", "key": "k", "payload": {}, "trace": 7},
    ],
)
def test_a_malformed_task_is_a_bad_request(document: dict[str, object]) -> None:
    with pytest.raises(BadRequest):
        parse_task(document)


def test_a_task_carries_the_trace_of_the_request_that_queued_it(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    token = trace_context.set(current_trace(TRACE))
    try:
        # Through the composition root, which hands the queue the request's trace.
        Services(Settings(), store=store).queue.enqueue(Task("settle-hangup", "t-1", delay=5))
    finally:
        trace_context.reset(token)
    stored = json.loads(store.read("tasks/settle-hangup-t-1.json").data)  # type: ignore[union-attr]
    assert stored["task"]["trace"] == TRACE


def test_log_lines_name_the_trace_cloud_logging_groups_by() -> None:
    record = logging.LogRecord("tapedeck", logging.INFO, "", 0, "task done", None, None)
    token = trace_context.set(current_trace(TRACE))
    try:
        line = json.loads(JsonFormatter("demo-project").format(record))
    finally:
        trace_context.reset(token)
    assert line["logging.googleapis.com/trace"] == "projects/demo-project/traces/105445aa7843bc8bf206b12000100000"
    assert "logging.googleapis.com/trace" not in json.loads(JsonFormatter("demo-project").format(record))
    assert current_trace("not a trace\n") is None


class CountingHttp:
    """A receiver that answers every delivery 200 and counts them."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def request(self, method: str, url: str, **kwargs: object) -> object:
        from types import SimpleNamespace

        self.sent.append(url)
        return SimpleNamespace(status_code=200)


def test_a_delivery_task_run_twice_sends_once(tmp_path: Path) -> None:
    """Cloud Tasks delivers at least once (and the emulator runs a repeated name twice): the second
    run of the same attempt finds it taken and sends nothing."""
    import time
    from dataclasses import dataclass, field

    from shared.config.settings import Settings
    from shared.core.pin_prompt import PromptRequest, new_transaction
    from shared.flows.pin_calls import deliver_callback, transaction_key

    @dataclass
    class Services:
        store: LocalBlobStore
        settings: Settings = field(default_factory=lambda: Settings(delivery=DeliveryPolicy(allow_private=True)))
        http: CountingHttp = field(default_factory=CountingHttp)

    services = Services(LocalBlobStore(tmp_path))
    tid = "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a9f"
    request = PromptRequest("447700900001", "447700900000", "PIN?", "1234", "http://127.0.0.1:9/cb")
    doc = new_transaction(tid, request, time.time(), 7).to_json() | {"status": "ok", "detail": "PIN entered correctly"}
    callback = doc["callback"]
    assert isinstance(callback, dict)
    callback["state"] = "sending"
    services.store.write(transaction_key(tid), json.dumps(doc).encode())
    assert deliver_callback(services, tid, attempt=1, final=False, now=time.time()) == "delivered"  # type: ignore[arg-type]
    assert deliver_callback(services, tid, attempt=1, final=False, now=time.time()).startswith("nothing to send")  # type: ignore[arg-type]
    assert len(services.http.sent) == 1


def test_a_key_built_from_what_a_webhook_sent_is_always_a_key_the_queue_takes() -> None:
    for identity in ("CON-1-leg-2", "CON-1-[]", "CON-1-é", "x" * 400, ""):
        key = task_key(identity)
        assert parse_task({"kind": "sweep", "key": key, "payload": {}}).key == key
    assert task_key("CON-1-leg-2") == "CON-1-leg-2"
    assert task_key("CON-1-[]") != task_key("CON-1-()")
