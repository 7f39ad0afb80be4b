"""Hostile input to the functions, case by case: each gets a 4xx with a JSON error, and a failed
request leaves nothing behind. (tests/e2e/test_fuzz.py generates many more.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from shared.config.settings import Settings
from shared.flows.jobs import recording_event_url
from tests.testbed import TOKEN_SECRET, client
from tools.standin.api import make_application_key

Environment = Callable[..., None]
MAILBOX, CALLER, CONVERSATION = "447700900001", "447700900123", "CON-4b3a2c1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d"
PROMPT_KEY = "prompt-key-for-tests"
TRANSCRIPTION_KEY = "transcription-key-for-tests"


@pytest.fixture
def hostile(environment: Environment, tmp_path: Path) -> Settings:
    make_application_key(tmp_path / "application.pem")
    routes = tmp_path / "routes.yaml"
    routes.write_text(f'"{MAILBOX}":\n  flow: voicemail\n  owner: Sam\n  recipients: ["447700900111"]\n')
    env = {
        "ROUTES_FILE": str(routes),
        "VONAGE_APPLICATION_ID": "standin-application",
        "VONAGE_PRIVATE_KEY": str(tmp_path / "application.pem"),
        "PROMPT_API_KEY": PROMPT_KEY,
        "TRANSCRIPTION_API_KEY": TRANSCRIPTION_KEY,
        "ALLOW_PRIVATE_CALLBACKS": "true",
    }
    environment(**env)
    return Settings.from_env({"STREAM_TOKEN_SECRET": TOKEN_SECRET, "PUBLIC_URL": "https://fn.example.test", **env})


def refused(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert isinstance(body, dict) and isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body


DEEP = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("event", DEEP),
        ("event", '{"conversation_uuid": "CON-1", "status": ' + DEEP + "}"),
        ("event", '{"conversation_uuid": "CON-1", "status": "answered", "status": "completed"}'),
        ("event", '{"conversation_uuid": "CON-1", "duration": NaN}'),
        ("event", '{"conversation_uuid": "CON-1", "duration": Infinity}'),
        ("event", '{"conversation_uuid": "CON-1", "duration": 1e999}'),
        ("event", '{"conversation_uuid": "CON-1", "status": "\\ud800"}'),
        ("event", '{"conversation_uuid": "CON-1\\n", "status": "answered"}'),
        ("event", '{"type": "transfer", "conversation_uuid_to": "CON-2\\n", "uuid": "u"}'),
        ("answer", '{"conversation_uuid": "CON-1", "uuid": "u", "to": ' + DEEP + "}"),
        ("call", DEEP),
        ("recording", DEEP),
    ],
)
def test_malformed_json_is_a_bad_request(hostile: Settings, target: str, body: str) -> None:
    refused(client(target).post("/", data=body, content_type="application/json"), 400)


def test_a_repeated_query_parameter_is_refused(hostile: Settings) -> None:
    query = [("conversation_uuid", "CON-1"), ("uuid", "u"), ("to", MAILBOX), ("to", "447700900999")]
    refused(client("answer").get("/", query_string=query), 400)


def recording_webhook(settings: Settings, **fields: Any) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """The sealed query of the record eventUrl, and a webhook body."""
    query = parse_qsl(urlsplit(recording_event_url(settings, CONVERSATION, CALLER, MAILBOX)).query)
    body = {"recording_uuid": "r-1", "recording_url": "", "size": 0, "conversation_uuid": CONVERSATION, **fields}
    return query, body


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"recording_url": "https://[::1", "size": 10}, 400),
        ({"recording_url": "https://api.nexmo.com:99999/v1/files/x", "size": 10}, 400),
        ({"size": 1e300}, 400),
        ({"size": -1}, 400),
        ({"size": 10**20}, 400),
        ({"size": "١٢"}, 400),
        ({"size": True}, 400),
        ({"recording_uuid": "r-1\n"}, 400),
        ({"recording_uuid": "../r-1"}, 400),
    ],
)
def test_a_bad_recording_webhook_is_refused_and_leaves_nothing(
    hostile: Settings, tmp_path: Path, fields: dict[str, Any], status: int
) -> None:
    query, body = recording_webhook(hostile, **fields)
    refused(client("recording").post("/", query_string=query, json=body), status)
    assert not (tmp_path / "data" / "jobs").exists() and not (tmp_path / "data" / "outbox").exists()


@pytest.mark.parametrize("seal", ["é", "١٢٣", "a\n", "\u0000", "x" * 5000])
def test_odd_seals_are_unauthorized(hostile: Settings, seal: str) -> None:
    query, body = recording_webhook(hostile)
    forged = [(k, seal if k == "sig" else v) for k, v in query]
    refused(client("recording").post("/", query_string=forged, json=body), 401)


@pytest.mark.parametrize("tid", ["é", "6F1C2B9E-1D6A-4F0E-8C59-1F2D3C4B5A69", "{6f1c2b9e-1d6a-4f0e-8c59-1f2d3c4b5a69}"])
def test_odd_transaction_ids_are_refused(hostile: Settings, tid: str) -> None:
    response = client("prompt").post("/", query_string={"tid": tid, "step": "event", "sig": "é"}, json={})
    refused(response, 401)
    lookup = client("call").get(f"/{tid}", headers={"X-Tapedeck-Key": PROMPT_KEY})
    refused(lookup, 404)


def prompt_fields(**changes: Any) -> dict[str, Any]:
    fields = {
        "to": "447700900001",
        "from": "447700900000",
        "text": "Your code, please.",
        "pin_code": "1234",
        "callback": "https://cb.example.test/hook",
    }
    return {**fields, **changes}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"pin_code": "١٢٣٤"}, "pin_code"),
        ({"pin_code": "\uff11\uff12\uff13\uff14"}, "pin_code"),
        ({"pin_code": "1234\n"}, "pin_code"),
        ({"pin_code": True}, "pin_code"),
        ({"to": "٤٤٧٧٠٠٩٠٠٠٠١"}, "to"),
        ({"to": "447700900001\n"}, "to"),
        ({"from": "\uff14" * 2 + "\uff17" * 2 + "\uff10" * 2 + "\uff19" + "\uff10" * 5}, "from"),
        ({"language": "en-US\n"}, "language"),
        ({"language": "english"}, "language"),
        ({"callback": "https://[::1"}, "callback"),
        ({"callback": "https://cb.example.test:99999/"}, "callback"),
        ({"max_attempts": 1e300}, "max_attempts"),
        ({"max_attempts": "٣"}, "max_attempts"),
        ({"voice": -1}, "voice"),
        ({"callback_method": ["GET"]}, "callback_method"),
    ],
)
def test_bad_prompt_fields_are_named_and_nothing_is_written(
    hostile: Settings, tmp_path: Path, changes: dict[str, Any], field: str
) -> None:
    response = client("call").post("/", json=prompt_fields(**changes), headers={"X-Tapedeck-Key": PROMPT_KEY})
    assert field in refused(response, 400)["fields"]
    assert not (tmp_path / "data" / "prompts").exists()


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"to": "12345"}, "to", "7 to 15 digits"),
        ({"from": "0447700900"}, "from", "7 to 15 digits"),
        ({"pin_code": "1" * 21}, "pin_code", "1 to 20 digits"),
        ({"text": "x" * 1501}, "text", "is 1,501 characters, over Vonage's 1,500-character talk limit"),
        ({"text": " \n "}, "text", "has nothing to say"),
        ({"bye_text": "<speak>Tom & Jerry</speak>"}, "bye_text", "not one well-formed SSML <speak> element"),
        ({"failed_text": "y" * 1600}, "failed_text", "is 1,600 characters"),
        ({"language": "fr-BE"}, "language", "'fr-BE' is not one of Vonage's text-to-speech languages"),
        ({"language": ["en-US"]}, "language", "must be a string"),
        ({"language": "en-GB", "voice": 8}, "voice", "8 is not a voice style of en-GB (its styles: 0-7, 9)"),
        ({"language": "cy-GB", "voice": "1"}, "voice", "1 is not a voice style of cy-GB (its styles: 0)"),
        ({"voice": 24}, "voice", "must be a whole number from 0 to 23"),
    ],
)
def test_prompt_fields_vonage_would_refuse_are_named_and_nothing_is_written(
    hostile: Settings, tmp_path: Path, changes: dict[str, Any], field: str, says: str
) -> None:
    response = client("call").post("/", json=prompt_fields(**changes), headers={"X-Tapedeck-Key": PROMPT_KEY})
    body = refused(response, 400)
    assert field in body["error"] and set(body["fields"]) == {field}
    assert says in body["fields"][field]
    assert not (tmp_path / "data" / "prompts").exists()


@pytest.mark.parametrize(
    "key",
    [
        "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\n" + "A" * 64 + "\n-----END PRIVATE KEY-----\n",
    ],
)
def test_a_garbage_private_key_is_a_bad_request_and_writes_no_transaction(
    hostile: Settings, tmp_path: Path, key: str
) -> None:
    fields = prompt_fields(app_id="5b1c0d2e-3f4a-4b5c-8d6e-7f8a9b0c1d2e", private_key=key)
    response = client("call").post("/", json=fields)
    assert "private_key" in refused(response, 400)["fields"]
    assert not (tmp_path / "data" / "prompts").exists()


@pytest.mark.parametrize("name", ["../../../etc/passwd", "tapedeck-vm-r1\u0000", "tapedeck-vm-r1\n", "tapedeck-vm-é"])
def test_a_transcription_event_naming_an_unsafe_job_is_not_ours(hostile: Settings, name: str) -> None:
    event = {"source": "aws.transcribe", "detail": {"TranscriptionJobName": name}}
    key = {"X-Tapedeck-Key": TRANSCRIPTION_KEY}
    response = client("transcription").post("/", json=event, headers=key)
    assert response.status_code == 200
    assert response.get_json() == {"job": name, "result": "unknown job"}
    refused(client("transcription").post("/", json=event, headers={"X-Tapedeck-Key": "é"}), 401)
