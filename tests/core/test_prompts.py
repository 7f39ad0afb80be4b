"""PIN prompt calls, the pure core and the transaction document: fields, NCCOs, PIN hashing,
the outcome of each sequence of webhooks, and the one settling update under concurrency."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from vonage_voice.models import Input, Talk

from shared.adapters.local_blob_store import LocalBlobStore
from shared.core.errors import BadRequest
from shared.core.pin_prompt import (
    PinEntry,
    PromptTransaction,
    answer_ncco,
    apply_event,
    apply_input,
    check_pin,
    new_transaction,
    parse_prompt_request,
    read_dtmf,
    settle_hang_up,
)
from shared.core.tasks import Task
from shared.flows.pin_calls import _settle, transaction_key

GOOD = {
    "to": "447700900001",
    "from": "447700900002",
    "text": "Please enter your PIN.",
    "pin_code": "1234",
    "callback": "https://crm.example.com/pin",
    "callback_method": "GET",
    "bye_text": "Thank you.",
    "failed_text": "Try again.",
}
INPUT_URL = "https://fn.example.com/prompt?tid=t&step=input&sig=s"


def transaction(**fields: Any) -> PromptTransaction:
    return new_transaction("0b7e6c1e-8a39-4a43-9d43-5b1f1c0e2d11", parse_prompt_request(GOOD | fields), 1000.0, 7)


def test_a_good_request_is_read_with_its_defaults() -> None:
    request = parse_prompt_request({k: v for k, v in GOOD.items() if k not in ("bye_text", "failed_text")})
    assert (request.to, request.pin_code, request.callback_method, request.max_attempts) == (
        "447700900001",
        "1234",
        "GET",
        3,
    )
    assert request.bye_text and request.failed_text and request.language == "en-US"


def test_each_bad_field_is_named_with_its_reason() -> None:
    bad = GOOD | {
        "pin_code": "12a4",
        "callback_method": "PUT",
        "callback": "not a url",
        "text": "x" * 1501,
        "to": "+44 7700",
        "max_attempts": "0",
    }
    with pytest.raises(BadRequest) as caught:
        parse_prompt_request(bad)
    assert set(caught.value.fields) == {"pin_code", "callback_method", "callback", "text", "to", "max_attempts"}
    assert "1,500" in caught.value.fields["text"] and "digits" in caught.value.fields["pin_code"]
    with pytest.raises(BadRequest) as missing:
        parse_prompt_request({})
    assert set(missing.value.fields) == {"to", "from", "text", "pin_code", "callback"}


def test_the_pin_is_kept_only_as_a_salted_hash() -> None:
    doc = transaction()
    assert "1234" not in json.dumps(doc.to_json())
    assert check_pin(doc.pin, "1234") and not check_pin(doc.pin, "1243")
    assert transaction().pin.hash != doc.pin.hash  # a fresh salt each time


def test_the_answer_speaks_then_waits_for_as_many_digits_as_the_pin_and_passes_the_models() -> None:
    talk, wait = answer_ncco(transaction(), INPUT_URL, 8)
    assert talk == {"action": "talk", "text": "Please enter your PIN.", "language": "en-US", "bargeIn": True}
    assert wait["dtmf"] == {"maxDigits": 4, "submitOnHash": True, "timeOut": 8}
    assert wait["eventUrl"] == [f"{INPUT_URL}&attempt=1"]
    assert Talk(**talk).model_dump(mode="json", by_alias=True, exclude_none=True) == talk
    assert Input(**wait).model_dump(mode="json", by_alias=True, exclude_none=True) == wait


def test_both_dtmf_shapes_are_read() -> None:
    assert read_dtmf({"dtmf": {"digits": "1234", "timed_out": False}}) == ("1234", False)
    assert read_dtmf({"dtmf": {"digits": "", "timed_out": True}}) == ("", True)
    assert read_dtmf({"dtmf": "1234#", "timed_out": "false"}) == ("1234", False)
    assert read_dtmf({"dtmf": {"digits": None}}) == ("", False)
    with pytest.raises(BadRequest):
        read_dtmf({"dtmf": {"digits": "12; drop"}})


def run(doc: PromptTransaction, entries: list[str | None]) -> list[list[dict[str, Any]]]:
    replies = []
    for attempt, digits in enumerate(entries, start=1):
        entry = PinEntry(attempt, digits or "", timed_out=digits is None)
        replies.append(apply_input(doc, entry, input_url=INPUT_URL, timeout=8, now=2000.0))
    return replies


def test_right_first_time_says_goodbye_and_is_ok() -> None:
    doc = transaction()
    (reply,) = run(doc, ["1234"])
    assert reply == [{"action": "talk", "text": "Thank you.", "language": "en-US"}]
    assert (doc.status, doc.attempts, doc.callback.state) == ("ok", 1, "due")


def test_right_on_the_third_try_after_a_wrong_pin_and_a_timeout() -> None:
    doc = transaction()
    first, second, third = run(doc, ["1111", None, "1234"])
    assert first[0]["text"] == "Try again." and first[1]["eventUrl"] == [f"{INPUT_URL}&attempt=2"]
    assert second[1]["eventUrl"] == [f"{INPUT_URL}&attempt=3"]
    assert third == [{"action": "talk", "text": "Thank you.", "language": "en-US"}]
    assert (doc.status, doc.attempts) == ("ok", 3)
    assert "try 3" in doc.detail


def test_three_wrong_tries_hang_up_as_failed() -> None:
    doc = transaction()
    replies = run(doc, ["1111", "2222", "3333"])
    assert replies[-1] == [] and doc.status == "failed" and "wrong PIN" in doc.detail


def test_three_timeouts_fail_too() -> None:
    doc = transaction()
    run(doc, [None, None, None])
    assert doc.status == "failed" and "no PIN entered" in doc.detail


def test_a_retried_input_webhook_gets_the_same_answer_and_counts_once() -> None:
    doc = transaction()
    first = apply_input(doc, PinEntry(1, "1111", timed_out=False), input_url=INPUT_URL, timeout=8, now=2000.0)
    again = apply_input(doc, PinEntry(1, "1111", timed_out=False), input_url=INPUT_URL, timeout=8, now=2001.0)
    assert again == first and doc.attempts == 1
    assert (
        apply_input(doc, PinEntry(5, "1234", timed_out=False), input_url=INPUT_URL, timeout=8, now=2002.0) == []
        and doc.status == "answered"
    )


@pytest.mark.parametrize("status", ["busy", "unanswered", "rejected", "failed", "timeout", "cancelled"])
def test_a_call_that_never_reached_anyone_is_an_error(status: str) -> None:
    doc = transaction()
    assert apply_event(doc, "started", "t0", 1.0) is False
    assert apply_event(doc, status, "t1", 2.0) is True
    assert (doc.status, doc.detail) == ("error", f"call {status}")
    assert apply_event(doc, status, "t1", 3.0) is False  # a duplicate changes nothing


def test_a_hang_up_waits_for_a_late_input_before_it_counts_as_an_error() -> None:
    late = transaction()
    apply_event(late, "completed", "t9", 1.0)
    run(late, ["1234"])  # the input webhook was delivered after `completed`
    assert late.status == "ok" and settle_hang_up(late, 9.0) is False
    gone = transaction()
    apply_event(gone, "completed", "t9", 1.0)
    assert gone.status == "calling" and settle_hang_up(gone, 9.0) is True
    assert (gone.status, gone.detail) == ("error", "hung up before a result")


class NotingQueue:
    """A task queue that notes what it is given."""

    def __init__(self) -> None:
        self.tasks: list[Task] = []
        self.lock = threading.Lock()

    def enqueue(self, task: Task) -> None:
        with self.lock:
            self.tasks.append(task)


class Recorder:
    """The parts of the services _settle uses: a real local store, and the tasks it queues."""

    def __init__(self, store: LocalBlobStore) -> None:
        self.store = store
        self.queue = NotingQueue()


def test_two_concurrent_settling_updates_cannot_both_win(tmp_path: Path) -> None:
    """A busy event and a right PIN race on the same document: exactly one settles it, once."""
    store = LocalBlobStore(tmp_path)
    doc = transaction()
    tid = doc.tid
    store.write(transaction_key(tid), json.dumps(doc.to_json()).encode())
    services = Recorder(store)
    barrier = threading.Barrier(8)

    def race(i: int) -> None:
        barrier.wait()
        if i % 2:
            _settle(services, tid, lambda d: apply_event(d, "busy", f"t{i}", 5.0))  # type: ignore[arg-type]
        else:
            _settle(
                services,  # type: ignore[arg-type]
                tid,
                lambda d: apply_input(d, PinEntry(1, "1234", timed_out=False), input_url=INPUT_URL, timeout=8, now=5.0),
            )

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = json.loads(store.read(transaction_key(tid)).data)  # type: ignore[union-attr]
    assert final["status"] in ("ok", "error") and final["callback"]["state"] == "sending"
    assert [task.name for task in services.queue.tasks] == [f"deliver-callback-{tid}"]
