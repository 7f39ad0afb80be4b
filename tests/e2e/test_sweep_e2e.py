"""Nothing lost in silence, end to end: a recorder under gunicorn is killed with SIGKILL mid-call;
Vonage's `completed` reaches the event function; the sweep, run by the embedded queue on its
period, recovers the recording from its parts once the grace is over, and the route's
recording_webhook receives `recovered` or `partial` exactly once, signed, through the queue. An
answered stream call that never sent audio is reported `failed`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from shared.core.times import iso
from shared.core.tokens import mint_stream_token
from shared.core.wav import parse_wav
from tests.deck import Deck, signed_post, start_deck
from tests.servers import BIN, ROOT, free_port, gunicorn_command, receiving, running, stop
from tests.testbed import DATA, TOKEN_SECRET
from tools.standin.receiver import CallbackReceiver

pytestmark = pytest.mark.slow

NUMBER, CALLER = "447700900004", "447700900123"
SECRET = "recording-webhook-secret"
CHUNK = 256 * 1024
PCM = parse_wav((DATA / "voicemail_outage.wav").read_bytes()).pcm


@pytest.fixture
def receiver() -> Iterator[tuple[CallbackReceiver, str]]:
    with receiving(SECRET, "/recordings") as found:
        yield found


@pytest.fixture
def platform(tmp_path: Path, receiver: tuple[CallbackReceiver, str]) -> Iterator[tuple[Deck, Any, dict[str, str]]]:
    """The functions and the embedded queue (the sweep every half second, a grace of one), and a
    recorder of its own under gunicorn, the one the calls stream to."""
    recorder_port = free_port()
    env = {
        "RECORDER_URL": f"ws://127.0.0.1:{recorder_port}/socket",
        "CALLBACK_SECRET": SECRET,
        "ALLOW_PRIVATE_CALLBACKS": "true",
        "CALLBACK_BACKOFF": "0.05",
        "RECORDING_GRACE_SECONDS": "1",
        "SWEEP_INTERVAL": "0.5",
    }
    routes = f'"{NUMBER}":\n  flow: stream\n  recording_webhook: {receiver[1]}\n'
    with ExitStack() as stack:
        deck = start_deck(stack, tmp_path, routes, NUMBER, env)
        recorder_env = {
            **env,
            "LOCAL_STORAGE_DIR": str(tmp_path / "data"),
            "STREAM_TOKEN_SECRET": TOKEN_SECRET,
            "ROUTES_FILE": str(tmp_path / "routes.yaml"),
            "PUBLIC_URL": deck.url,
        }
        recorder = stack.enter_context(
            running(
                gunicorn_command("appengine.main:production_app()", recorder_port),
                recorder_env,
                f"http://127.0.0.1:{recorder_port}/healthz",
                tmp_path / "recorder.log",
            )
        )
        yield deck, recorder, recorder_env


def event(deck: Deck, conversation_uuid: str, status: str) -> None:
    payload = {"from": CALLER, "to": NUMBER, "uuid": f"leg-{conversation_uuid[-6:]}", "direction": "inbound"}
    payload |= {"conversation_uuid": conversation_uuid, "status": status, "timestamp": iso(time.time())}
    assert signed_post(f"{deck.url}/event", payload).status_code == 204


def wait_until(done: Any, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout} s")
        time.sleep(0.05)


@pytest.fixture
def conversation_uuid() -> str:
    """A call of its own for each test."""
    return f"CON-{uuid.uuid4()}"


def test_a_recorder_killed_mid_call_is_recovered_by_the_sweep_and_reported_once(
    platform: tuple[Deck, Any, dict[str, str]], receiver: tuple[CallbackReceiver, str], conversation_uuid: str
) -> None:
    deck, recorder, recorder_env = platform
    target, _ = receiver
    event(deck, conversation_uuid, "started")
    event(deck, conversation_uuid, "answered")
    sent = PCM[:300_000]
    first = {
        "event": "websocket:connected",
        "content-type": "audio/l16;rate=16000",
        "conversation_uuid": conversation_uuid,
        "uuid": f"leg-{conversation_uuid[-6:]}",
        "from": CALLER,
        "to": NUMBER,
        "token": mint_stream_token(TOKEN_SECRET, conversation_uuid, time.time(), 60),
    }
    socket_url = recorder_env["RECORDER_URL"]
    with connect(socket_url, compression=None, open_timeout=5, close_timeout=1) as ws:
        ws.send(json.dumps(first))
        for start in range(0, len(sent), 640):
            ws.send(sent[start : start + 640])
        wait_until(lambda: len(deck.store.list(f"calls/{conversation_uuid}/parts/")) >= 1, "no part flushed")
        time.sleep(0.3)
        # Master and worker at once: nothing runs a finally, the unflushed audio is lost.
        stop(recorder, signal.SIGKILL)
    call = deck.read_json(f"calls/{conversation_uuid}/call.json")
    assert [r["state"] for r in call["recordings"]] == ["streaming"]
    event(deck, conversation_uuid, "completed")

    (delivery,) = target.wait(1, timeout=30)
    hook = delivery.json
    assert delivery.signature_valid and delivery.method == "POST" and delivery.path == "/recordings"
    assert hook["event"] == "recording" and hook["conversation_uuid"] == conversation_uuid
    assert hook["state"] in ("recovered", "partial") and hook["duration"] == CHUNK / 32000
    assert hook["link"].startswith(f"{deck.url}/link?id=")
    stored = deck.store.read(f"calls/{conversation_uuid}/audio.wav")
    assert stored is not None and parse_wav(stored.data).pcm == sent[:CHUNK]
    (entry,) = deck.read_json(f"calls/{conversation_uuid}/call.json")["recordings"]
    assert (entry["state"], entry["settled_at"] is not None) == (hook["state"], True)

    # The sweep by hand, and the embedded queue's own runs meanwhile: nothing is reported twice.
    by_hand = subprocess.run(
        [sys.executable, "-m", "appengine.sweep"],
        cwd=ROOT,
        env={**recorder_env, "PATH": str(BIN), "TASKS_URL": f"{deck.url}/tasks"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert by_hand.returncode == 0, by_hand.stderr
    assert by_hand.stdout.startswith("sweep: 0 call(s) looked at")
    time.sleep(1.5)
    assert len(target.accepted()) == 1
    record = deck.read_json(f"calls/{conversation_uuid}/deliveries/recording-{entry['session']}.json")
    assert (record["state"], record["attempts"]) == ("delivered", 1)


def test_an_answered_stream_call_that_never_sent_audio_is_reported_failed(
    platform: tuple[Deck, Any, dict[str, str]], receiver: tuple[CallbackReceiver, str], conversation_uuid: str
) -> None:
    deck, _, _ = platform
    target, _ = receiver
    for status in ("started", "answered", "completed"):
        event(deck, conversation_uuid, status)

    (delivery,) = target.wait(1, timeout=30)
    assert delivery.signature_valid
    assert (delivery.json["state"], delivery.json["link"], delivery.json["duration"]) == ("failed", None, 0.0)
    problems = deck.store.list("problems/recording/")
    assert [p.key.rsplit("/", 1)[-1] for p in problems] == [f"{conversation_uuid}-{delivery.json['session']}.json"]
