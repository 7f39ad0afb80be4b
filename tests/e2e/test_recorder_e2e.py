"""End to end: the recorder under gunicorn, the functions under functions-framework, and the
Vonage stand-in placing real calls over loopback, on a local folder and on the storage emulator."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from shared.adapters.gcs_blob_store import GcsBlobStore
from shared.adapters.local_blob_store import LocalBlobStore
from shared.core.ports import BlobStore
from shared.core.tokens import mint_stream_token
from shared.core.wav import parse_wav
from tests.servers import BIN, ROOT, Emulator, free_port, fresh_bucket, gcs_client, gunicorn_command, running, stop
from tests.testbed import DATA, SECRET, TOKEN_SECRET
from tools.standin import DtmfPress, VonageStandin

# Real servers or emulators on loopback, started by the tests.
pytestmark = pytest.mark.slow

FIXTURE = DATA / "voicemail_outage.wav"
FIXTURE_PCM = parse_wav(FIXTURE.read_bytes()).pcm
CHUNK = 256 * 1024


@dataclass
class Platform:
    """A running tapedeck: recorder and functions, and the store they write to."""

    env: dict[str, str]
    store: BlobStore
    recorder: subprocess.Popen[bytes]
    socket_url: str
    answer_url: str
    event_url: str
    logs: Path

    def call_json(self, conversation_uuid: str) -> dict[str, Any]:
        blob = self.store.read(f"calls/{conversation_uuid}/call.json")
        assert blob is not None, f"no call.json for {conversation_uuid}"
        return dict(json.loads(blob.data))

    def wait_for_recording(
        self, conversation_uuid: str, state: str = "complete", timeout: float = 15
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            blob = self.store.read(f"calls/{conversation_uuid}/call.json")
            if blob:
                call = json.loads(blob.data)
                if call["recordings"] and all(r["state"] == state for r in call["recordings"]):
                    return dict(call)
                if self._assembled_on_emulator(conversation_uuid, state):
                    return dict(call)
            time.sleep(0.05)
        last = self.store.read(f"calls/{conversation_uuid}/call.json")
        seen = last.data.decode() if last else "no call.json"
        raise AssertionError(f"recording of {conversation_uuid} never reached {state!r}: {seen}")

    def _assembled_on_emulator(self, conversation_uuid: str, state: str) -> bool:
        """gcp-storage-emulator ignores generation preconditions, so an event written at the same
        moment as the recorder's own update of call.json can undo it: the recording's state, or
        its whole entry (real Cloud Storage refuses the stale write with 412, and it is retried).
        There a recording is complete once its WAV is assembled, just before the entry is marked."""
        on_emulator = self.env.get("STORAGE") == "gcs"
        wav = f"calls/{conversation_uuid}/audio.wav"
        return on_emulator and state == "complete" and self.store.read(wav) is not None

    def wait_until(self, done: Any, what: str, timeout: float = 15) -> None:
        """Poll `done()` until true: the recorder marks a call complete before it deletes the parts."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} within {timeout} s")
            time.sleep(0.05)

    def parts_left(self, conversation_uuid: str) -> list[Any]:
        return self.store.list(f"calls/{conversation_uuid}/parts/")

    def stored_audio(self, conversation_uuid: str) -> bytes:
        blob = self.store.read(f"calls/{conversation_uuid}/audio.wav")
        assert blob is not None
        return blob.data


def storage_env(kind: str, tmp_path: Path, emulator: Emulator | None) -> tuple[dict[str, str], BlobStore]:
    if kind == "local":
        return {"STORAGE": "local", "LOCAL_STORAGE_DIR": str(tmp_path / "data")}, LocalBlobStore(tmp_path / "data")
    assert emulator
    bucket = fresh_bucket(emulator)
    env = {"STORAGE": "gcs", "GCS_BUCKET": bucket, "STORAGE_EMULATOR_HOST": emulator.url}
    return env, GcsBlobStore(bucket, gcs_client(emulator))


