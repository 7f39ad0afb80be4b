"""Redaction of a recorded conversation, in-process on FakeServices: the caller reads out a card
and the agent a phone number, and the result webhook's body, the transcript files, the SMS
summary and the audio its link plays carry none of their digits; the words as heard are kept
apart only when the route asks, and the recording as made with them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.config.routes import parse_routes
from shared.config.settings import DeliveryPolicy, Settings, StreamSettings
from shared.core.call_record import Flow
from shared.core.ports import Transcript
from shared.core.tokens import sign_caller
from shared.core.wav import parse_wav
from shared.flows.jobs import job_name
from shared.flows.links import resolve_link
from shared.flows.results import deliver_result
from shared.flows.transcription import receive_recording, run_transcription
from tests.fakes import FakeServices
from tests.testbed import DATA, TOKEN_SECRET

REDACTING, KEEPING = "447700900002", "447700900003"
AGENT, SUPERVISOR, CALLER = "447700900200", "447700900222", "447700900123"
HOOK = "https://crm.example.com/transcripts"
ROUTES = "".join(
    f"""\
"{number}":
  flow: conversation
  connect: ["{AGENT}"]
  labels: [Caller, Agent]
  format: wav
  result_webhook: {HOOK}
  recipients: ["{SUPERVISOR}"]
  redact: [card, phone]
{extra}"""
    for number, extra in ((REDACTING, ""), (KEEPING, "  keep_unredacted: true\n"))
)
CONVERSATION = "CON-7d0e1f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a"
RECORDING = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
URL = f"https://api.nexmo.com/v1/files/{RECORDING}"
JOB = job_name(Flow.CONVERSATION, RECORDING)
STEREO = (DATA / "conversation_stereo.wav").read_bytes()
RATE = 16000
CARD, PHONE = "4539148803436467", "07700900456"
SPOKEN = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
STEP = 0.3


def spoken(number: str) -> list[str]:
    return [SPOKEN[int(digit)] for digit in number]


CALLER_SAID = ["hello", "i", "would", "like", "to", "pay", "my", "card", "is", *spoken(CARD), "thanks"]
AGENT_SAID = ["thank", "you", "my", "direct", "line", "is", *spoken(PHONE)]
# Where each channel's number is said, in seconds: (first digit's start, last digit's end).
CARD_AT = (0.5 + 9 * STEP, 0.5 + (9 + len(CARD) - 1) * STEP + 0.25)
PHONE_AT = (8.0 + 6 * STEP, 8.0 + (6 + len(PHONE) - 1) * STEP + 0.25)


def timed(said: list[str], at: float) -> list[dict[str, Any]]:
    return [
        {"word": word, "start": round(at + i * STEP, 2), "end": round(at + i * STEP + 0.25, 2), "confidence": 0.9}
        for i, word in enumerate(said)
    ]


# What the engine heard, in its own document: the caller on channel 0, the agent on channel 1.
HEARD = {
    "engine": "pocketsphinx",
    "channels": [{"channel": 0, "words": timed(CALLER_SAID, 0.5)}, {"channel": 1, "words": timed(AGENT_SAID, 8.0)}],
}


def heard_digits(text: str) -> list[str]:
    """Every digit in `text`, written or spoken, but for a dialogue's `[MM:SS.s]` times."""
    words = re.sub(r"\[[0-9]{2}:[0-9]{2}\.[0-9]\]", "", text).lower()
    return [token for token in re.findall(r"[a-z]+|[0-9]", words) if token in SPOKEN or token.isdigit()]


def document_text(document: dict[str, Any]) -> str:
    """Everything a transcript document says: its dialogue, turns, and each channel's words."""
    channels = document["channels"]
    texts = [document["dialogue"], *(t["text"] for t in document["turns"]), *(c["text"] for c in channels)]
    return " ".join(texts + [w["word"] for c in channels for w in c["words"]])


def services_on(tmp_path: Path) -> FakeServices:
    settings = Settings(
        public_url="https://fn.example.test",
        stream=StreamSettings(token_secret=TOKEN_SECRET),
        routes=parse_routes(ROUTES, "routes.yaml"),
        delivery=DeliveryPolicy(attempts=1, allow_private=True, secret="callback-secret"),
    )
    services = FakeServices.on(tmp_path, settings)
    services.recordings.files[URL] = STEREO
    services.transcriber.transcripts[JOB] = Transcript(JOB, "completed", "", document=HEARD)
    return services


def transcribed(services: FakeServices, called: str) -> dict[str, Any]:
    """The call to `called` recorded, transcribed and its result delivered: the webhook's body."""
    hook = {
        "recording_url": URL,
        "size": len(STEREO),
        "recording_uuid": RECORDING,
        "conversation_uuid": CONVERSATION,
        "timestamp": "2026-11-30T09:15:40.426Z",
        "caller": CALLER,
        "to": called,
        "sig": sign_caller(TOKEN_SECRET, CONVERSATION, f"{CALLER}|{called}"),
    }
    job = receive_recording(services, hook, services.clock())
    assert job is not None and run_transcription(services, job, services.clock()) == "completed"
    assert deliver_result(services, CONVERSATION, RECORDING, attempt=1, final=True, now=services.clock()) == "delivered"
    ((method, url, body, _),) = services.http.requests
    assert (method, url) == ("POST", HOOK) and body is not None
    result: dict[str, Any] = json.loads(body)
    return result


