"""The stand-in speaks as the live Vonage platform does: checked against the shapes of captured
requests and Vonage's documentation, by a receiver that shares nothing with tapedeck's parsers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from flask import Flask, jsonify, request

from tests.testbed import DATA, SECRET
from tests.vonage_signing import is_signed_as_vonage_signs
from tools.standin import CalleeScript, OutboundReport, VonageStandin
from tools.standin.api import serve_in_thread
from tools.standin.outbound import OutboundCall
from tools.standin.webhooks import WebhookSigning

# Field names of the live captures (vendor request recordings of an inbound call), as sets.
EVENT_FIELDS = {"headers", "from", "to", "uuid", "conversation_uuid", "status", "direction", "timestamp"}
ANSWERED_FIELDS = EVENT_FIELDS | {"start_time", "rate", "network"}
COMPLETED_FIELDS = EVENT_FIELDS | {"start_time", "end_time", "duration", "rate", "price", "network"}
TRANSFER_FIELDS = {"conversation_uuid_from", "type", "uuid", "conversation_uuid_to", "timestamp"}
# Vonage's transcription webhook (its .NET SDK's fixture): no numbers, no timestamp.
TRANSCRIPTION_FIELDS = {"conversation_uuid", "recording_uuid", "status", "transcription_url", "type"}
# The answer webhook's query in the capture's order; `region_url` is documented since.
ANSWER_ORDER = ["to", "from", "conversation_uuid", "uuid"]


@dataclass(frozen=True)
class Received:
    path: str
    method: str
    query: list[tuple[str, str]]
    body: Any
    signed: bool
    authorization: bool


@dataclass
class Receiver:
    """A webhook receiver that keeps what it gets; with `refuse_unsigned` it answers those 503."""

    refuse_unsigned: bool = False
    got: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Flask:
        app = Flask("receiver")

        @app.route("/<kind>", methods=["GET", "POST"])
        def hook(kind: str) -> Any:
            authorized = "Authorization" in request.headers
            body = json.loads(request.get_data()) if request.method == "POST" else None
            query = parse_qsl(request.query_string.decode(), keep_blank_values=True)
            with self.lock:
                self.got.append(
                    Received(kind, request.method, query, body, is_signed_as_vonage_signs(request, SECRET), authorized)
                )
            if self.refuse_unsigned and not authorized:
                return jsonify({"error": "unsigned"}), 503, {"Retry-After": "1"}
            if kind == "answer":
                return jsonify([{"action": "talk", "text": "Hello."}])
            if kind == "answer-transcribed":
                hooks = request.host_url.rstrip("/")
                transcription = {"language": "en-US", "eventUrl": [f"{hooks}/transcription"], "eventMethod": "POST"}
                record = {"action": "record", "endOnSilence": 3, "eventUrl": [f"{hooks}/recording"]}
                return jsonify([{**record, "transcription": transcription}])
            return "", 204

        return app

    def of(self, kind: str) -> list[Received]:
        return [r for r in self.got if r.path == kind]


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    found = Receiver()
    with serve_in_thread(found.app(), "127.0.0.1", 0) as base:
        yield found, base


def ring(base: str, signing: WebhookSigning) -> Any:
    standin = VonageStandin(signing=signing)
    return standin.inbound_call(f"{base}/answer", f"{base}/event", Path(DATA / "silence_2s.wav"), fast=True)


def test_an_inbound_call_s_webhooks_have_the_captured_shapes(receiver: tuple[Receiver, str]) -> None:
    found, base = receiver
    report = ring(base, WebhookSigning(SECRET))
    (answer,) = found.of("answer")
    assert answer.method == "GET" and [k for k, _ in answer.query][:4] == ANSWER_ORDER
    assert answer.signed
    events = found.of("event")
    assert all(e.method == "POST" and e.signed for e in events)
    bodies = [e.body for e in events]
    assert [b.get("status", b.get("type")) for b in bodies] == [
        "started",
        "ringing",
        "answered",
        "transfer",
        "completed",
    ]
    started, ringing, answered, transfer, completed = bodies
    assert set(started) == set(ringing) == EVENT_FIELDS
    assert set(answered) == ANSWERED_FIELDS and answered["rate"] is None and answered["network"] is None
    assert set(completed) == COMPLETED_FIELDS
    assert all(isinstance(completed[k], str) for k in ("duration", "rate", "price"))
    assert set(transfer) == TRANSFER_FIELDS
    assert transfer["conversation_uuid_to"] == report.conversation_uuid
    assert transfer["conversation_uuid_from"] != report.conversation_uuid
    assert transfer["uuid"] == report.uuid
    assert started["headers"] == {}


@pytest.mark.parametrize("reading", ["all", "added"])
def test_a_get_is_signed_over_its_query_in_either_reading(receiver: tuple[Receiver, str], reading: str) -> None:
    found, base = receiver
    signing = WebhookSigning(SECRET, query_reading=reading)
    VonageStandin(signing=signing).fetch_ncco(f"{base}/answer?tid=t-1&sig=seal", {"to": "447700900000", "n": "Zoë"})
    (answer,) = found.of("answer")
    assert answer.query[:2] == [("tid", "t-1"), ("sig", "seal")]
    # The receiver checks the "all" reading; the other signs only what Vonage added.
    assert answer.signed is (reading == "all")


def test_unsigned_first_then_signed_once_answered_with_a_5xx(receiver: tuple[Receiver, str]) -> None:
    found, base = receiver
    found.refuse_unsigned = True
    report = ring(base, WebhookSigning(SECRET, unsigned_first=True))
    assert set(report.event_statuses.values()) == {204}
    for kind in ("answer", "event"):
        deliveries = found.of(kind)
        assert [d.authorization for d in deliveries[:2]] == [False, True]
        assert all(d.signed for d in deliveries if d.authorization)
    assert len(found.of("event")) == 2 * 5


def test_a_get_input_webhook_carries_dtmf_and_speech_as_compact_json_text(receiver: tuple[Receiver, str]) -> None:
    found, base = receiver
    action = {"action": "input", "type": ["dtmf"], "dtmf": {"maxDigits": 4}, "eventUrl": [f"{base}/input"]}
    request = {
        "to": [{"type": "phone", "number": "447700900001"}],
        "from": {"type": "phone", "number": "447700900000"},
        "ncco": [action | {"eventMethod": "GET"}],
        "event_url": [f"{base}/event"],
    }
    report = OutboundReport.for_request(request, CalleeScript(dtmf=("1234",)))
    OutboundCall(request, report, WebhookSigning(SECRET)).run()
    (typed,) = found.of("input")
    assert typed.method == "GET" and typed.signed
    query = dict(typed.query)
    # As the live capture of a GET input webhook: `speech` and `dtmf` are JSON text, no spaces.
    assert query["dtmf"] == '{"digits":"1234","timed_out":false}'
    assert query["speech"] == '{"error":"Speech was not enabled"}'
    assert {"from", "to", "uuid", "conversation_uuid", "timestamp"} <= set(query)


def test_a_transcribed_recording_s_webhook_has_vonage_s_shape_and_its_file_needs_the_jwt(
    receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    import requests

    from tools.standin.api import StandinApi, make_application_key, public_key_of

    found, base = receiver
    key = make_application_key(tmp_path / "application.pem")
    api = StandinApi(public_key_of(key))
    with api.serving("127.0.0.1", 0) as api_base:
        standin = VonageStandin(signing=WebhookSigning(SECRET), api=api, api_base=api_base)
        standin.transcript = (DATA / "vonage_transcript_voicemail.json").read_bytes()
        report = standin.inbound_call(f"{base}/answer-transcribed", f"{base}/event", DATA / "voicemail_outage.wav")
        (recording,) = found.of("recording")
        (transcription,) = found.of("transcription")
        assert transcription.method == "POST" and transcription.signed
        body = transcription.body
        assert set(body) == TRANSCRIPTION_FIELDS
        assert body["status"] == "transcribed" and body["type"] == "record"
        assert body["recording_uuid"] == recording.body["recording_uuid"] == report.recording_uuid
        assert body["conversation_uuid"] == report.conversation_uuid
        assert body["transcription_url"].startswith(f"{api_base}/v1/files/")
        assert requests.get(body["transcription_url"], timeout=10).status_code == 401
        from vonage_jwt import JwtClient

        token = JwtClient("standin-application", key.decode()).generate_application_jwt().decode()
        served = requests.get(body["transcription_url"], headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert served.status_code == 200 and served.headers["Content-Type"] == "application/json"
        assert set(served.json()) == {"ver", "request_id", "channels"}
