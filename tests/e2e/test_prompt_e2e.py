"""PIN prompt calls end to end: the functions under gunicorn place calls through the real v4 SDK
against the Vonage stand-in over TLS; the stand-in runs each transaction's NCCOs and types the
scripted PINs; a local receiver takes the callback and checks its signature."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.core.signatures import API_KEY_HEADER
from tests.deck import PROMPT_API_KEY, Deck, prompt_deck, signed_post
from tests.ncco_models import check_ncco
from tools.standin.outbound import CalleeScript
from tools.standin.receiver import CallbackReceiver

# Real servers or emulators on loopback, started by the tests.
pytestmark = pytest.mark.slow

TO = "447700900001"


class Prompt:
    def __init__(self, deck: Deck, receiver: CallbackReceiver, callback_url: str) -> None:
        self.deck, self.receiver, self.callback_url = deck, receiver, callback_url

    def script(self, **kwargs: Any) -> None:
        self.deck.api.scripts[TO] = CalleeScript(**kwargs)

    def post(self, headers: dict[str, str] | None = None, **fields: Any) -> requests.Response:
        body = {
            "to": TO,
            "from": "447700900002",
            "text": "Your verification call. Please enter your PIN.",
            "pin_code": "1234",
            "callback": self.callback_url,
            "callback_method": "POST",
            "bye_text": "Thank you. Goodbye.",
            "failed_text": "That PIN was not right. Please try again.",
            **fields,
        }
        given = {API_KEY_HEADER: PROMPT_API_KEY} if headers is None else headers
        return requests.post(f"{self.deck.url}/call", json=body, headers=given, timeout=30)

    def run(self, **fields: Any) -> tuple[str, Any, dict[str, str]]:
        """Place a call; its tid, the stand-in's report once the call is over, and the one callback."""
        answer = self.post(**fields)
        assert answer.status_code == 200, answer.text
        tid = answer.json()["tid"]
        report = self.deck.api.wait_for_call(timeout=30)
        (delivery,) = self.receiver.wait(1, timeout=30, settle=0.8)
        assert delivery.signature_valid
        assert delivery.fields["tid"] == tid and delivery.fields["to"] == TO
        # The answer, and each input's answer as the transaction keeps it (none: the call ends).
        stored = json.loads(self.deck.store.read(f"prompts/{tid}.json").data)  # type: ignore[union-attr]
        for ncco in [report.ncco, *stored["replies"].values()]:
            if ncco:
                check_ncco(ncco)
        return tid, report, delivery.fields

    def status(self, tid: str) -> dict[str, Any]:
        answer = requests.get(f"{self.deck.url}/call/{tid}", headers={API_KEY_HEADER: PROMPT_API_KEY}, timeout=10)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


@pytest.fixture
def prompt_factory(tmp_path: Path) -> Iterator[Any]:
    with ExitStack() as stack:

        def start(fail_first: int = 0) -> Prompt:
            deck, receiver, callback_url = prompt_deck(
                stack, tmp_path, "", TO, {"CALLBACK_BACKOFF": "0.05"}, fail_first
            )
            return Prompt(deck, receiver, callback_url)

        yield start


@pytest.fixture
def prompt(prompt_factory: Any) -> Prompt:
    return prompt_factory()  # type: ignore[no-any-return]


def test_right_first_time(prompt: Prompt) -> None:
    prompt.script(dtmf=("1234",))
    tid, report, fields = prompt.run()
    assert report.talks == ["Your verification call. Please enter your PIN.", "Thank you. Goodbye."]
    assert [digits for digits, _ in report.inputs] == ["1234"]
    assert fields["status"] == "ok" and "try 1" in fields["detail"]
    status = prompt.status(tid)
    assert (status["status"], status["attempts"], status["callback"]) == ("ok", 1, "delivered")
    stored = prompt.deck.store.read(f"prompts/{tid}.json").data.decode()  # type: ignore[union-attr]
    assert "1234" not in stored.replace(tid, "")


def test_right_on_the_third_try_with_a_get_callback(prompt: Prompt) -> None:
    prompt.script(dtmf=("1111", "2222", "1234"))
    _, report, fields = prompt.run(callback_method="GET")
    assert prompt.receiver.accepted()[0].method == "GET"
    assert report.talks.count("That PIN was not right. Please try again.") == 2
    assert fields["status"] == "ok" and "try 3" in fields["detail"]


def test_three_wrong_pins_fail(prompt: Prompt) -> None:
    prompt.script(dtmf=("1111", "2222", "3333"))
    _, report, fields = prompt.run()
    assert len(report.inputs) == 3 and "Thank you. Goodbye." not in report.talks
    assert fields["status"] == "failed" and "wrong PIN" in fields["detail"]


def test_timeouts_count_as_tries(prompt: Prompt) -> None:
    prompt.script(dtmf=("-", "-", "-"))
    _, _, fields = prompt.run()
    assert fields["status"] == "failed" and "no PIN entered" in fields["detail"]


@pytest.mark.parametrize("outcome", ["busy", "unanswered"])
def test_a_call_nobody_takes_is_an_error(prompt: Prompt, outcome: str) -> None:
    prompt.script(outcome=outcome)
    _, report, fields = prompt.run()
    assert report.talks == [] and report.statuses[-1] == outcome
    assert (fields["status"], fields["detail"]) == ("error", f"call {outcome}")