def read(services: FakeServices, name: str) -> str:
    blob = services.store.read(f"calls/{CONVERSATION}/{name}")
    assert blob is not None, name
    return blob.data.decode()


def read_bytes(services: FakeServices, name: str) -> bytes | None:
    blob = services.store.read(f"calls/{CONVERSATION}/{name}")
    return blob.data if blob is not None else None


def channels(data: bytes) -> np.ndarray:
    wav = parse_wav(data)
    return np.frombuffer(wav.pcm, "<i2").reshape(-1, wav.channels)


def played(services: FakeServices, result: dict[str, Any]) -> tuple[str, bytes]:
    """The object the webhook's audio_url plays, and its bytes."""
    key = resolve_link(services.store, str(result["audio_url"]).rsplit("=", 1)[1], services.clock())
    blob = services.store.read(key)
    assert blob is not None
    return key, blob.data


def test_a_conversation_that_redacts_delivers_stores_and_texts_no_digit_of_a_card_or_phone_number(
    tmp_path: Path,
) -> None:
    services = services_on(tmp_path)
    result = transcribed(services, REDACTING)

    transcript = result["transcript"]
    assert [turn["text"] for turn in transcript["turns"]] == [
        "Hello i would like to pay my card is [card] thanks.",
        "Thank you my direct line is [phone]",
    ]
    assert transcript["redacted"] == ["card", "phone"]
    assert heard_digits(document_text(transcript)) == []
    stored = json.loads(read(services, "transcript.json"))
    assert stored["dialogue"] == transcript["dialogue"] and heard_digits(document_text(stored)) == []
    text = read(services, "transcript.txt")
    assert "[card]" in text and "[phone]" in text and heard_digits(text) == []
    vtt = read(services, "transcript.vtt")
    assert "[card]" in vtt and heard_digits("\n".join(line for line in vtt.splitlines() if "-->" not in line)) == []
    # Neither the words as heard nor the engine's own document, which has them, is kept.
    kept = [blob.key.rsplit("/", 1)[1] for blob in services.store.list(f"calls/{CONVERSATION}/transcript")]
    assert sorted(kept) == ["transcript.json", "transcript.txt", "transcript.vtt"]

    ((to, sms),) = services.messenger.texts
    head, body, link = sms.split("\n\n")
    assert (to, head) == (SUPERVISOR, f"[Call from +{CALLER}]")
    assert "[card]" in body and "[phone]" in body and heard_digits(body) == []
    assert link == result["audio_url"]

    # The link plays the silenced copy; the recording as made is gone.
    key, audio = played(services, result)
    assert key == f"calls/{CONVERSATION}/conversation.redacted.wav"
    assert services.store.read(f"calls/{CONVERSATION}/conversation.wav") is None
    original, copy = channels(STEREO), channels(audio)
    for channel, (start, end) in ((0, CARD_AT), (1, PHONE_AT)):
        said = slice(int(start * RATE), int(end * RATE))
        assert np.abs(original[said, channel]).max() > 0
        assert np.abs(copy[said, channel]).max() == 0
        # The other party's channel is heard as it was.
        assert np.array_equal(copy[said, 1 - channel], original[said, 1 - channel])
    before = slice(0, int((CARD_AT[0] - 0.2) * RATE))
    assert np.array_equal(copy[before], original[before])


def test_a_conversation_that_keeps_the_words_as_heard_keeps_them_and_the_recording_apart(tmp_path: Path) -> None:
    services = services_on(tmp_path)
    result = transcribed(services, KEEPING)

    assert heard_digits(document_text(result["transcript"])) == []
    heard = read(services, "transcript.unredacted.txt")
    assert " ".join(spoken(CARD)) in heard and " ".join(spoken(PHONE)) in heard
    assert json.loads(read(services, "transcript.unredacted.engine.json")) == HEARD
    assert heard_digits(read(services, "transcript.txt")) == []
    assert services.store.read(f"calls/{CONVERSATION}/transcript.engine.json") is None
    key, _ = played(services, result)
    assert key == f"calls/{CONVERSATION}/conversation.redacted.wav"
    assert read_bytes(services, "conversation.wav") == STEREO


@pytest.mark.parametrize("called", [REDACTING, KEEPING])
def test_a_failed_transcription_of_a_conversation_that_redacts_still_reports_and_keeps_the_recording(
    tmp_path: Path, called: str
) -> None:
    services = services_on(tmp_path)
    services.transcriber.transcripts[JOB] = Transcript(JOB, "failed", "", failure="engine unavailable")
    result = transcribed(services, called)

    assert result["transcript"]["status"] == "failed"
    assert "Transcription failed." in services.messenger.texts[0][1]
    # Nothing was heard, so nothing was silenced: the recording as made is what the link plays.
    key, audio = played(services, result)
    assert key == f"calls/{CONVERSATION}/conversation.wav" and audio == STEREO
