"""Property-based: generated and mutated input to every HTTP entry point and to the recorder's
websocket never gets a 5xx, a traceback or a non-JSON error, and stores nothing outside the store.

The HTTP side drives each Cloud Function as functions-framework serves it (in-process, for
throughput); the websocket side talks to the recorder under gunicorn on loopback. The inputs
start from Vonage's real shapes (tests/vonage_payloads.py) and from what each function reads,
and are mutated with hostile values. FUZZ_EXAMPLES scales how many are tried.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from shared.core.tokens import mint_stream_token, sign_caller
from tests import vonage_payloads as vonage
from tests.servers import free_port, gunicorn_command, running
from tests.testbed import SECRET, TOKEN_SECRET, client, platform_env
from tests.vonage_signing import query_payload, vonage_token
from tools.standin import CalleeScript
from tools.standin.api import StandinApi, make_application_key, make_tls_files, public_key_of

# Real servers or emulators on loopback, started by the tests.
pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3000"))
FUNCTIONS = ("answer", "event", "recording", "transcription", "link", "call", "prompt")
VONAGE_WEBHOOKS = ("answer", "event", "recording", "prompt")
USUAL_METHOD = {f: "GET" if f in ("answer", "link") else "POST" for f in FUNCTIONS}
MAILBOX, TALK_LINE = "447700900001", "447700900002"
API_KEY = "fuzz-api-key"
# Keys tapedeck writes (the embedded queue its tasks, the sweep its marks and problems); anything
# else in the store is something it should not have written.
STORE_KEY = re.compile(r"(calls|index/calls|jobs|links|outbox|prompts|tasks|sweep|problems)/[A-Za-z0-9._/-]+")
LOCK_FILE = re.compile(r"\.locks/[0-9a-f]{40}\.lock")

FIELDS = [
    "conversation_uuid", "uuid", "call_uuid", "status", "type", "to", "from", "timestamp", "direction",
    "recording_url", "recording_uuid", "size", "dtmf", "speech", "tid", "step", "sig", "attempt", "caller",
    "reason", "detail", "duration", "sip_code", "conversation_uuid_to", "conversation_uuid_from", "text",
    "pin_code", "callback", "callback_method", "language", "voice", "max_attempts", "app_id", "private_key",
    "id", "source", "detail", "event", "digit", "content-type", "token",
]  # fmt: skip
HOSTILE = [
    "", " ", "\n", "\u0000", "é", "Zoë", "١٢٣٤", "\uff11\uff12\uff13\uff14", "1234\n", "CON-1\n", "../../etc/passwd",
    "calls/../../x", "https://[::1", "https://api.nexmo.com:99999/x", "http://127.0.0.1:1/v1/files/x",
    "https://evil.example/x", "Infinity", "NaN", "-1", "1e999", "9" * 400, "{" * 50, '{"digits":"1","timed_out":1}',
    "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", "Bearer a.b.c", "tapedeck-vm-x", "GET", "POST",
    MAILBOX, TALK_LINE, vonage.CONVERSATION, "6f1c2b9e-1d6a-4f0e-8c59-1f2d3c4b5a69", "completed", "transfer",
]  # fmt: skip
RAW_BODIES = [
    b"[" * 3000 + b"]" * 3000,
    b'{"a": NaN}',
    b'{"size": 1e999}',
    b'{"a": 1, "a": 2}',
    b'{"status": "\\ud800", "conversation_uuid": "CON-1"}',
    b"\xff\xfe\x00",
    b"x" * 70_000,
    b"a=%zz&&b",
    b"null",
    b"[]",
]

texts = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=30))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False), texts
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3))
names = st.one_of(st.sampled_from(FIELDS), st.text(max_size=12))


def _shapes() -> dict[str, list[dict[str, Any]]]:
    """Real shapes of what each function is sent."""
    recording = vonage.recording_body(str(uuid.uuid4()), "", 0)
    return {
        "answer": [dict(vonage.answer_query())],
        "event": [
            vonage.started(),
            vonage.answered(),
            vonage.transfer(),
            vonage.completed(),
            vonage.machine(),
            dict(vonage.error_query()),
        ],
        "recording": [recording, recording | {"recording_url": "https://evil.example/v1/files/x", "size": 10}],
        "prompt": [dict(vonage.input_query("1234", timed_out=False)), vonage.completed()],
        "call": [
            {"to": MAILBOX, "from": "447700900000", "text": "hi", "pin_code": "1234", "callback": "http://127.0.0.1:1/"}
        ],
        "transcription": [{"source": "aws.transcribe", "detail": {"TranscriptionJobName": "tapedeck-vm-x"}}],
        "link": [{"id": "AbCdEfGhIjKlMnOp"}],
    }


SHAPES = _shapes()
ANY_SHAPE = [shape for shapes in SHAPES.values() for shape in shapes]


@st.composite
def payloads(draw: st.DrawFn, function: str) -> dict[str, Any]:
    """A real shape, mostly the function's own, with fields replaced, dropped and added."""
    own = draw(st.integers(0, 2)) > 0
    payload = dict(draw(st.sampled_from(SHAPES[function] if own else ANY_SHAPE)))
    for _ in range(draw(st.sampled_from((0, 0, 1, 2, 4)))):
        action = draw(st.sampled_from(("set", "drop", "add")))
        if action == "drop" and payload:
            payload.pop(draw(st.sampled_from(sorted(payload))))
        else:
            key = draw(st.sampled_from(sorted(payload))) if action == "set" and payload else draw(names)
            payload[key] = draw(values)
    return payload