@pytest.fixture
def platform_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    started: list[Any] = []

    def start(kind: str = "local", **extra: str) -> Platform:
        emulator = request.getfixturevalue("storage_emulator") if kind == "gcs" else None
        env, store = storage_env(kind, tmp_path, emulator)
        recorder_port, answer_port, event_port = free_port(), free_port(), free_port()
        env |= {
            "STREAM_TOKEN_SECRET": TOKEN_SECRET,
            "VONAGE_SIGNATURE_SECRET": SECRET,
            "RECORDER_URL": f"ws://127.0.0.1:{recorder_port}/socket",
            "PUBLIC_URL": f"http://127.0.0.1:{event_port}",
            "LOG_LEVEL": "DEBUG",
            **extra,
        }
        logs = tmp_path / "logs"
        logs.mkdir(exist_ok=True)
        recorder_cm = running(
            gunicorn_command("appengine.main:production_app()", recorder_port),
            env,
            f"http://127.0.0.1:{recorder_port}/healthz",
            logs / "recorder.log",
        )
        recorder = recorder_cm.__enter__()
        started.append(recorder_cm)
        for target, port in (("answer", answer_port), ("event", event_port)):
            command = [str(BIN / "functions-framework"), f"--target={target}", "--source=functions/main.py"]
            # Deployed, shared/ is staged beside main.py; here it is found through PYTHONPATH.
            cm = running(
                [*command, f"--port={port}", "--host=127.0.0.1"],
                env | {"PYTHONPATH": str(ROOT)},
                f"http://127.0.0.1:{port}/x",
                logs / f"{target}.log",
            )
            cm.__enter__()
            started.append(cm)
        return Platform(
            env,
            store,
            recorder,
            f"ws://127.0.0.1:{recorder_port}/socket",
            f"http://127.0.0.1:{answer_port}/",
            f"http://127.0.0.1:{event_port}/",
            logs,
        )

    yield start
    for cm in reversed(started):
        cm.__exit__(None, None, None)


def place_call(platform: Platform, **kwargs: Any) -> Any:
    standin = VonageStandin(SECRET)
    return standin.inbound_call(platform.answer_url, platform.event_url, kwargs.pop("audio", FIXTURE), **kwargs)


@pytest.mark.parametrize("kind", ["local", "gcs"])
def test_a_call_is_stored_byte_for_byte_with_its_details(platform_factory: Any, kind: str) -> None:
    platform = platform_factory(kind)
    report = place_call(platform, fast=True, dtmf=[DtmfPress("5", 1.0), DtmfPress("#", 2.5)])
    call = platform.wait_for_recording(report.conversation_uuid)
    wav = platform.stored_audio(report.conversation_uuid)
    audio = parse_wav(wav)
    assert audio.pcm == FIXTURE_PCM
    assert (audio.sample_rate, audio.channels) == (16000, 1)
    assert wav[:44] == FIXTURE.read_bytes()[:44]
    assert report.talks == ["Hello. This call is recorded."]
    assert report.closed_by == "caller"
    assert set(report.event_statuses.values()) == {204}
    if kind == "gcs":
        # The recorder and the event function update call.json at the same moment. Real Cloud
        # Storage refuses the stale write (412) and it is retried; gcp-storage-emulator ignores
        # generation preconditions, so there the last writer can drop the other's change (an
        # event, or the recording's entry). The local store's lock is the same rule
        # as Cloud Storage's precondition, so call.json's details are checked there.
        assert [e["status"] for e in call["events"]][:2] == ["started", "ringing"]
    else:
        (recording,) = call["recordings"]
        assert recording["bytes"] == len(FIXTURE_PCM)
        assert recording["object"] == f"calls/{report.conversation_uuid}/audio.wav"
        assert recording["duration"] == pytest.approx(len(FIXTURE_PCM) / 32000, abs=0.001)
        assert (recording["sample_rate"], recording["end_reason"]) == (16000, "hangup")
        assert [(d["digit"], d["at"]) for d in call["dtmf"]] == [("5", 1.0), ("#", 2.5)]
        assert (call["from"], call["to"], call["flow"]) == ("447700900123", "447700900000", "stream")
        assert call["uuids"] == [report.uuid]
        assert [e["status"] for e in call["events"]] == ["started", "ringing", "answered", "transfer", "completed"]
    platform.wait_until(lambda: platform.parts_left(report.conversation_uuid) == [], "parts not deleted")


@pytest.mark.parametrize("kind", ["local", "gcs"])
def test_an_abrupt_network_drop_keeps_every_byte_received(platform_factory: Any, kind: str) -> None:
    platform = platform_factory(kind)
    report = place_call(platform, fast=True, drop_after=3.0)
    assert report.closed_by == "network"
    platform.wait_for_recording(report.conversation_uuid)
    audio = parse_wav(platform.stored_audio(report.conversation_uuid))
    assert len(audio.pcm) == report.bytes_sent == 150 * 640
    assert audio.pcm == FIXTURE_PCM[: report.bytes_sent]


