"""Signed deliveries to a customer's URL: the SSRF guard, the signature, and retries, against a
real receiver on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from shared.delivery import DeliveryPolicy, check_target, deliver, sign_delivery, verify_delivery
from shared.errors import BadRequest
from shared.standin.api import serve_in_thread
from shared.standin.receiver import CallbackReceiver

SECRET = "callback-secret"
LOCAL = DeliveryPolicy(attempts=4, backoff=0.01, timeout=5, allow_private=True)


@contextmanager
def receiver(fail_first: int = 0) -> Iterator[tuple[CallbackReceiver, str]]:
    target = CallbackReceiver(SECRET, fail_first=fail_first)
    with serve_in_thread(target.app(), "127.0.0.1", 0) as base:
        yield target, base


def send(base: str, method: str = "POST", as_form: bool = False, policy: DeliveryPolicy = LOCAL, **payload: str):  # type: ignore[no-untyped-def]
    sleeps: list[float] = []
    outcome = deliver(
        requests.Session(), policy, SECRET, f"{base}/hook", method, payload, as_form, time.time, sleeps.append
    )
    return outcome, sleeps


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
    with receiver() as (target, base):
        outcome, sleeps = send(base, method, as_form, to="447700900001", status="ok", detail="pin accepted")
        assert outcome.delivered and outcome.attempts == 1 and sleeps == []
        (got,) = target.wait()
    assert got.method == method and got.signature_valid
    expected = {"to": "447700900001", "status": "ok", "detail": "pin accepted"}
    assert (got.json if method == "POST" and not as_form else got.fields) == expected


def test_a_receiver_that_fails_twice_gets_it_on_the_third_try_after_doubling_waits() -> None:
    with receiver(fail_first=2) as (target, base):
        outcome, sleeps = send(base, status="ok")
        target.wait()
    assert outcome.delivered and outcome.attempts == 3
    assert [d.answered for d in target.deliveries] == [500, 500, 200]
    assert len(sleeps) == 2 and 0.008 <= sleeps[0] <= 0.012 and 0.016 <= sleeps[1] <= 0.024


def test_a_receiver_that_never_answers_2xx_is_given_up_on_after_the_attempts() -> None:
    with receiver(fail_first=100) as (target, base):
        outcome, sleeps = send(base, status="ok")
    assert not outcome.delivered and outcome.attempts == 4 and outcome.error == "HTTP 500"
    assert len(target.deliveries) == 4 and len(sleeps) == 3


def test_an_unreachable_receiver_is_retried_then_reported() -> None:
    from tests.servers import free_port

    outcome, sleeps = send(f"http://127.0.0.1:{free_port()}", status="ok")
    assert not outcome.delivered and outcome.status is None and outcome.error and len(sleeps) == 3


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


def test_a_guarded_delivery_is_never_sent() -> None:
    with receiver() as (target, base), pytest.raises(BadRequest):
        send(base, policy=DeliveryPolicy(attempts=2, backoff=0.01), status="ok")
    assert target.deliveries == []
