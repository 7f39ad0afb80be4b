"""Signed deliveries to a customer's URL: the SSRF guard, the signature, one attempt at a time, and
the embedded task queue's retries with backoff, against real receivers on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask, request

from appengine.local_queue import LocalTaskDispatcher, RetrySettings
from shared.adapters.local_blob_store import LocalBlobStore
from shared.adapters.local_task_queue import LocalTaskQueue
from shared.config.settings import DeliveryPolicy
from shared.core.errors import BadRequest
from shared.core.tasks import ATTEMPT_HEADER, QUEUE_KEY_HEADER, TASK_NAME_HEADER, Task
from shared.flows.delivery import (
    DeliveryRequest,
    Encoding,
    check_target,
    deliver_once,
    delivery_state,
    sign_delivery,
    verify_delivery,
)
from tests.servers import receiving
from tools.standin.api import serve_in_thread

SECRET = "callback-secret"
LOCAL = DeliveryPolicy(attempts=4, backoff=0.01, timeout=5, allow_private=True)


def send(base: str, method: str = "POST", as_form: bool = False, policy: DeliveryPolicy = LOCAL, **payload: str):  # type: ignore[no-untyped-def]
    session = requests.Session()
    encoding = Encoding.FORM if as_form else Encoding.JSON
    request = DeliveryRequest(f"{base}/hook", payload, method, encoding)
    return deliver_once(session, policy, SECRET, request, attempt=1, now=time.time())


def test_a_signature_verifies_only_with_the_secret_the_body_and_a_recent_time() -> None:
    header = sign_delivery(SECRET, 1_700_000_000, b"to=1&status=ok")
    assert verify_delivery(SECRET, header, b"to=1&status=ok", 1_700_000_100)
    assert not verify_delivery("other", header, b"to=1&status=ok", 1_700_000_100)
    assert not verify_delivery(SECRET, header, b"to=1&status=failed", 1_700_000_100)
    assert not verify_delivery(SECRET, header, b"to=1&status=ok", 1_700_001_000)
    assert not verify_delivery(SECRET, "garbage", b"", 1_700_000_000)


@pytest.mark.parametrize(
    ("method", "as_form"),
    [("GET", False), ("POST", True), ("POST", False)],
)
def test_each_method_arrives_signed_with_its_fields(method: str, as_form: bool) -> None:
    with receiving(SECRET) as (target, base):
        outcome = send(base, method, as_form, to="447700900001", status="ok", detail="pin accepted")
        assert outcome.delivered and outcome.attempts == 1
        (got,) = target.wait()
    assert got.method == method and got.signature_valid
    expected = {"to": "447700900001", "status": "ok", "detail": "pin accepted"}
    assert (got.json if method == "POST" and not as_form else got.fields) == expected


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class TasksEndpoint:
    """A tasks function that fails its first runs, and keeps what each run was sent."""

    fail_first: int = 0
    runs: list[tuple[int, dict[str, str], Any]] = field(default_factory=list)

    def app(self) -> Flask:
        app = Flask("tasks")

        @app.post("/tasks")
        def tasks() -> tuple[str, int]:
            status = 500 if len(self.runs) < self.fail_first else 204
            self.runs.append((status, {k.lower(): v for k, v in request.headers.items()}, request.get_json()))
            return "", status

        return app


@contextmanager
def tasks_endpoint(fail_first: int = 0) -> Iterator[tuple[TasksEndpoint, str]]:
    endpoint = TasksEndpoint(fail_first)
    with serve_in_thread(endpoint.app(), "127.0.0.1", 0) as base:
        yield endpoint, base


def queue_to(base: str, tmp_path: Path, clock: Clock, attempts: int = 4) -> tuple[LocalBlobStore, LocalTaskDispatcher]:
    """The embedded queue with one task in it, dispatching to `base`, on a clock the test moves."""
    store = LocalBlobStore(tmp_path)
    LocalTaskQueue(store, clock).enqueue(Task("deliver-callback", "t-1", {"n": 1}))
    retry = RetrySettings(max_attempts=attempts, min_backoff=10, max_backoff=25)
    return store, LocalTaskDispatcher(store, f"{base}/tasks", "queue-key", retry, clock=clock)


def test_a_task_that_fails_twice_runs_the_third_time_after_doubling_waits(tmp_path: Path) -> None:
    clock = Clock()
    with tasks_endpoint(fail_first=2) as (endpoint, base):
        store, queue = queue_to(base, tmp_path, clock)
        waits = []
        for _ in range(3):
            assert queue.run_due() == 1
            assert queue.run_due() == 0  # not due again until its backoff has passed
            document = store.read("tasks/deliver-callback-t-1.json")
            if document is not None:
                waits.append(json.loads(document.data)["due_at"] - clock.now)
                clock.now += waits[-1]
    assert [status for status, _, _ in endpoint.runs] == [500, 500, 204]
    assert waits == [10, 20]
    assert store.list("tasks/") == []
    assert [headers[ATTEMPT_HEADER.lower()] for _, headers, _ in endpoint.runs] == ["0", "1", "2"]
    _, headers, body = endpoint.runs[0]
    assert body == {"kind": "deliver-callback", "key": "t-1", "payload": {"n": 1}, "trace": None}
    assert (headers[QUEUE_KEY_HEADER.lower()], headers[TASK_NAME_HEADER.lower()]) == (
        "queue-key",
        "deliver-callback-t-1",
    )


def test_a_task_that_never_succeeds_is_given_up_after_its_attempts(tmp_path: Path) -> None:
    clock = Clock()
    with tasks_endpoint(fail_first=100) as (endpoint, base):
        store, queue = queue_to(base, tmp_path, clock, attempts=3)
        for _ in range(3):
            queue.run_due()
            clock.now += 100
        assert queue.run_due() == 0
    assert len(endpoint.runs) == 3
    assert store.list("tasks/") == [] and len(store.list("tasks-failed/")) == 1


def test_the_same_task_is_queued_once(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    for _ in range(3):
        LocalTaskQueue(store).enqueue(Task("deliver-result", "r-1", {}))
    assert [info.key for info in store.list("tasks/")] == ["tasks/deliver-result-r-1.json"]


def test_an_attempt_that_fails_is_retried_until_the_last() -> None:
    with receiving(SECRET, fail_first=100) as (_, base):
        outcome = send(base, status="ok")
    assert not outcome.delivered and outcome.error == "HTTP 500"
    assert delivery_state(outcome, final=False) == "retrying"
    assert delivery_state(outcome, final=True) == "failed"


def test_an_unreachable_receiver_is_an_attempt_that_failed() -> None:
    from tests.servers import free_port

    outcome = send(f"http://127.0.0.1:{free_port()}", status="ok")
    assert not outcome.delivered and outcome.status is None and outcome.error
    assert delivery_state(outcome, final=False) == "retrying"


def resolver(*addresses: str):  # type: ignore[no-untyped-def]
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(
    ("url", "addresses", "says"),
    [
        ("http://example.com/cb", ["93.184.215.14"], "not an https:// URL"),
        ("ftp://example.com/cb", ["93.184.215.14"], "not an https:// URL"),
        ("https://user:pw@example.com/cb", ["93.184.215.14"], "credentials"),
        ("https://internal.example.com/cb", ["10.0.0.8"], "private"),
        ("https://localhost/cb", ["127.0.0.1"], "private"),
        ("https://metadata.example.com/cb", ["169.254.169.254"], "private"),
        ("https://v6.example.com/cb", ["2001:db8::1", "fd00::1"], "private"),
        ("https://[::1]/cb", ["::1"], "private"),
        ("https://multi.example.com/cb", ["93.184.215.14", "192.168.1.1"], "private"),
    ],
)
def test_the_guard_refuses_http_and_private_addresses(url: str, addresses: list[str], says: str) -> None:
    with pytest.raises(BadRequest, match=says):
        check_target(url, allow_private=False, resolve=resolver(*addresses))


def test_the_guard_lets_public_https_through_and_loopback_only_when_allowed() -> None:
    check_target("https://crm.example.com/cb", allow_private=False, resolve=resolver("93.184.215.14"))
    check_target("http://127.0.0.1:9/cb", allow_private=True, resolve=resolver("127.0.0.1"))
    with pytest.raises(BadRequest, match="cannot be resolved"):
        check_target(
            "https://nowhere.invalid/cb", allow_private=False, resolve=lambda h, p: (_ for _ in ()).throw(OSError())
        )


def test_a_guarded_delivery_is_never_sent_and_never_retried() -> None:
    with receiving(SECRET) as (target, base):
        outcome = send(base, policy=DeliveryPolicy(attempts=2, backoff=0.01), status="ok")
    assert target.deliveries == []
    assert outcome.permanent and delivery_state(outcome, final=False) == "failed"