def test_a_real_time_call_is_paced_at_20_ms_frames(platform_factory: Any) -> None:
    platform = platform_factory()
    short = platform.logs.parent / "short.wav"
    wav = FIXTURE.read_bytes()
    short.write_bytes(wav[:44] + FIXTURE_PCM[:32000])  # header sizes are wrong on purpose: 1 s of audio follows
    short.write_bytes(parse_and_rewrap(short.read_bytes(), 32000))
    started = time.monotonic()
    report = place_call(platform, audio=short)
    assert time.monotonic() - started >= 0.98
    assert report.frames_sent == 50
    platform.wait_for_recording(report.conversation_uuid)
    assert parse_wav(platform.stored_audio(report.conversation_uuid)).pcm == FIXTURE_PCM[:32000]


def parse_and_rewrap(data: bytes, size: int) -> bytes:
    from shared.core.wav import wav_header

    return wav_header(16000, size) + data[44 : 44 + size]


@contextmanager
def open_stream(platform: Platform, conversation: str, **overrides: Any) -> Iterator[ClientConnection]:
    """A raw websocket client speaking Vonage's protocol, for frames the stand-in would never send."""
    first = {
        "event": "websocket:connected",
        "content-type": "audio/l16;rate=16000",
        "conversation_uuid": conversation,
        "uuid": "leg-1",
        "from": "447700900123",
        "to": "447700900000",
        "token": mint_stream_token(TOKEN_SECRET, conversation, time.time(), 60),
    }
    with connect(platform.socket_url, compression=None, open_timeout=5, close_timeout=2) as ws:
        ws.send(json.dumps({**first, **overrides}))
        yield ws


def close_code(ws: ClientConnection) -> int | None:
    try:
        ws.recv(timeout=5)
    except ConnectionClosed as err:
        return err.rcvd.code if err.rcvd else None
    raise AssertionError("the recorder did not close the socket")


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"token": "1999999999.forged"}, 1008),
        ({"token": None}, 1008),
        ({"conversation_uuid": "../escape"}, 1008),
        ({"content-type": "audio/pcmu;rate=8000"}, 1003),
        ({"content-type": "audio/l16;rate=44100"}, 1003),
        ({"token": "١٧٩٩٩٩٩٩٩٩.forged"}, 1008),
        ({"token": "1999999999.é"}, 1008),
        ({"conversation_uuid": "CON-1\n"}, 1008),
        ({"conversation_uuid": ["CON-1"]}, 1008),
        ({"padding": "x" * 9000}, 1009),
    ],
)
def test_a_refused_stream_is_closed_and_writes_nothing(
    platform_factory: Any, overrides: dict[str, Any], code: int
) -> None:
    platform = platform_factory()
    conversation_uuid = f"CON-{uuid.uuid4()}"
    with open_stream(platform, conversation_uuid, **overrides) as ws:
        assert close_code(ws) == code
    assert platform.store.list("calls/") == []


@pytest.mark.parametrize(
    "first",
    [b"\x00" * 640, "[" * 1000 + "]" * 1000, '{"event": "websocket:connected", "a": 1, "a": 2}', "NaN", "é"],
    ids=["binary", "deeply-nested", "repeated-key", "not-an-object", "not-json"],
)
def test_a_first_message_that_is_not_the_handshake_is_refused(platform_factory: Any, first: str | bytes) -> None:
    platform = platform_factory()
    with connect(platform.socket_url, compression=None) as ws:
        ws.send(first)
        assert close_code(ws) == 1008
    assert platform.store.list("calls/") == []


def test_plain_http_to_the_socket_gets_a_json_error(platform_factory: Any) -> None:
    platform = platform_factory()
    response = requests.get(platform.socket_url.replace("ws://", "http://"), timeout=5)
    assert response.status_code == 426
    assert response.json() == {"error": "/socket takes a websocket upgrade"}


