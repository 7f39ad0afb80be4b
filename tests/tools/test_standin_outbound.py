"""The Vonage stand-in's outbound calls: a small PIN prompt back end on loopback places calls
through the real v4 SDK against the stand-in's create-call API over TLS, and the stand-in plays
the person called as each number's script says."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from flask import Flask, jsonify, request
from vonage import Auth, HttpClientOptions, Vonage
from vonage_http_client.errors import AuthenticationError
from vonage_voice import CreateCallRequest

from tests.testbed import SECRET
from tests.vonage_signing import is_signed_as_vonage_signs
from tools.standin import CalleeScript, OutboundReport
from tools.standin.api import StandinApi, make_application_key, make_tls_files, public_key_of, serve_in_thread
from tools.standin.outbound import typed_digits

CALLEE = "447700900001"
CALLER_ID = "447700900002"
PIN = "1234"
PROMPT = "Please enter your PIN, then press hash."
TRIES = 3


@dataclass(frozen=True)
class Hook:
    kind: str
    method: str
    fields: dict[str, Any]
    signed: bool


@dataclass
class PromptBackEnd:
    """The prompt feature's webhooks, reduced: a PIN of 1234, three tries, and what it was sent."""

    url: str = ""
    hooks: list[Hook] = field(default_factory=list)
    answers: dict[str, Any] = field(default_factory=dict)  # input body -> the NCCO given, so copies get the same
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Flask:
        app = Flask("prompt-back-end")

        @app.route("/answer", methods=["GET", "POST"])
        def answer() -> Any:
            self._record("answer")
            return jsonify([{"action": "talk", "text": PROMPT, "bargeIn": True}, self.input_action()])

        @app.route("/input", methods=["GET", "POST"])
        def typed() -> Any:
            fields = self._record("input")
            key = json.dumps(fields, sort_keys=True)
            with self.lock:
                if key not in self.answers:
                    tries = len(self.answers) + 1
                    dtmf = fields["dtmf"]
                    digits = dtmf if isinstance(dtmf, str) else dtmf["digits"]
                    if digits == PIN:
                        ncco = [{"action": "talk", "text": "bye"}]
                    elif tries < TRIES:
                        ncco = [{"action": "talk", "text": "again"}, self.input_action()]
                    else:
                        ncco = [{"action": "talk", "text": "sorry"}]
                    self.answers[key] = ncco
                return jsonify(self.answers[key])

        @app.route("/event", methods=["GET", "POST"])
        def event() -> Any:
            self._record("event")
            return "", 204

        return app

    def input_action(self) -> dict[str, Any]:
        return {
            "action": "input",
            "type": ["dtmf"],
            "dtmf": {"maxDigits": len(PIN), "submitOnHash": True, "timeOut": 5},
            "eventUrl": [f"{self.url}/input"],
        }

    def _record(self, kind: str) -> dict[str, Any]:
        body = request.get_data()
        signed = is_signed_as_vonage_signs(request, SECRET)
        if request.method == "GET":
            # Vonage's GET webhooks carry objects (an input's `dtmf`) as JSON text.
            fields = {k: json.loads(v) if v.startswith("{") else v for k, v in request.args.items()}
        else:
            fields = json.loads(body)
        with self.lock:
            self.hooks.append(Hook(kind, request.method, fields, signed))
        return fields

    def of(self, kind: str) -> list[Hook]:
        return [hook for hook in self.hooks if hook.kind == kind]


@dataclass
class Platform:
    api: StandinApi
    back_end: PromptBackEnd
    base: str
    key: bytes

    def vonage(self, key: bytes | None = None) -> Vonage:
        """The v4 SDK as tapedeck builds it, pointed at the stand-in (it always speaks https)."""
        auth = Auth(application_id="standin-application", private_key=(key or self.key).decode())
        return Vonage(auth, HttpClientOptions(api_host=self.base.removeprefix("https://"), max_retries=0))

    def call(self, script: CalleeScript | None = None, **options: Any) -> OutboundReport:
        """Place a call to CALLEE through the SDK and wait until it is over."""
        if script is not None:
            self.api.scripts[CALLEE] = script
        if "ncco" not in options:
            options.setdefault("answer_url", [f"{self.back_end.url}/answer"])
        response = self.vonage().voice.create_call(
            CreateCallRequest(
                to=[{"type": "phone", "number": CALLEE}],
                from_={"type": "phone", "number": CALLER_ID},
                event_url=[f"{self.back_end.url}/event"],
                **options,
            )
        )
        assert (response.status, response.direction) == ("started", "outbound")
        report = self.api.wait_for_call(response.uuid, timeout=10)
        assert (report.uuid, report.conversation_uuid) == (response.uuid, response.conversation_uuid)
        return report

    def body(self, **changes: Any) -> dict[str, Any]:
        """A create-call body as the SDK sends it, with `changes` (None removes a key)."""
        body = {
            "to": [{"type": "phone", "number": CALLEE}],
            "from": {"type": "phone", "number": CALLER_ID},
            "answer_url": [f"{self.back_end.url}/answer"],
            "event_url": [f"{self.back_end.url}/event"],
        }
        body.update(changes)
        return {k: v for k, v in body.items() if v is not None}

    def post(self, body: Any, key: bytes | None = None) -> requests.Response:
        token = jwt.encode({"application_id": "standin-application", "iat": int(time.time())}, key or self.key, "RS256")
        headers = {"Authorization": f"Bearer {token}"}
        return requests.post(f"{self.base}/v1/calls", json=body, headers=headers, timeout=10)


