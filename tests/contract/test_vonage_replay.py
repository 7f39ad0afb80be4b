"""Vonage's webhooks in their real shapes (tests/vonage_payloads.py), signed as Vonage signs them,
replayed through the Cloud Functions as functions-framework serves them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask.testing import FlaskClient

from shared.adapters.local_blob_store import LocalBlobStore
from shared.config.settings import Settings
from shared.core.pin_prompt import PromptRequest, new_transaction
from shared.core.tokens import sign_caller
from shared.flows.jobs import recording_event_url
from shared.flows.pin_calls import transaction_key
from tests import vonage_payloads as vonage
from tests.testbed import SECRET, TOKEN_SECRET, client
from tests.vonage_signing import bearer, query_payload
from tools.standin.api import make_application_key

Environment = Callable[..., None]


@pytest.fixture
def signing_on(environment: Environment) -> Environment:
    environment(VONAGE_SIGNATURE_SECRET=SECRET)
    return environment


def call_json(tmp_path: Path) -> dict[str, Any]:
    return dict(json.loads((tmp_path / "data" / "calls" / vonage.CONVERSATION / "call.json").read_text()))


def post_signed(function: FlaskClient, payload: dict[str, Any], url: str = "/") -> Any:
    body = json.dumps(payload).encode()
    return function.post(url, data=body, headers=bearer(body, SECRET), content_type="application/json")


def get_signed(
    function: FlaskClient, pairs: list[tuple[str, str]], signed_pairs: list[tuple[str, str]] | None = None
) -> Any:
    payload = query_payload(signed_pairs if signed_pairs is not None else pairs)
    return function.get("/", query_string=pairs, headers=bearer(payload, SECRET))


def test_a_get_answer_signed_over_its_query_is_answered_with_the_ncco(signing_on: Environment) -> None:
    answer = client("answer")
    response = get_signed(answer, vonage.answer_query())
    assert response.status_code == 200
    assert [action["action"] for action in response.get_json()] == ["talk", "connect"]


def test_a_tampered_answer_query_is_refused_and_an_unsigned_one_is_asked_again(signing_on: Environment) -> None:
    answer = client("answer")
    signed_for = vonage.answer_query()
    tampered = [(k, "447700900999" if k == "from" else v) for k, v in signed_for]
    refused = answer.get("/", query_string=tampered, headers=bearer(query_payload(signed_for), SECRET))
    assert refused.status_code == 401 and "payload_hash" in refused.get_json()["error"]
    # The same parameters in another order are another payload: Vonage hashes them in URL order.
    reordered = answer.get("/", query_string=signed_for[::-1], headers=bearer(query_payload(signed_for), SECRET))
    assert reordered.status_code == 401
    unsigned = answer.get("/", query_string=signed_for)
    assert unsigned.status_code == 503
    assert int(unsigned.headers["Retry-After"]) > 0
    assert unsigned.get_json()["error"]


@pytest.mark.parametrize("escaped", [True, False], ids=["escaped", "raw-utf8"])
def test_non_ascii_query_values_verify_in_either_spelling(signing_on: Environment, escaped: bool) -> None:
    # How Vonage writes non-ASCII in the hashed JSON is unconfirmed; both readings are accepted.
    pairs = [*vonage.answer_query(), ("SipHeader_X-Caller-Name", "Zoë Ørsted")]
    response = client("answer").get("/", query_string=pairs, headers=bearer(query_payload(pairs, escaped), SECRET))
    assert response.status_code == 200


def test_a_whole_inbound_call_of_events_is_kept_including_the_transfer(signing_on: Environment, tmp_path: Path) -> None:
    event = client("event")
    for payload in (vonage.started(), vonage.ringing(), vonage.answered(), vonage.transfer(), vonage.completed()):
        assert post_signed(event, payload).status_code == 204
    call = call_json(tmp_path)
    assert [e["status"] for e in call["events"]] == ["started", "ringing", "answered", "transfer", "completed"]
    transfer = call["events"][3]
    assert transfer["from_conversation"] == vonage.EARLIER_CONVERSATION
    assert transfer["uuid"] == vonage.LEG
    completed = call["events"][4]
    assert (completed["sip_code"], completed["disconnected_by"], completed["price"]) == (200, "user", "0.00210000")
    assert call["status"] == "completed"
    assert (call["from"], call["to"], call["direction"]) == (vonage.CALLER, vonage.CALLED, "inbound")


def test_equal_timestamps_keep_the_order_the_events_came_in(signing_on: Environment, tmp_path: Path) -> None:
    event = client("event")
    # `started` and `ringing` share a timestamp in the live capture; here `ringing` arrives first.
    for payload in (vonage.ringing(), vonage.started()):
        assert post_signed(event, payload).status_code == 204
    call = call_json(tmp_path)
    assert [e["status"] for e in call["events"]] == ["ringing", "started"]
    assert call["status"] == "started"


def test_error_machine_and_unknown_events_are_kept(signing_on: Environment, tmp_path: Path) -> None:
    event = client("event")
    assert get_signed(event, vonage.error_query()).status_code == 204
    for payload in (vonage.machine(), vonage.unknown_status()):
        assert post_signed(event, payload).status_code == 204
    call = call_json(tmp_path)
    by_status = {e["status"]: e for e in call["events"]}
    assert by_status["error"]["reason"] == "Syntax error in NCCO. Invalid value type or action."
    assert by_status["machine"]["uuid"] == vonage.LEG
    assert "on_hold" in by_status
    assert call["status"] == "on_hold"  # an error report is not a state the call is in


def test_an_event_delivered_unsigned_then_signed_is_kept_once(signing_on: Environment, tmp_path: Path) -> None:
    event = client("event")
    first = event.post("/", json=vonage.answered())
    assert first.status_code == 503
    assert not (tmp_path / "data" / "calls" / vonage.CONVERSATION).exists()
    assert post_signed(event, vonage.answered()).status_code == 204
    assert [e["status"] for e in call_json(tmp_path)["events"]] == ["answered"]


def voicemail_environment(environment: Environment, tmp_path: Path) -> Settings:
    key = make_application_key(tmp_path / "application.pem")
    routes = tmp_path / "routes.yaml"
    routes.write_text(f'"{vonage.CALLED}":\n  flow: voicemail\n  owner: Sam\n  recipients: ["447700900111"]\n')
    env = {
        "VONAGE_SIGNATURE_SECRET": SECRET,
        "ROUTES_FILE": str(routes),
        "VONAGE_APPLICATION_ID": "standin-application",
        "VONAGE_PRIVATE_KEY": str(tmp_path / "application.pem"),
    }
    environment(**env)
    assert key
    return Settings.from_env({"STREAM_TOKEN_SECRET": TOKEN_SECRET, "PUBLIC_URL": "https://fn.example.test", **env})


@pytest.mark.parametrize("reading", ["all", "added"])
def test_a_recording_webhook_sent_by_get_is_read_and_paged(
    environment: Environment, tmp_path: Path, reading: str
) -> None:
    settings = voicemail_environment(environment, tmp_path)
    event_url = recording_event_url(settings, vonage.CONVERSATION, vonage.CALLER, vonage.CALLED)
    added = vonage.recording_query("2e7855d6-b952-45ac-bd92-c0a99103095f", "", 0)
    pairs = parse_qsl(urlsplit(event_url).query) + added
    # Unconfirmed: whether Vonage's hash covers the eventUrl's own parameters; both are accepted.
    response = get_signed(client("recording"), pairs, pairs if reading == "all" else added)
    assert response.status_code == 204, response.get_json()
    (page,) = (tmp_path / "data" / "outbox").glob("*.json")
    assert "CALLER LEFT NO MESSAGE" in json.loads(page.read_text())["text"]


def write_transaction(tmp_path: Path, tid: str) -> None:
    request = PromptRequest("447700900001", "447700900000", "Enter your PIN.", "1234", "https://cb.example.test/")
    doc = new_transaction(tid, request, time.time(), 7).to_json() | {"auth": "operator", "status": "answered"}
    LocalBlobStore(tmp_path / "data").write(transaction_key(tid), json.dumps(doc).encode(), "application/json")


def test_a_get_input_webhook_reads_dtmf_from_its_json_text(signing_on: Environment, tmp_path: Path) -> None:
    tid = "0b7c4f2e-9a1d-4c6b-8e3f-5d2a1b0c9e8f"
    write_transaction(tmp_path, tid)
    own = [("tid", tid), ("step", "input"), ("sig", sign_caller(TOKEN_SECRET, tid, "prompt-input")), ("attempt", "1")]
    pairs = own + vonage.input_query("1234", timed_out=False)
    response = get_signed(client("prompt"), pairs)
    assert response.status_code == 200, response.get_json()
    assert [a["text"] for a in response.get_json()] == ["Thank you. Goodbye."]
    doc = json.loads((tmp_path / "data" / transaction_key(tid)).read_text())
    assert (doc["status"], doc["attempts"]) == ("ok", 1)
