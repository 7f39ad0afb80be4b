"""The Vonage stand-in recording a connected conversation: a small answer app on loopback asks
for a split background recording and phone connects; the stand-in plays every leg and serves
the recording behind the application's JWT."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import numpy as np
import pytest
import requests
from flask import Flask, jsonify, request

from shared.core.audio import decode_audio, split_channels
from shared.core.wav import parse_wav, wav_header
from tests.testbed import DATA, SECRET
from tools.standin import CallReport, VonageStandin
from tools.standin.api import StandinApi, make_application_key, public_key_of, serve_in_thread
from tools.standin.audio import load_pcm

CALLER_ID = "447700900002"
AGENT = "447700900200"
RATE = 16000


@dataclass
class Answerer:
    """tapedeck's part, reduced to its NCCO and the webhooks it is sent, in arrival order."""

    url: str = ""
    hooks: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Flask:
        app = Flask("conversation-answerer")

        @app.get("/answer/<media_format>/<int:parties>/<int:channels>")
        def answer(media_format: str, parties: int, channels: int) -> Any:
            record = {
                "action": "record",
                "split": "conversation",
                "channels": channels,
                "format": media_format,
                "eventUrl": [f"{self.url}/recording?call={request.args['conversation_uuid']}"],
                "eventMethod": "POST",
            }
            connects = [
                {
                    "action": "connect",
                    "from": CALLER_ID,
                    "endpoint": [{"type": "phone", "number": str(int(AGENT) + i)}],
                    "eventUrl": [f"{self.url}/event"],
                }
                for i in range(parties)
            ]
            return jsonify(
                [{"action": "talk", "text": "This call is recorded.", "language": "en-US"}, record, *connects]
            )

        @app.post("/<kind>")
        def hook(kind: str) -> Any:
            with self.lock:
                self.hooks.append((kind, request.get_json()))
            return "", 204

        return app

    def events(self, direction: str) -> list[dict[str, Any]]:
        return [body for kind, body in self.hooks if kind == "event" and body.get("direction") == direction]

    def recordings(self) -> list[dict[str, Any]]:
        return [body for kind, body in self.hooks if kind == "recording"]


