"""The Cloud Functions through functions-framework: NCCOs, events, signatures and bad input."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.core.errors import Unauthorized
from shared.core.signatures import sign_webhook
from shared.core.tokens import verify_stream_token
from tests.ncco_models import check_ncco
from tests.testbed import SECRET, TOKEN_SECRET, client
from tests.vonage_signing import bearer, query_payload


def answer_params(conversation_uuid: str = "CON-7f3a") -> dict[str, str]:
    return {"conversation_uuid": conversation_uuid, "uuid": "leg-1", "from": "447700900123", "to": "447700900000"}


def test_answer_greets_then_streams_to_the_recorder(environment: Callable[..., None]) -> None:
    response = client("answer").get("/", query_string=answer_params())
    assert response.status_code == 200
    ncco = response.get_json()
    check_ncco(ncco)
    talk, connect = ncco
    assert talk == {"action": "talk", "text": "Hello. This call is recorded."}
    endpoint = connect["endpoint"][0]
    assert endpoint["uri"] == "wss://rec.example.test/socket"
    assert endpoint["content-type"] == "audio/l16;rate=16000"
    headers = endpoint["headers"]
    assert {k: headers[k] for k in ("conversation_uuid", "uuid", "from", "to")} == answer_params()
    verify_stream_token(TOKEN_SECRET, "CON-7f3a", headers["token"], time.time())
    assert sum(len(k) + len(v) for k, v in headers.items()) <= 512
    assert connect["from"] == "447700900000"
    # The first of the call's websocket legs; its events, sealed to the call, may connect it again.
    assert headers["leg"] == "1" and connect["eventType"] == "synchronous"
    event_url = connect["eventUrl"][0]
    assert event_url.startswith("https://fn.example.test/event?leg=1&sig=")


def test_answer_accepts_post_and_settings_shape_the_ncco(environment: Callable[..., None]) -> None:
    environment(STREAM_RATE="8000", GREETING="Welcome to Acme.")
    response = client("answer").post("/", json=answer_params() | {"from": ""})
    ncco = response.get_json()
    check_ncco(ncco)
    assert ncco[0]["text"] == "Welcome to Acme."
    assert ncco[1]["endpoint"][0]["content-type"] == "audio/l16;rate=8000"


def test_answer_for_a_number_vonage_cannot_present_picks_a_random_caller_id(environment: Callable[..., None]) -> None:
    ncco = client("answer").get("/", query_string=answer_params() | {"to": "sip-user"}).get_json()
    check_ncco(ncco)
    assert ncco[1]["randomFromNumber"] is True and "from" not in ncco[1]


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"Authorization": f"Bearer {sign_webhook(body, secret, time.time(), str(uuid.uuid4()))}"}


def test_signed_webhooks_are_required_when_a_secret_is_set(environment: Callable[..., None]) -> None:
    environment(VONAGE_SIGNATURE_SECRET=SECRET)
    answer = client("answer")
    query = list(answer_params().items())
    unsigned = answer.get("/", query_string=query)
    assert unsigned.status_code == 503 and unsigned.headers["Retry-After"]
    assert "not signed" in unsigned.get_json()["error"]
    forged = answer.get("/", query_string=query, headers=bearer(query_payload(query), "wrong-secret"))
    assert forged.status_code == 401
    assert forged.get_json() == {"error": "bad webhook signature"}
    # A GET is signed over its query, not over its (empty) body.
    assert answer.get("/", query_string=query, headers=bearer(b"", SECRET)).status_code == 401
    good = answer.get("/", query_string=query, headers=bearer(query_payload(query), SECRET))
    assert good.status_code == 200

    body = json.dumps({"conversation_uuid": "CON-1", "status": "started", "timestamp": "2026-01-01T00:00:00Z"}).encode()
    event = client("event")
    tampered = event.post(
        "/", data=body.replace(b"started", b"completed"), headers=signed(body), content_type="application/json"
    )
    assert tampered.status_code == 401
    assert "payload_hash" in tampered.get_json()["error"]
    assert event.post("/", data=body, headers=signed(body), content_type="application/json").status_code == 204


def test_event_keeps_each_status_once_in_call_json(environment: Callable[..., None], tmp_path: Path) -> None:
    event = client("event")
    base = {"conversation_uuid": "CON-9", "uuid": "leg-1", "from": "447700900123", "to": "447700900000"}
    statuses = [("started", "01"), ("ringing", "02"), ("answered", "03"), ("completed", "09")]
    for status, second in statuses + statuses[1:2]:  # Vonage's retry repeats `ringing`
        payload = base | {"status": status, "timestamp": f"2026-01-01T00:00:{second}.000Z", "direction": "inbound"}
        assert event.post("/", json=payload).status_code == 204
    assert (
        event.post("/", json=base | {"status": "transfer", "timestamp": "2026-01-01T00:00:05.000Z"}).status_code == 204
    )
    call = json.loads((tmp_path / "data" / "calls" / "CON-9" / "call.json").read_text())
    assert [e["status"] for e in call["events"]] == ["started", "ringing", "answered", "transfer", "completed"]
    assert call["status"] == "completed"
    assert (call["from"], call["to"], call["direction"]) == ("447700900123", "447700900000", "inbound")


@pytest.mark.parametrize(
    ("target", "method", "kwargs", "status"),
    [
        ("answer", "get", {"query_string": {"uuid": "u", "to": "1"}}, 400),
        ("answer", "get", {"query_string": {"conversation_uuid": "../x", "uuid": "u", "to": "1"}}, 400),
        ("answer", "put", {"json": {}}, 405),
        ("event", "post", {"data": b"{not json", "content_type": "application/json"}, 400),
        ("event", "post", {"json": ["a", "list"]}, 400),
        ("event", "post", {"json": {"conversation_uuid": "../x", "status": "answered"}}, 400),
        ("event", "post", {"data": b"x" * 70_000, "content_type": "application/json"}, 413),
        ("event", "post", {"data": b"a=%zz&&", "content_type": "application/x-www-form-urlencoded"}, 400),
        ("event", "delete", {}, 405),
    ],
)
def test_bad_input_gets_a_4xx_with_a_json_error(
    environment: Callable[..., None], target: str, method: str, kwargs: dict[str, Any], status: int
) -> None:
    response = getattr(client(target), method)("/", **kwargs)
    assert response.status_code == status
    body = response.get_json()
    assert isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in response.get_data(as_text=True)


def test_a_broken_setting_answers_json_not_a_stack_trace(environment: Callable[..., None]) -> None:
    environment(STREAM_RATE="44100")
    response = client("answer").get("/", query_string=answer_params())
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal error"}


def test_a_function_runs_against_the_services_installed_on_its_app(tmp_path: Path) -> None:
    """The composition root: the store and the clock handed in are the ones the functions use."""
    from functions_framework import create_app

    from shared.adapters.local_blob_store import LocalBlobStore
    from shared.config.settings import Settings, StreamSettings
    from shared.runtime.services import Services, install_services
    from tests.testbed import FUNCTIONS_SOURCE

    store = LocalBlobStore(tmp_path / "injected")
    services = Services(Settings(stream=StreamSettings(token_secret=TOKEN_SECRET)), store=store, clock=lambda: 1e9)
    answer, event = (create_app(target=name, source=FUNCTIONS_SOURCE) for name in ("answer", "event"))
    install_services(answer, services)
    install_services(event, services)

    ncco = answer.test_client().get("/", query_string=answer_params()).get_json()
    token = ncco[1]["endpoint"][0]["headers"]["token"]
    # Minted at the injected clock's time, with the default 300 s lifetime.
    verify_stream_token(TOKEN_SECRET, "CON-7f3a", token, 1e9 + 299)
    with pytest.raises(Unauthorized, match="expired"):
        verify_stream_token(TOKEN_SECRET, "CON-7f3a", token, 1e9 + 301)
    status = {
        "conversation_uuid": "CON-7f3a",
        "uuid": "leg-1",
        "status": "ringing",
        "timestamp": "2026-11-30T10:00:00Z",
    }
    assert event.test_client().post("/", json=status).status_code == 204
    assert store.read("calls/CON-7f3a/call.json") is not None