@pytest.fixture
def platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    key = make_application_key(tmp_path / "application.pem")
    cert, cert_key = make_tls_files(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    api = StandinApi(public_key_of(key), signature_secret=SECRET)
    back_end = PromptBackEnd()
    with (
        api.serving("127.0.0.1", 0, tls=(cert, cert_key)) as base,
        serve_in_thread(back_end.app(), "127.0.0.1", 0) as url,
    ):
        back_end.url = url
        yield Platform(api, back_end, base, key)


def test_the_right_pin_on_the_second_try(platform: Platform) -> None:
    report = platform.call(CalleeScript(dtmf=("1111", "1234#")))

    assert report.talks == [PROMPT, "again", "bye"]
    assert report.inputs == [("1111", 200), ("1234", 200)]
    assert report.statuses == ["started", "ringing", "answered", "completed"]
    assert report.error is None and report.answer_status == 200
    (answer,) = platform.back_end.of("answer")
    call = {"from": CALLER_ID, "to": CALLEE, "uuid": report.uuid, "conversation_uuid": report.conversation_uuid}
    assert (answer.method, answer.fields) == ("GET", call)
    first, second = (hook.fields for hook in platform.back_end.of("input"))
    # As the live capture of a DTMF-only input: speech reported as not enabled, then the digits.
    speech = {"error": "Speech was not enabled"}
    assert first.pop("timestamp") and first == {
        **call,
        "speech": speech,
        "dtmf": {"digits": "1111", "timed_out": False},
    }
    assert second["dtmf"] == {"digits": "1234", "timed_out": False}
    events = [hook.fields for hook in platform.back_end.of("event")]
    assert all(event.items() >= {**call, "direction": "outbound"}.items() for event in events)
    assert events[-1]["duration"] == "0" and events[-1]["start_time"] <= events[-1]["end_time"]
    assert all(hook.signed and hook.method in ("GET", "POST") for hook in platform.back_end.hooks)


def test_legacy_input_webhooks_carry_the_digits_as_a_string(platform: Platform) -> None:
    report = platform.call(CalleeScript(dtmf=("1234",), legacy_dtmf=True))

    (hook,) = platform.back_end.of("input")
    assert (hook.fields["dtmf"], hook.fields["timed_out"]) == ("1234", False)
    assert set(hook.fields) == {"from", "to", "uuid", "conversation_uuid", "dtmf", "timed_out", "timestamp"}
    assert report.talks == [PROMPT, "bye"]


def test_keys_stop_at_max_digits_or_hash_and_silence_times_out(platform: Platform) -> None:
    report = platform.call(CalleeScript(dtmf=("-", "12#9", "567890")))

    sent = [hook.fields["dtmf"] for hook in platform.back_end.of("input")]
    assert sent == [
        {"digits": "", "timed_out": True},
        {"digits": "12", "timed_out": False},
        {"digits": "5678", "timed_out": False},
    ]
    assert report.talks == [PROMPT, "again", "again", "sorry"]
    assert report.statuses[-1] == "completed"


def test_a_script_that_runs_out_lets_each_input_time_out(platform: Platform) -> None:
    report = platform.call(CalleeScript(dtmf=("12",)))

    assert report.inputs == [("12", 200), ("", 200), ("", 200)]
    assert platform.back_end.of("input")[0].fields["dtmf"] == {"digits": "12", "timed_out": True}


@pytest.mark.parametrize(
    ("outcome", "last"),
    [("busy", {"status": "busy"}), ("unanswered", {"status": "unanswered", "detail": "timeout"})],
)
def test_a_call_that_never_connects_ends_on_its_outcome(platform: Platform, outcome: str, last: dict[str, str]) -> None:
    report = platform.call(CalleeScript(outcome=outcome, dtmf=("1234",)))

    assert report.statuses == ["started", "ringing", outcome]
    events = [hook.fields for hook in platform.back_end.of("event")]
    assert events[-1].items() >= last.items()
    assert platform.back_end.of("answer") == [] and report.answer_status is None
    assert (report.talks, report.inputs) == ([], [])


def test_repeated_webhooks_do_not_repeat_the_call(platform: Platform) -> None:
    report = platform.call(CalleeScript(dtmf=("1111", "1234"), webhook_copies=2))

    inputs = platform.back_end.of("input")
    assert [hook.fields["dtmf"]["digits"] for hook in inputs] == ["1111", "1111", "1234", "1234"]
    assert inputs[0] == inputs[1] and inputs[2] == inputs[3]
    statuses = [hook.fields["status"] for hook in platform.back_end.of("event")]
    assert statuses == ["started", "started", "ringing", "ringing", "answered", "answered", "completed", "completed"]
    assert len(platform.back_end.of("answer")) == 1
    assert report.talks == [PROMPT, "again", "bye"]
    assert report.inputs == [("1111", 200), ("1234", 200)]


def test_completed_can_arrive_before_the_last_input(platform: Platform) -> None:
    report = platform.call(CalleeScript(dtmf=("1111", "1234"), completed_first=True))

    order = [
        (hook.kind, hook.fields.get("status") or hook.fields.get("dtmf", {}).get("digits"))
        for hook in platform.back_end.hooks
    ]
    assert order[-3:] == [("input", "1111"), ("event", "completed"), ("input", "1234")]
    assert report.talks == [PROMPT, "again"]  # gone before the goodbye
    assert report.statuses[-1] == "completed"


def test_a_person_who_hangs_up_sends_no_more_input(platform: Platform) -> None:
    report = platform.call(CalleeScript(dtmf=("1111", "1234"), hang_up_after_inputs=1))

    assert report.inputs == [("1111", 200)]
    assert report.talks == [PROMPT]
    assert [hook.kind for hook in platform.back_end.hooks][-2:] == ["input", "event"]
    assert report.statuses[-1] == "completed"


def test_answer_and_event_methods_are_honoured(platform: Platform) -> None:
    report = platform.call(CalleeScript(dtmf=("1234",)), answer_method="POST", event_method="GET")

    (answer,) = platform.back_end.of("answer")
    assert answer.method == "POST" and answer.fields["uuid"] == report.uuid
    events = platform.back_end.of("event")
    assert {hook.method for hook in events} == {"GET"} and events[-1].fields["status"] == "completed"
    assert all(hook.signed for hook in platform.back_end.hooks)


def test_an_ncco_in_the_request_is_run_without_an_answer_url(platform: Platform) -> None:
    ncco = [{"action": "talk", "text": PROMPT, "bargeIn": True}, platform.back_end.input_action()]
    report = platform.call(CalleeScript(dtmf=("1234",)), ncco=ncco)

    assert platform.back_end.of("answer") == []
    assert report.talks == [PROMPT, "bye"] and report.ncco[0]["text"] == PROMPT


def test_the_api_wants_the_application_jwt(platform: Platform, tmp_path: Path) -> None:
    other = make_application_key(tmp_path / "someone-else.pem")
    with pytest.raises(AuthenticationError):
        platform.vonage(other).voice.create_call(
            CreateCallRequest(
                to=[{"type": "phone", "number": CALLEE}],
                from_={"type": "phone", "number": CALLER_ID},
                answer_url=[f"{platform.back_end.url}/answer"],
                event_url=[f"{platform.back_end.url}/event"],
            )
        )
    forged = platform.post(platform.body(), key=other)
    assert forged.status_code == 401 and forged.json()["title"] == "Unauthorized"
    unsigned = requests.post(f"{platform.base}/v1/calls", json=platform.body(), timeout=10)
    assert unsigned.status_code == 401
    assert platform.api.outbound == {}


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"to": None}, "to must be a list"),
        ({"to": [{"type": "phone", "number": "+44 7700"}]}, "to[0].number"),
        ({"to": [{"type": "sip", "uri": "sip:a@b"}]}, "to[0].type"),
        ({"from": None}, "random_from_number"),
        ({"random_from_number": True}, "random_from_number"),
        ({"ncco": [{"action": "talk", "text": "hi"}]}, "answer_url and ncco"),
        ({"answer_url": "https://example.com/answer"}, "answer_url must be a list"),
        ({"answer_method": "PUT"}, "answer_method"),
        ({"event_url": None}, "event_url"),
        ({"event_method": "DELETE"}, "event_method"),
    ],
)
def test_a_bad_body_is_refused_naming_the_problem(platform: Platform, changes: dict[str, Any], problem: str) -> None:
    response = platform.post(platform.body(**changes))

    assert response.status_code == 400
    error = response.json()
    assert error["title"] == "Bad Request" and problem in error["detail"] and error["type"].startswith("https://")
    assert platform.api.outbound == {}


def test_a_body_that_is_not_json_is_refused(platform: Platform) -> None:
    assert platform.post([1, 2]).status_code == 400


@pytest.mark.parametrize(
    ("keys", "expected"),
    [("", ("", True)), ("-", ("", True)), ("12", ("12", True)), ("12345", ("1234", False)), ("1#", ("1", False))],
)
def test_typed_digits(keys: str, expected: tuple[str, bool]) -> None:
    assert typed_digits(keys, 4, submit_on_hash=True) == expected
    assert typed_digits("1#23", 4, submit_on_hash=False) == ("1#23", False)


def test_dtmf_scripts_parse_from_the_command_line() -> None:
    assert CalleeScript.parse_dtmf("1111,-,,1234") == ("1111", "-", "", "1234")
    assert CalleeScript.parse_dtmf("") == ()
    with pytest.raises(ValueError, match="DTMF"):
        CalleeScript(dtmf=("12a",))
    with pytest.raises(ValueError, match="outcome"):
        CalleeScript(outcome="maybe")