@dataclass
class Platform:
    answerer: Answerer
    standin: VonageStandin
    key: bytes

    def call(self, caller: Path, media_format: str, parties: int, channels: int, others: list[Path]) -> CallReport:
        """Ring the answerer, which records `channels` channels and connects `parties` agents."""
        return self.standin.inbound_call(
            f"{self.answerer.url}/answer/{media_format}/{parties}/{channels}",
            f"{self.answerer.url}/event",
            caller,
            to=CALLER_ID,
            other_parties=others,
        )

    def download(self, report: CallReport) -> bytes:
        """The recording as tapedeck fetches it: from the webhook's URL, with the application's JWT."""
        (hook, *_) = self.answerer.recordings()
        token = jwt.encode({"application_id": "standin-application", "iat": int(time.time())}, self.key, "RS256")
        response = requests.get(hook["recording_url"], headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert response.status_code == 200
        assert hook["recording_uuid"] == report.recording_uuid
        assert hook["size"] == len(response.content) == report.recording_bytes
        return response.content


@pytest.fixture
def legs(tmp_path: Path) -> tuple[Path, Path]:
    """The two sides of tests/data/conversation_stereo.wav as mono files: caller, then agent."""
    stereo = parse_wav((DATA / "conversation_stereo.wav").read_bytes())
    paths = (tmp_path / "caller.wav", tmp_path / "callee.wav")
    for path, pcm in zip(paths, split_channels(stereo.pcm, stereo.channels), strict=True):
        path.write_bytes(wav_header(stereo.sample_rate, len(pcm)) + pcm)
    return paths


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    key = make_application_key(tmp_path / "application.pem")
    api = StandinApi(public_key_of(key))
    answerer = Answerer()
    with api.serving("127.0.0.1", 0) as api_base, serve_in_thread(answerer.app(), "127.0.0.1", 0) as url:
        answerer.url = url
        yield Platform(answerer, VonageStandin(SECRET, api=api, api_base=api_base), key)


def samples(pcm: bytes) -> np.ndarray[Any, np.dtype[np.int16]]:
    return np.frombuffer(pcm, dtype="<i2")


def rms(pcm: bytes, start: float, end: float) -> float:
    window = samples(pcm)[int(start * RATE) : int(end * RATE)].astype(np.float64)
    return float(np.sqrt(np.mean(window**2)))


def test_a_wav_recording_has_the_caller_left_and_the_agent_right(platform: Platform, legs: tuple[Path, Path]) -> None:
    caller, callee = legs
    platform.standin.webhook_copies = 2  # Vonage's retries deliver the recording webhook again
    report = platform.call(caller, "wav", parties=1, channels=2, others=[callee])

    recording = parse_wav(platform.download(report))
    assert (recording.sample_rate, recording.channels) == (RATE, 2)
    left, right = split_channels(recording.pcm, 2)
    assert left == load_pcm(caller, RATE)
    assert right == load_pcm(callee, RATE)
    assert (report.recording_channels, report.recording_format, report.recording_ended_by) == (2, "wav", "hangup")
    assert report.parties == [AGENT] and report.party_statuses == {AGENT: "completed"}

    hooks = platform.answerer.recordings()
    assert len(hooks) == 2 and hooks[0] == hooks[1]
    assert hooks[0]["conversation_uuid"] == report.conversation_uuid
    leg = platform.answerer.events("outbound")
    assert [e["status"] for e in leg] == ["started", "ringing", "answered", "completed"]
    assert {(e["conversation_uuid"], e["from"], e["to"], e["uuid"]) for e in leg} == {
        (report.conversation_uuid, CALLER_ID, AGENT, leg[0]["uuid"])
    }
    assert leg[0]["uuid"] != report.uuid
    assert leg[-1]["duration"] == "15"  # the longer side talks for 15.6 s
    # The agent hangs up, the recording is ready, then the caller's leg completes.
    order = [(kind, body.get("direction"), body.get("status")) for kind, body in platform.answerer.hooks]
    assert order.index(("event", "outbound", "completed")) < order.index(("recording", None, None))
    assert order[-1] == ("event", "inbound", "completed")


def test_an_mp3_recording_keeps_each_speaker_on_their_channel(platform: Platform, legs: tuple[Path, Path]) -> None:
    report = platform.call(legs[0], "mp3", parties=1, channels=2, others=[legs[1]])

    data = platform.download(report)
    assert data[:3] == b"ID3" or data[0] == 0xFF  # an MP3 stream, not a RIFF file
    rate, (left, right) = decode_audio(data, "mp3")
    assert rate == RATE
    assert report.recording_format == "mp3"
    # The caller speaks first, then the agent answers (see the channel levels of the fixture).
    assert rms(left, 0.5, 4.5) > 50 * rms(right, 0.5, 4.5)
    assert rms(right, 5.6, 8.5) > 50 * rms(left, 5.6, 8.5)


def test_parties_beyond_the_channels_are_mixed_into_the_last(platform: Platform, legs: tuple[Path, Path]) -> None:
    caller, callee = legs
    third = DATA / "voicemail_outage.wav"  # shorter than the others: padded with silence
    report = platform.call(caller, "wav", parties=2, channels=2, others=[callee, third])

    recording = parse_wav(platform.download(report))
    assert recording.channels == 2
    left, right = split_channels(recording.pcm, 2)
    assert left == load_pcm(caller, RATE)
    agent, other = samples(load_pcm(callee, RATE)).astype(np.int32), samples(load_pcm(third, RATE))
    agent[: len(other)] += other
    assert right == np.clip(agent, -32768, 32767).astype("<i2").tobytes()
    assert report.parties == [AGENT, "447700900201"]


def test_mp3_above_two_channels_is_recorded_as_wav(platform: Platform, legs: tuple[Path, Path]) -> None:
    report = platform.call(legs[0], "mp3", parties=2, channels=3, others=[legs[1], DATA / "voicemail_outage.wav"])

    recording = parse_wav(platform.download(report))
    assert (recording.sample_rate, recording.channels) == (RATE, 3)
    assert (report.recording_channels, report.recording_format) == (3, "wav")


def test_a_party_with_nothing_to_say_leaves_the_call_unanswered(platform: Platform, legs: tuple[Path, Path]) -> None:
    report = platform.call(legs[0], "wav", parties=2, channels=3, others=[legs[1]])

    assert report.party_statuses == {AGENT: "completed", "447700900201": "unanswered"}
    assert report.parties == [AGENT]
    missed = [e for e in platform.answerer.events("outbound") if e["to"] == "447700900201"]
    assert [e["status"] for e in missed] == ["started", "ringing", "unanswered"]
    recording = parse_wav(platform.download(report))
    assert recording.channels == 3
    assert not any(samples(split_channels(recording.pcm, 3)[2]))
