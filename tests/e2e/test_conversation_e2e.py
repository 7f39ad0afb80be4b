"""Recorded conversations end to end: the functions under gunicorn, the Vonage stand-in connecting
a second party and recording one channel each, offline recognition or Amazon Transcribe on moto,
then the transcript files, the signed result webhook and the SMS summary."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from shared.core.wav import parse_wav
from shared.runtime.web import API_KEY_HEADER
from tests.aws import (
    REGION,
    amazon_transcript,
    aws_transcriber_env,
    job_state_change,
    started_job,
)
from tests.aws import (
    TRANSCRIBE_BUCKET as BUCKET,
)
from tests.aws import (
    TRANSCRIPTION_API_KEY as API_KEY,
)
from tests.deck import Deck, DeckFactory, deck_fixture, signed_post
from tests.servers import receiving
from tests.testbed import DATA
from tools.standin.receiver import CallbackReceiver

# Real servers or emulators on loopback, started by the tests.
pytestmark = pytest.mark.slow

NUMBER = "447700900002"
AGENT = "447700900200"
SUPERVISOR = "447700900222"
CALLBACK_SECRET = "result-webhook-secret"
SCRIPT = [
    (0, "Caller", 0.5, "hello thanks for taking my call i would like to change my delivery address"),
    (1, "Agent", 5.6, "of course can you tell me the new address please"),
    (0, "Caller", 9.1, "it is twenty two baker street in london"),
    (1, "Agent", 12.5, "thank you the address has been updated"),
]


@pytest.fixture
def receiver() -> Iterator[tuple[CallbackReceiver, str]]:
    with receiving(CALLBACK_SECRET, "/transcripts", fail_first=1) as found:
        yield found


@pytest.fixture
def deck_factory(
    tmp_path: Path, receiver: tuple[CallbackReceiver, str], request: pytest.FixtureRequest
) -> Iterator[DeckFactory]:
    media_format = getattr(request, "param", "wav")
    routes = f"""
"{NUMBER}":
  flow: conversation
  connect: ["{AGENT}"]
  caller_id: "{NUMBER}"
  labels: [Caller, Agent]
  notice: This call is recorded for quality and training.
  format: {media_format}
  result_webhook: {receiver[1]}
  recipients: ["{SUPERVISOR}"]