def test_odd_frames_and_text_never_corrupt_the_audio(platform_factory: Any) -> None:
    platform = platform_factory()
    conversation_uuid = f"CON-{uuid.uuid4()}"
    pcm = FIXTURE_PCM[:64000]
    sizes = [641, 639, 1, 3, 320, 960, 7, 1]
    with open_stream(platform, conversation_uuid) as ws:
        offset, i = 0, 0
        while offset < len(pcm):
            size = sizes[i % len(sizes)]
            ws.send(pcm[offset : offset + size])
            offset += size
            i += 1
            if i % 25 == 0:
                ws.send("not json at all")
                ws.send(json.dumps({"event": "websocket:media:update", "x": 1}))
                ws.send(json.dumps({"event": "websocket:dtmf", "digit": "X"}))
                ws.send("[" * 5000 + "]" * 5000)
                ws.send(json.dumps({"event": "websocket:dtmf", "digit": "٣", "duration": 10**100}))
                ws.send('{"event": "websocket:dtmf", "digit": "1", "duration": Infinity}')
        ws.send(json.dumps({"event": "websocket:dtmf", "digit": "7", "duration": 100}))
    call = platform.wait_for_recording(conversation_uuid)
    assert parse_wav(platform.stored_audio(conversation_uuid)).pcm == pcm
    assert [d["digit"] for d in call["dtmf"]] == ["7"]
    assert call["dtmf"][0]["at"] == 2.0


def test_an_oversized_frame_closes_the_socket_and_keeps_earlier_audio(platform_factory: Any) -> None:
    platform = platform_factory()
    conversation_uuid = f"CON-{uuid.uuid4()}"
    with open_stream(platform, conversation_uuid) as ws:
        ws.send(FIXTURE_PCM[:6400])
        ws.send(b"\x01" * 200_000)
        assert close_code(ws) == 1009
    platform.wait_for_recording(conversation_uuid)
    assert parse_wav(platform.stored_audio(conversation_uuid)).pcm == FIXTURE_PCM[:6400]


def test_sigterm_closes_open_calls_with_valid_wavs(platform_factory: Any) -> None:
    platform = platform_factory()
    reports: list[Any] = []
    caller = threading.Thread(target=lambda: reports.append(place_call(platform)))
    caller.start()
    time.sleep(2.0)
    stop(platform.recorder, signal.SIGTERM)
    caller.join(20)
    (report,) = reports
    assert report.closed_by == "recorder" and report.close_code == 1001
    call = platform.wait_for_recording(report.conversation_uuid)
    (recording,) = call["recordings"]
    assert recording["end_reason"] == "recorder shutdown"
    pcm = parse_wav(platform.stored_audio(report.conversation_uuid)).pcm
    assert len(pcm) >= 32000 * 1.5
    assert pcm == FIXTURE_PCM[: len(pcm)]
    assert "disconnected" in report.event_statuses