@dataclass(frozen=True)
class Request:
    function: str
    method: str
    path: str
    query: list[tuple[str, str]]
    body: bytes | None
    content_type: str
    auth: str
    api_key: str


def _seal_query(draw: st.DrawFn, function: str, payload: dict[str, Any]) -> list[tuple[str, str]]:
    """The query tapedeck's own webhook URLs carry, sealed right or wrong, so the parsers behind it are reached."""
    if function == "recording":
        conversation = str(payload.get("conversation_uuid", vonage.CONVERSATION))
        caller, called = draw(st.sampled_from(((vonage.CALLER, MAILBOX), (vonage.CALLER, TALK_LINE), ("", MAILBOX))))
        seal = sign_caller(TOKEN_SECRET, conversation, f"{caller}|{called}")
        return [("caller", caller), ("to", called), ("sig", draw(st.sampled_from((seal, "x", "é"))))]
    if function == "prompt":
        tid = draw(st.sampled_from((str(uuid.uuid4()), "é", "")))
        step = draw(st.sampled_from(("answer", "input", "event", "x")))
        seal = sign_caller(TOKEN_SECRET, tid, f"prompt-{step}")
        return [("tid", tid), ("step", step), ("sig", draw(st.sampled_from((seal, "é")))), ("attempt", "1")]
    return []