def test_a_hang_up_before_any_pin_is_an_error(prompt: Prompt) -> None:
    prompt.script(dtmf=("1234",), hang_up_after_inputs=0)
    _, _, fields = prompt.run()
    assert (fields["status"], fields["detail"]) == ("error", "hung up before a result")


def test_a_callback_that_fails_twice_gets_it_on_the_third_try(prompt_factory: Any) -> None:
    prompt = prompt_factory(fail_first=2)
    prompt.script(dtmf=("1234",))
    tid, _, fields = prompt.run()
    assert [d.answered for d in prompt.receiver.deliveries] == [500, 500, 200]
    assert fields["status"] == "ok"
    deadline = time.monotonic() + 5
    while prompt.status(tid)["callback"] != "delivered" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert prompt.status(tid)["callback"] == "delivered"


def test_duplicated_and_reordered_webhooks_give_one_callback(prompt: Prompt) -> None:
    # Every webhook twice, and the hang-up's `completed` before the last input's result.
    prompt.script(dtmf=("1111", "1234"), webhook_copies=2, completed_first=True, legacy_dtmf=True)
    tid, report, fields = prompt.run()
    assert [digits for digits, _ in report.inputs] == ["1111", "1234"]
    doc = prompt.deck.read_json(f"prompts/{tid}.json")
    assert doc["hung_up_at"] <= doc["finished_at"]  # tapedeck saw the hang-up before the right PIN
    assert [e["status"] for e in doc["events"]].count("completed") == 1  # the copy was dropped
    assert fields["status"] == "ok" and "try 2" in fields["detail"]
    time.sleep(1.0)  # past the hang-up grace: still one callback, still ok
    assert len(prompt.receiver.accepted()) == 1 and prompt.status(tid)["attempts"] == 2


def test_bad_requests_are_refused_with_what_is_wrong(prompt: Prompt) -> None:
    bad = prompt.post(pin_code="12ab", callback_method="PUT", callback="nowhere", text="x" * 1501)
    assert bad.status_code == 400
    assert set(bad.json()["fields"]) == {"pin_code", "callback_method", "callback", "text"}
    assert prompt.post(headers={}).status_code == 401
    assert prompt.post(headers={API_KEY_HEADER: "wrong"}).status_code == 401
    forged = prompt.post(headers={"Authorization": "Bearer not-a-jwt"})
    assert forged.status_code == 401 and "error" in forged.json()
    unknown = requests.get(
        f"{prompt.deck.url}/call/6f1c2b9e-1d6a-4f0e-8c59-1f2d3c4b5a69",
        headers={API_KEY_HEADER: PROMPT_API_KEY},
        timeout=10,
    )
    assert unknown.status_code == 404
    assert (
        requests.get(
            f"{prompt.deck.url}/call/not-a-tid", headers={API_KEY_HEADER: PROMPT_API_KEY}, timeout=10
        ).status_code
        == 404
    )
    assert requests.get(f"{prompt.deck.url}/call/not-a-tid", timeout=10).status_code == 401
    assert prompt.deck.api.outbound == {}


def test_forged_webhooks_are_refused(prompt: Prompt) -> None:
    prompt.script(dtmf=("1234",))
    tid, report, _ = prompt.run()
    input_url = next(a for a in report.ncco if a["action"] == "input")["eventUrl"][0]

    payload = {"dtmf": {"digits": "1234", "timed_out": False}, "uuid": report.uuid, "timestamp": "t"}
    assert signed_post(input_url.replace("sig=", "sig=x"), payload).status_code == 401
    assert signed_post(input_url, payload, secret="forged").status_code == 401
    other = input_url.replace(tid, "6f1c2b9e-1d6a-4f0e-8c59-1f2d3c4b5a69")
    assert signed_post(other, payload).status_code == 401
    unsigned = requests.post(input_url, json=payload, timeout=10)
    assert unsigned.status_code == 503 and unsigned.headers["Retry-After"]  # Vonage retries it, signed
    assert signed_post(input_url, {"dtmf": {"digits": "x1"}}).status_code == 400
    assert len(prompt.receiver.accepted()) == 1


def test_a_forwarded_application_jwt_places_the_call(prompt: Prompt, tmp_path: Path) -> None:
    from vonage_jwt.jwt import JwtClient

    key = (tmp_path / "application.pem").read_text()
    token = JwtClient("standin-application", key).generate_application_jwt().decode()
    prompt.script(dtmf=("1234",))
    # Bearer transactions are not the operator's, so their webhooks are checked by the URL's seal alone.
    answer = prompt.post(headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    prompt.deck.api.wait_for_call(timeout=30)
    (delivery,) = prompt.receiver.wait(1, timeout=30)
    assert delivery.fields["status"] == "ok"
    other = JwtClient("standin-application", _other_key(tmp_path)).generate_application_jwt().decode()
    refused = prompt.post(headers={"Authorization": f"Bearer {other}"})
    assert refused.status_code == 401 and "Vonage refused" in refused.json()["error"]


def _other_key(folder: Path) -> str:
    from tools.standin.api import make_application_key

    return make_application_key(folder / "other.pem").decode()