"""
    yield from deck_fixture(tmp_path, routes, NUMBER)


def local(**env: str) -> dict[str, str]:
    return {"CALLBACK_SECRET": CALLBACK_SECRET, "CALLBACK_BACKOFF": "0.05", "ALLOW_PRIVATE_CALLBACKS": "true", **env}


@pytest.fixture(scope="module")
def parties() -> tuple[Path, Path]:
    """What each side of conversation_stereo.wav says, as the caller's file and the agent's."""
    stereo = parse_wav((DATA / "conversation_stereo.wav").read_bytes())
    files = (DATA / "conversation_caller.wav", DATA / "conversation_agent.wav")
    for channel, path in enumerate(files):
        assert parse_wav(path.read_bytes()).pcm == memoryview(stereo.pcm).cast("h")[channel::2].tobytes()
    return files


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z ]", " ", text.lower()).split()


def check_dialogue(turns: list[dict[str, Any]]) -> None:
    """Four turns in the script's order, on the right channels, saying mostly the script's words."""
    assert [(t["channel"], t["label"]) for t in turns] == [(c, label) for c, label, _, _ in SCRIPT]
    for turn, (_, _, start, said) in zip(turns, SCRIPT, strict=True):
        assert abs(turn["start"] - start) < 0.6
        heard = set(words(turn["text"]))
        expected = words(said)
        assert sum(w in heard for w in expected) >= 0.7 * len(expected), (turn["text"], said)


def check_outputs(deck: Deck, report: Any, receiver: CallbackReceiver, engine: str = "offline") -> dict[str, Any]:
    (delivery,) = receiver.wait(1, timeout=120)
    assert delivery.signature_valid and delivery.method == "POST"
    assert [d.answered for d in receiver.deliveries] == [500, 200]  # one failure, then the retry
    result: dict[str, Any] = delivery.json
    assert result["event"] == "transcript" and result["conversation_uuid"] == report.conversation_uuid
    assert result["recording_uuid"] == report.recording_uuid and result["caller"] == "447700900123"
    transcript = result["transcript"]
    assert transcript["status"] == "completed"
    # The engine that transcribed it, as the route's (default) chain ran it.
    assert (result["engine"], result["language"]) == (engine, "en-US")
    assert [(a["engine"], a["outcome"]) for a in result["attempts"]] == [(engine, "completed")]
    check_dialogue(transcript["turns"])
    folder = f"calls/{report.conversation_uuid}"
    assert deck.read_json(f"{folder}/transcript.json")["turns"] == transcript["turns"]
    text = deck.store.read(f"{folder}/transcript.txt").data.decode()  # type: ignore[union-attr]
    lines = text.splitlines()
    assert re.match(r"^\[00:00\.\d\] Caller: Hello", lines[0]) and re.match(r"^\[00:0[56]\.\d\] Agent:  ", lines[1])
    assert text.startswith(transcript["dialogue"])
    vtt = deck.store.read(f"{folder}/transcript.vtt").data.decode()  # type: ignore[union-attr]
    assert vtt.startswith("WEBVTT\n\n") and "<v Caller>" in vtt and "<v Agent>" in vtt
    audio = requests.get(result["audio_url"], timeout=10)
    assert audio.status_code == 200 and audio.content == deck.api.recordings[report.recording_uuid]
    (summary,) = deck.pages(report.recording_uuid, 1)
    assert summary["to"] == SUPERVISOR
    head, body, link = summary["text"].split("\n\n")
    assert head == "[Call from +447700900123]" and body.startswith(lines[0][:20]) and link == result["audio_url"]
    return result


def test_a_recorded_call_becomes_a_dialogue_delivered_once(
    deck_factory: DeckFactory, parties: tuple[Path, Path], receiver: tuple[CallbackReceiver, str]
) -> None:
    deck = deck_factory(**local())
    deck.standin.webhook_copies = 2  # Vonage's retry delivers the recording webhook again
    report = deck.call(parties[0], other_parties=[parties[1]])
    assert report.ncco[1]["split"] == "conversation" and report.ncco[1]["channels"] == 2
    assert report.talks == ["This call is recorded for quality and training."]
    recording = parse_wav(deck.api.recordings[report.recording_uuid])
    assert recording.channels == 2
    check_outputs(deck, report, receiver[0])
    time.sleep(0.5)
    assert len(receiver[0].accepted()) == 1


@pytest.mark.parametrize("deck_factory", ["mp3"], indirect=True)
def test_an_mp3_recording_gives_the_same_dialogue(
    deck_factory: DeckFactory, parties: tuple[Path, Path], receiver: tuple[CallbackReceiver, str]
) -> None:
    deck = deck_factory(**local())
    report = deck.call(parties[0], other_parties=[parties[1]])
    assert deck.api.recordings[report.recording_uuid][:4] != b"RIFF"
    assert deck.store.read(f"calls/{report.conversation_uuid}/conversation.mp3") is not None
    check_outputs(deck, report, receiver[0])


def test_amazon_transcribe_with_channel_identification_gives_the_dialogue(
    deck_factory: DeckFactory,
    parties: tuple[Path, Path],
    receiver: tuple[CallbackReceiver, str],
    aws: str,
    tmp_path: Path,
) -> None:
    """moto stands in for Transcribe's API and S3, but recognises nothing: the test writes the
    transcript file where Transcribe would, made from the staged audio (see amazon_transcript),
    and calls the `transcription` function as EventBridge's API destination would."""
    s3 = boto3.client("s3", region_name=REGION)
    deck = deck_factory(**local(**aws_transcriber_env(aws)))
    report = deck.call(parties[0], other_parties=[parties[1]])
    job = f"tapedeck-cv-{report.recording_uuid}"
    started = started_job(job)
    assert started["Settings"]["ChannelIdentification"] is True
    staged = s3.get_object(Bucket=BUCKET, Key=f"media/{job}.wav")["Body"].read()
    assert staged == deck.api.recordings[report.recording_uuid]
    document = amazon_transcript(job, staged, "wav", tmp_path / "transcribe")
    s3.put_object(Bucket=BUCKET, Key=f"transcripts/{job}.json", Body=json.dumps(document).encode())
    event = job_state_change(job)
    answer = requests.post(f"{deck.url}/transcription", json=event, headers={API_KEY_HEADER: API_KEY}, timeout=60)
    assert answer.status_code == 200 and answer.json()["result"] == "completed"
    result = check_outputs(deck, report, receiver[0], engine="aws")
    assert result["transcript"]["engine"] == "aws"
    # Transcribe's punctuation is attached to the word before it, without a space.
    assert re.search(r"[a-z]\.$", result["transcript"]["turns"][-1]["text"])


def test_a_recording_that_cannot_be_transcribed_is_reported_as_failed(
    deck_factory: DeckFactory, receiver: tuple[CallbackReceiver, str]
) -> None:
    deck = deck_factory(**local())
    params = {"conversation_uuid": "CON-bad", "uuid": "u", "from": "447700900123", "to": NUMBER}
    ncco = deck.standin.fetch_ncco(f"{deck.url}/answer", params)
    deck.api.recordings["broken"] = b"RIFF but not really a wave file"
    hook = {
        "conversation_uuid": "CON-bad",
        "recording_uuid": "broken",
        "recording_url": f"{deck.standin.api_base}/v1/files/broken",
        "size": 31,
        "timestamp": "2026-11-22T10:00:00.000Z",
    }
    assert signed_post(ncco[1]["eventUrl"][0], hook).status_code == 204
    (delivery,) = receiver[0].wait(1, timeout=60)
    transcript = delivery.json["transcript"]
    assert transcript["status"] == "failed" and transcript["turns"] == []
    assert any("transcription failed" in note for note in transcript["notes"])
    (summary,) = deck.pages("broken", 1)
    assert "Transcription failed." in summary["text"]
    stored = deck.store.read("calls/CON-bad/conversation.wav")
    assert stored is not None and stored.data == deck.api.recordings["broken"]