@st.composite
def requests_to_functions(draw: st.DrawFn) -> Request:
    function = draw(st.sampled_from(FUNCTIONS))
    # Mostly the method each function takes, so the parsers behind it are reached.
    method = draw(st.sampled_from((USUAL_METHOD[function],) * 3 + ("GET", "POST", "PUT")))
    payload = draw(payloads(function))
    query = _seal_query(draw, function, payload)
    body: bytes | None = None
    content_type = "application/json"
    encoding = draw(st.sampled_from(("json", "json", "json", "form", "raw", "query")))
    if method == "GET" or encoding == "query":
        query += [(str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in payload.items()]
    elif encoding == "json":
        body = json.dumps(payload).encode()
    elif encoding == "form":
        body = "&".join(f"{k}={v}" for k, v in payload.items() if isinstance(v, str)).encode("utf-8", "replace")
        content_type = "application/x-www-form-urlencoded"
    else:
        body = draw(st.one_of(st.sampled_from(RAW_BODIES), st.binary(max_size=200)))
    if draw(st.booleans()):  # a duplicated parameter
        query.append(draw(st.sampled_from(query or [("to", MAILBOX)])))
    signed = query_payload(query) if method == "GET" else (body or b"")
    auth = draw(
        st.sampled_from(
            ("signed", "signed", "none", "Bearer x.y.z", "Bearer é.é.é", "Basic Zm9vOmJhcg==", "Bearer " + "a" * 5000)
        )
    )
    if auth == "signed":
        auth = f"Bearer {vonage_token(signed, SECRET)}"
    api_key = draw(st.sampled_from(("", API_KEY, API_KEY, "wrong", "é")))
    below = ("", "", "", str(uuid.uuid4()), "é", "..%2F..%2Fx")
    path = "/" + (draw(st.sampled_from(below)) if function == "call" else "")
    return Request(function, method, path, query, body, content_type, auth, api_key)


@dataclass(frozen=True)
class Platform:
    root: Path
    clients: dict[str, FlaskClient]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("fuzz")
    key = make_application_key(root / "application.pem")
    # The Vonage stand-in places the calls a valid request asks for; the person called is busy, and
    # the call's webhooks go to a closed port on loopback, so no request leaves the machine.
    api = StandinApi(public_key_of(key), default_script=CalleeScript(outcome="busy"))
    tls = make_tls_files(root / "tls")
    (root / "routes.yaml").write_text(
        f'"{MAILBOX}":\n  flow: voicemail\n  owner: Sam\n  recipients: ["447700900111"]\n'
        f'"{TALK_LINE}":\n  flow: conversation\n  connect: ["447700900200"]\n  recipients: ["447700900111"]\n'
    )
    env = {
        **platform_env(root, "fuzz-application"),
        "PUBLIC_URL": "http://127.0.0.1:1",
        "RECORDER_URL": "wss://rec.example.test/socket",
        "REQUESTS_CA_BUNDLE": str(tls[0]),
        "PROMPT_API_KEY": API_KEY,
        "TRANSCRIPTION_API_KEY": API_KEY,
        "CALLBACK_SECRET": "fuzz-callback-secret",
        # Callbacks go to a closed port on loopback, tried once.
        "ALLOW_PRIVATE_CALLBACKS": "true",
        "CALLBACK_ATTEMPTS": "1",
        "LOG_LEVEL": "CRITICAL",
    }
    with pytest.MonkeyPatch.context() as patch, api.serving("127.0.0.1", free_port(), tls=tls) as base:
        for name, value in {**env, "VONAGE_API_HOST": base.removeprefix("https://")}.items():
            patch.setenv(name, value)
        yield Platform(root, {name: client(name) for name in FUNCTIONS})


def check_answer(request: Request, response: Any) -> None:
    text = response.get_data(as_text=True)
    assert "Traceback" not in text
    status = response.status_code
    unsigned = request.auth == "none" and request.function in VONAGE_WEBHOOKS
    if status >= 500:
        # The one 5xx tapedeck means on purpose: "unsigned, send it again", which Vonage retries.
        assert status == 503 and unsigned and response.headers.get("Retry-After"), (status, text, request)
    if status >= 400:
        body = response.get_json(silent=True)
        assert isinstance(body, dict) and isinstance(body.get("error"), str), (status, text, request)


def check_store(root: Path, expected: set[str]) -> None:
    """Nothing outside the store's folder but `expected`, and only tapedeck's own keys inside it."""
    for folder, _, files in os.walk(root):
        for name in files:
            relative = Path(folder, name).relative_to(root).as_posix()
            if relative.startswith("data/"):
                key = relative.removeprefix("data/")
                # Hidden files (a write's temporary file) and the conditional writes' lock files.
                assert name.startswith(".") or LOCK_FILE.fullmatch(key) or STORE_KEY.fullmatch(key), key
            else:
                assert relative in expected, relative


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(request=requests_to_functions())
def test_no_http_input_gets_a_5xx_or_a_traceback(platform: Platform, request: Request) -> None:
    headers = {} if request.auth == "none" else {"Authorization": request.auth}
    if request.api_key:
        headers["X-Tapedeck-Key"] = request.api_key
    response = platform.clients[request.function].open(
        request.path,
        method=request.method,
        query_string=request.query,
        data=request.body,
        content_type=request.content_type,
        headers=headers,
    )
    event(f"{request.function} {response.status_code}")
    check_answer(request, response)
    check_store(platform.root, {"application.pem", "routes.yaml", "tls/standin-cert.pem", "tls/standin-key.pem"})


CLOSE_CODES = {1000, 1001, 1003, 1007, 1008, 1009}
WS_EXAMPLES = max(EXAMPLES // 10, 20)


@dataclass(frozen=True)
class Stream:
    conversation_uuid: str
    first: str | bytes
    handshake_ok: bool
    frames: list[str | bytes]


def _handshake(conversation_uuid: str) -> dict[str, Any]:
    return {
        "event": "websocket:connected",
        "content-type": "audio/l16;rate=16000",
        "conversation_uuid": conversation_uuid,
        "uuid": "leg-1",
        "from": vonage.CALLER,
        "to": vonage.CALLED,
        "token": mint_stream_token(TOKEN_SECRET, conversation_uuid, time.time(), 300),
    }


text_frames = st.one_of(
    texts,
    st.sampled_from(RAW_BODIES[:5]).map(lambda b: b.decode("utf-8", "replace")),
    st.fixed_dictionaries({"event": st.just("websocket:dtmf"), "digit": values, "duration": values}).map(json.dumps),
)


@st.composite
def streams(draw: st.DrawFn) -> Stream:
    conversation_uuid = f"CON-{uuid.uuid4()}"
    first_message = _handshake(conversation_uuid)
    handshake_ok = True
    if draw(st.integers(0, 3)) == 0:  # a mutated handshake
        handshake_ok = False
        key = draw(st.sampled_from(sorted(first_message)))
        first_message[key] = draw(values)
    first: str | bytes = json.dumps(first_message)
    if draw(st.integers(0, 5)) == 0:
        handshake_ok = False
        first = draw(
            st.one_of(
                texts, st.binary(max_size=100), st.sampled_from(RAW_BODIES).map(lambda b: b.decode("utf-8", "replace"))
            )
        )
    audio = st.binary(min_size=1, max_size=1500)
    frames = draw(st.lists(st.one_of(audio, audio, text_frames), max_size=12))
    return Stream(conversation_uuid, first, handshake_ok, frames)


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("fuzz-recorder")
    port = free_port()
    env = {"LOCAL_STORAGE_DIR": str(root / "data"), "STREAM_TOKEN_SECRET": TOKEN_SECRET, "LOG_LEVEL": "WARNING"}
    command = gunicorn_command("appengine.main:production_app()", port)
    with running(command, env, f"http://127.0.0.1:{port}/healthz", root / "recorder.log"):
        yield f"ws://127.0.0.1:{port}/socket", root


def _stored_pcm(root: Path, conversation_uuid: str, timeout: float = 10) -> bytes:
    folder = root / "data" / "calls" / conversation_uuid
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            call = json.loads((folder / "call.json").read_text())
        except (OSError, ValueError):
            call = {"recordings": []}
        if call["recordings"] and all(r["state"] == "complete" for r in call["recordings"]):
            return (folder / "audio.wav").read_bytes()[44:]
        time.sleep(0.02)
    raise AssertionError(f"{conversation_uuid} was never finalized")


@settings(max_examples=WS_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(stream=streams())
def test_no_websocket_input_gets_an_http_error_or_loses_audio(recorder: tuple[str, Path], stream: Stream) -> None:
    url, root = recorder
    code: int | None = None
    accepted = stream.handshake_ok
    try:
        with connect(url, compression=None, open_timeout=5, close_timeout=2, max_size=None) as ws:
            ws.send(stream.first)
            if not accepted:
                try:
                    ws.recv(timeout=0.5)  # a refused stream is closed at once; an accepted one hears nothing
                except TimeoutError:
                    accepted = True  # mutated, and still a good handshake
            for frame in stream.frames:
                ws.send(frame)
    except InvalidStatus as err:  # an HTTP answer instead of the upgrade
        raise AssertionError(f"handshake answered HTTP {err.response.status_code}") from err
    except ConnectionClosed as err:
        code = err.rcvd.code if err.rcvd else None
    event(f"websocket {'accepted' if accepted else 'refused'} close {code}")
    assert code is None or code in CLOSE_CODES, code
    assert accepted or code is not None, "a refused stream must be closed by the recorder"
    sent = b"".join(f for f in stream.frames if isinstance(f, bytes))
    if accepted and code is None:
        # Every audio byte is kept, text frames or not; a trailing odd byte is not a sample.
        assert _stored_pcm(root, stream.conversation_uuid) == sent[: len(sent) // 2 * 2]
    check_store(root, {"recorder.log"})