@pytest.mark.parametrize("kind", ["local", "gcs"])
def test_sigkill_loses_at_most_one_chunk_and_recover_assembles_the_rest(platform_factory: Any, kind: str) -> None:
    platform = platform_factory(kind)
    conversation_uuid = f"CON-{uuid.uuid4()}"
    sent = FIXTURE_PCM[:300_000]
    with open_stream(platform, conversation_uuid) as ws:
        for start in range(0, len(sent), 640):
            ws.send(sent[start : start + 640])
        # Wait until the recorder has registered the stream and flushed its first chunk.
        platform.wait_until(
            lambda: (
                len(platform.parts_left(conversation_uuid)) >= len(sent) // CHUNK
                and platform.store.read(f"calls/{conversation_uuid}/call.json") is not None
            ),
            "the first chunk was not flushed",
        )
        time.sleep(0.5)
        # The whole process group, master and worker, dies at once: nothing runs a finally.
        stop(platform.recorder, signal.SIGKILL)
    assert platform.call_json(conversation_uuid)["recordings"][0]["state"] == "streaming"
    result = subprocess.run(
        [sys.executable, "-m", "appengine.recover", "--min-age", "0"],
        cwd=ROOT,
        env={**platform.env, "PATH": str(BIN)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "1 recording(s) recovered" in result.stdout
    call = platform.call_json(conversation_uuid)
    (recording,) = call["recordings"]
    assert recording["state"] == "recovered"
    pcm = parse_wav(platform.stored_audio(conversation_uuid)).pcm
    assert len(sent) - CHUNK <= len(pcm) <= len(sent)
    assert len(pcm) % CHUNK == 0
    assert pcm == sent[: len(pcm)]
    assert recording["bytes"] == len(pcm)
    assert platform.store.list(f"calls/{conversation_uuid}/parts/") == []


def test_a_streamed_call_is_transcribed_live_as_the_batch_engine_hears_it(platform_factory: Any) -> None:
    from difflib import SequenceMatcher

    from shared.adapters.pocketsphinx_transcriber import PocketsphinxTranscriber
    from shared.core.ports import TranscriptionJob

    platform = platform_factory(LIVE_TRANSCRIBER="pocketsphinx")
    report = place_call(platform, fast=True)
    prefix = f"calls/{report.conversation_uuid}/"
    platform.wait_for_recording(report.conversation_uuid)
    platform.wait_until(lambda: platform.store.read(prefix + "transcript.vtt") is not None, "no live transcript")

    live = platform.store.read(prefix + "live.jsonl")
    assert live is not None
    segments = [json.loads(line) for line in live.data.decode().splitlines()]
    live_words = [w["word"] for segment in segments for w in segment["words"]]
    stored = platform.store.read(prefix + "transcript.json")
    assert stored is not None
    transcript = json.loads(stored.data)
    assert [w["word"] for w in transcript["channels"][0]["words"]] == live_words
    assert transcript["engine"] == "live" and transcript["notes"] == []
    assert "production database" in transcript["dialogue"].lower()
    # The same audio, decoded whole after the call: the same words, within recognition error.
    job = TranscriptionJob("batch", prefix + "audio.wav", "wav", "en-US")
    batch = PocketsphinxTranscriber(platform.store).start(job)
    assert SequenceMatcher(None, live_words, batch.text.split()).ratio() > 0.8


def dtmf_power(pcm: bytes, start: float, end: float, digit: str) -> float:
    """An FFT's share of the energy between `start` and `end` seconds at `digit`'s two DTMF
    frequencies (within 20 Hz): near 1 for the tone alone, 0 for silence."""
    import numpy as np

    keypad = "123A456B789C*0#D"
    low, high = (697, 770, 852, 941)[keypad.index(digit) // 4], (1209, 1336, 1477, 1633)[keypad.index(digit) % 4]
    samples = np.frombuffer(pcm, "<i2")[round(start * 16000) : round(end * 16000)].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / 16000)
    total = float(spectrum.sum())
    near = (np.abs(freqs - low) <= 20) | (np.abs(freqs - high) <= 20)
    return float(spectrum[near].sum()) / total if total else 0.0


@pytest.mark.parametrize("tone", ["before", "after"], ids=["event-as-key-goes-up", "event-as-key-goes-down"])
def test_keys_pressed_in_a_masked_stream_cannot_be_heard_in_its_wav(
    platform_factory: Any, tmp_path: Path, tone: str
) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text('"447700900000":\n  flow: stream\n  mask_dtmf: true\n  sensitive_dtmf: true\n')
    platform = platform_factory(ROUTES_FILE=str(routes))
    presses = [DtmfPress("4", 2.0, 200, tone), DtmfPress("1", 4.0, 200, tone), DtmfPress("#", 6.5, 300, tone)]
    report = place_call(platform, fast=True, dtmf=presses)
    call = platform.wait_for_recording(report.conversation_uuid)
    stored = parse_wav(platform.stored_audio(report.conversation_uuid)).pcm
    assert len(stored) == len(FIXTURE_PCM)
    from tools.standin.dtmf import with_tones

    sent = with_tones(FIXTURE_PCM, 16000, presses)
    (entry,) = call["recordings"]
    for press in presses:
        span = (press.at - 0.2, press.at) if tone == "before" else (press.at, press.at + 0.2)
        # What the caller sent holds the key's tone; the stored WAV holds none of it.
        assert dtmf_power(sent, *span, press.digit) > 0.5
        assert dtmf_power(stored, *span, press.digit) < 0.01
        assert any(m["start"] <= span[0] and span[1] <= m["end"] for m in entry["masked"])
    # Everywhere else the audio is the caller's, byte for byte.
    kept = bytearray(sent)
    for span in entry["masked"]:
        lo, hi = round(span["start"] * 16000) * 2, round(span["end"] * 16000) * 2
        kept[lo:hi] = bytes(hi - lo)
    assert stored == bytes(kept)
    # The presses are kept with their times, without their digits.
    assert [(d["digit"], d["at"]) for d in call["dtmf"]] == [("", 2.0), ("", 4.0), ("", 6.5)]
