"""tapedeck on Cloud Storage as it really fails: the recorder started as app.yaml starts it (gunicorn,
gevent, two workers) and the answer and event functions, all storing in a bucket of the storage
emulator through the fault proxy; and what a call stored there must look like. The end-to-end test
of storage faults and the storage bench share it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.adapters.gcs_blob_store import GcsBlobStore
from shared.core.wav import parse_wav
from tests.bundles import entrypoint
from tests.faultproxy import FaultProxy
from tests.servers import BIN, ROOT, Emulator, free_port, fresh_bucket, gcs_client, running
from tests.testbed import DATA, SECRET, TOKEN_SECRET
from tools.standin import DtmfPress

__all__ = ["FIXTURE", "KEYS", "FaultyPlatform", "call_problems", "faulty_platform", "wait_settled"]

FIXTURE = DATA / "voicemail_outage.wav"
# The keys each caller presses, at these seconds of its audio.
KEYS = [DtmfPress("5", 1.0), DtmfPress("#", 2.5)]
_EVENTS = ["started", "ringing", "answered", "transfer", "completed"]


@dataclass
class FaultyPlatform:
    proxy: FaultProxy
    store: GcsBlobStore  # the emulator itself, past the proxy: what is really stored
    answer_url: str
    event_url: str
    logs: Path


@contextmanager
def faulty_platform(emulator: Emulator, folder: Path, seed: int = 20261207) -> Iterator[FaultyPlatform]:
    """The platform on a fresh bucket, its storage through a fault proxy that has no faults yet."""
    bucket = fresh_bucket(emulator)
    recorder_port, answer_port, event_port = free_port(), free_port(), free_port()
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        proxy = stack.enter_context(FaultProxy(emulator.url, seed=seed))
        env = {
            "STORAGE": "gcs",
            "GCS_BUCKET": bucket,
            "STORAGE_EMULATOR_HOST": proxy.url,
            "STREAM_TOKEN_SECRET": TOKEN_SECRET,
            "VONAGE_SIGNATURE_SECRET": SECRET,
            "RECORDER_URL": f"ws://127.0.0.1:{recorder_port}/socket",
            "PUBLIC_URL": f"http://127.0.0.1:{event_port}",
            "PATH": f"{BIN}:/usr/bin:/bin",
        }
        # The recorder as App Engine starts it: app.yaml's entrypoint, as written.
        recorder_env = env | {"PORT": str(recorder_port), "HOME": str(folder)}
        command = ["/bin/sh", "-c", f"exec {entrypoint(ROOT)}"]
        stack.enter_context(
            running(command, recorder_env, f"http://127.0.0.1:{recorder_port}/healthz", logs / "recorder.log")
        )
        functions = [str(BIN / "functions-framework"), "--source=functions/main.py", "--host=127.0.0.1"]
        for target, port in (("answer", answer_port), ("event", event_port)):
            stack.enter_context(
                running(
                    [*functions, f"--target={target}", f"--port={port}"],
                    env | {"PYTHONPATH": str(ROOT)},
                    f"http://127.0.0.1:{port}/x",
                    logs / f"{target}.log",
                )
            )
        yield FaultyPlatform(
            proxy,
            GcsBlobStore(bucket, gcs_client(emulator)),
            f"http://127.0.0.1:{answer_port}/",
            f"http://127.0.0.1:{event_port}/",
            logs,
        )


def _settled(store: GcsBlobStore, conversation_uuid: str) -> dict[str, Any] | None:
    """call.json once its recordings are complete, its call over and its parts gone, else None."""
    blob = store.read(f"calls/{conversation_uuid}/call.json")
    if blob is None:
        return None
    call: dict[str, Any] = json.loads(blob.data)
    done = call["recordings"] and all(r["state"] == "complete" for r in call["recordings"])
    over = "completed" in {e["status"] for e in call["events"]}
    if done and over and not store.list(f"calls/{conversation_uuid}/parts/"):
        return call
    return None


def wait_settled(store: GcsBlobStore, conversation_uuid: str, deadline: float) -> dict[str, Any]:
    """The call's record once it has settled, waiting until `deadline` (monotonic) at most."""
    while time.monotonic() < deadline:
        call = _settled(store, conversation_uuid)
        if call is not None:
            return call
        time.sleep(0.25)
    blob = store.read(f"calls/{conversation_uuid}/call.json")
    names = [info.key for info in store.list(f"calls/{conversation_uuid}/")]
    raise AssertionError(f"{conversation_uuid} never settled: {names}\n{blob.data.decode() if blob else ''}")


def call_problems(store: GcsBlobStore, conversation_uuid: str, call: dict[str, Any]) -> list[str]:
    """What is wrong with a stored call that said the fixture and pressed KEYS: nothing, if its WAV is
    the fixture byte for byte, call.json names it in one entry, notes each key once and every event."""
    problems = []
    prefix = f"calls/{conversation_uuid}/"
    if [(r["object"], r["state"]) for r in call["recordings"]] != [(f"{prefix}audio.wav", "complete")]:
        problems.append(f"recordings: {call['recordings']}")
        return problems
    session = call["recordings"][0]["session"]
    keys = [(d["digit"], d["at"], d["session"]) for d in call["dtmf"]]
    if keys != [(key.digit, key.at, session) for key in KEYS]:
        problems.append(f"keys: {keys}")
    events = [e["status"] for e in call["events"]]
    if events != _EVENTS:
        problems.append(f"events: {events}")
    wav = store.read(f"{prefix}audio.wav")
    fixture = FIXTURE.read_bytes()
    if wav is None or wav.data[:44] != fixture[:44] or parse_wav(wav.data).pcm != parse_wav(fixture).pcm:
        problems.append("audio.wav is not the fixture byte for byte")
    if call["recordings"][0]["bytes"] != len(parse_wav(fixture).pcm):
        problems.append(f"bytes: {call['recordings'][0]['bytes']}")
    stored = sorted(info.key.removeprefix(prefix) for info in store.list(prefix))
    if stored != ["audio.wav", "call.json"]:
        problems.append(f"objects: {stored}")
    return problems
