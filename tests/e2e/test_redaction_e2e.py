"""Redaction end to end: a caller reads out a card number and a phone number, spoken by espeak-ng
at test time, into a mailbox that redacts both. The functions run under gunicorn, the Vonage
stand-in records the message, Amazon Transcribe runs on moto.

moto accepts a job (and its ContentRedaction) but recognises nothing, and pocketsphinx's general
model hears espeak-ng's digits as other words ("four one one one" comes out "for well well well"),
so the transcript Amazon would write is made here from the script, each word timed where the
test put it in the audio: each word is spoken on its own and the words laid end to end. What is
checked is what a user gets: the page's text, the stored transcripts, and the audio the link plays.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
import requests

from shared.core.audio import resample
from shared.core.wav import parse_wav, wav_header
from shared.runtime.web import API_KEY_HEADER
from tests.aws import REGION, aws_transcriber_env, job_state_change, started_job
from tests.aws import TRANSCRIBE_BUCKET as BUCKET
from tests.aws import TRANSCRIPTION_API_KEY as API_KEY
from tests.deck import DeckFactory, voicemail_routes

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt install espeak-ng)"),
]

MAILBOX = "447700900001"
KEEPING = "447700900002"
OWNERS = ["447700900111"]
ROUTES = voicemail_routes(MAILBOX, OWNERS, redact="[card, phone]") + voicemail_routes(
    KEEPING, OWNERS, redact="[card, phone]", keep_unredacted="true"
)
RATE = 16000
CARD = "4539148803436467"
PHONE = "07700900123"
SPOKEN = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SCRIPT = [
    *["hello", "this", "is", "alex", "my", "card", "number", "is"],
    *(SPOKEN[int(d)] for d in CARD),
    *["and", "my", "phone", "is"],
    *(SPOKEN[int(d)] for d in PHONE),
    *["please", "call", "me", "back"],
]
# Loud enough to be speech, in 16-bit samples, and the gap laid between words.
_SPEECH = 300
_GAP = 0.15


def _spoken(word: str, folder: Path) -> np.ndarray:
    """One word said by espeak-ng, slowly, at RATE, its leading and trailing silence trimmed."""
    out = folder / f"{word}.wav"
    subprocess.run(["espeak-ng", "-s", "120", "-g", "10", "-w", str(out), word], check=True, timeout=30)
    wav = parse_wav(out.read_bytes())
    samples = np.frombuffer(resample(wav.pcm, wav.sample_rate, RATE), "<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > _SPEECH)
    return samples[loud[0] : loud[-1] + 1]


def _message(folder: Path) -> tuple[Path, list[tuple[str, float, float]]]:
    """The script as a WAV, and each word with its start and end in it."""
    said: dict[str, np.ndarray] = {}
    pieces, timed, at = [np.zeros(int(0.5 * RATE), "<i2")], [], 0.5
    for word in SCRIPT:
        samples = said.setdefault(word, _spoken(word, folder))
        timed.append((word, at, at + len(samples) / RATE))
        pieces += [samples, np.zeros(int(_GAP * RATE), "<i2")]
        at += len(samples) / RATE + _GAP
    pcm = np.concatenate([*pieces, np.zeros(RATE, "<i2")]).tobytes()
    path = folder / "message.wav"
    path.write_bytes(wav_header(RATE, len(pcm)) + pcm)
    return path, timed


def _amazon(job: str, timed: list[tuple[str, float, float]], redacted: bool) -> dict[str, Any]:
    """What Amazon Transcribe writes for the script: its words and times; with its own redaction
    on, the card's digits are "[PII]" (as its redacted output writes them), the phone's left."""
    card = range(SCRIPT.index("number") + 2, SCRIPT.index("number") + 2 + len(CARD))
    items: list[dict[str, Any]] = [
        {
            "type": "pronunciation",
            "start_time": f"{start:.3f}",
            "end_time": f"{end:.3f}",
            "alternatives": [{"content": "[PII]" if redacted and i in card else word, "confidence": "0.99"}],
        }
        for i, (word, start, end) in enumerate(timed)
    ]
    text = " ".join(item["alternatives"][0]["content"] for item in items)
    return {"jobName": job, "status": "COMPLETED", "results": {"transcripts": [{"transcript": text}], "items": items}}


@pytest.fixture
def message(tmp_path: Path) -> tuple[Path, list[tuple[str, float, float]]]:
    folder = tmp_path / "speech"
    folder.mkdir()
    return _message(folder)


def _transcribed(deck: Any, report: Any, timed: list[tuple[str, float, float]], redacted: bool) -> None:
    """Amazon's transcript where Transcribe writes it, then EventBridge's call to `transcription`."""
    job = f"tapedeck-vm-{report.recording_uuid}"
    body = json.dumps(_amazon(job, timed, redacted)).encode()
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key=f"transcripts/{job}.json", Body=body)
    headers = {API_KEY_HEADER: API_KEY}
    answer = requests.post(f"{deck.url}/transcription", json=job_state_change(job), headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


def _span(timed: list[tuple[str, float, float]], first: int, count: int) -> tuple[float, float]:
    return timed[first][1], timed[first + count - 1][2]


def test_a_card_and_a_phone_number_read_out_are_redacted_in_the_page_transcript_and_audio(
    deck_factory: DeckFactory, aws: str, message: tuple[Path, list[tuple[str, float, float]]]
) -> None:
    audio, timed = message
    deck = deck_factory(**aws_transcriber_env(aws))
    report = deck.call(audio, dtmf=[])
    # moto takes the job's ContentRedaction without a word but leaves it out of its answers, so
    # what is asked of Amazon is checked on the request (test_amazon_is_asked_to_redact_...).
    started_job(f"tapedeck-vm-{report.recording_uuid}")
    _transcribed(deck, report, timed, redacted=True)

    (page,) = deck.pages(report.recording_uuid, len(OWNERS))
    head, body, link = page["text"].split("\n\n")
    assert head == "[From: +447700900123]"  # the caller's number is the page's, not what was said
    assert "[PII]" in body and "[PHONE]" in body
    assert not re.search(r"\d{4}", body)
    assert not any(digit.upper() in body.split() for digit in SPOKEN)

    folder = f"calls/{report.conversation_uuid}"
    transcript = deck.read_json(f"{folder}/transcript.json")
    assert transcript["redacted"] == ["card", "phone"]
    assert "zero seven seven" not in json.dumps(transcript)
    assert [key for key in deck.store.list(f"{folder}/") if "unredacted" in key.key] == []
    # The recording as Vonage made it is gone; the link plays the silenced copy.
    assert deck.store.read(f"{folder}/message.wav") is None
    copy = deck.store.read(f"{folder}/message.redacted.wav")
    assert copy is not None
    played = requests.get(link, timeout=10)
    assert played.status_code == 200 and played.content == copy.data

    samples = np.frombuffer(parse_wav(copy.data).pcm, "<i2")
    original = np.frombuffer(parse_wav(audio.read_bytes()).pcm, "<i2")
    card_first = SCRIPT.index("number") + 2
    phone_first = SCRIPT.index("phone") + 2
    for start, end in (_span(timed, card_first, len(CARD)), _span(timed, phone_first, len(PHONE))):
        cut = slice(int(start * RATE), int(end * RATE))
        assert _rms(original[cut]) > 500  # speech was there
        assert _rms(samples[cut]) == 0.0  # and is silent in the copy
    hello = slice(int(timed[0][1] * RATE), int(timed[0][2] * RATE))
    assert _rms(samples[hello]) > 500  # what is not redacted is still heard


def test_a_route_that_keeps_the_words_as_heard_keeps_them_apart(
    deck_factory: DeckFactory, aws: str, message: tuple[Path, list[tuple[str, float, float]]]
) -> None:
    audio, timed = message
    deck = deck_factory(**aws_transcriber_env(aws))
    report: Any = deck.standin.inbound_call(f"{deck.url}/answer", f"{deck.url}/event", audio, to=KEEPING, dtmf=[])
    started_job(f"tapedeck-vm-{report.recording_uuid}")
    _transcribed(deck, report, timed, redacted=False)

    (page,) = deck.pages(report.recording_uuid, len(OWNERS))
    body = page["text"].split("\n\n")[1]
    assert "[CARD]" in body and "[PHONE]" in body
    folder = f"calls/{report.conversation_uuid}"
    heard = deck.store.read(f"{folder}/transcript.unredacted.txt")
    assert heard is not None and "four five three nine" in heard.data.decode()
    assert "four five three nine" not in deck.store.read(f"{folder}/transcript.txt").data.decode()  # type: ignore[union-attr]
    assert deck.store.read(f"{folder}/message.wav") is not None
    assert deck.store.read(f"{folder}/message.redacted.wav") is not None


@pytest.mark.parametrize(
    ("language", "redact", "expected"),
    [
        ("en-US", ("card", "phone"), ["CREDIT_DEBIT_CVV", "CREDIT_DEBIT_EXPIRY", "CREDIT_DEBIT_NUMBER", "PHONE"]),
        ("de-DE", ("email",), ["EMAIL"]),
        # Amazon does not redact en-GB, and a route that keeps the words as heard asks for nothing.
        ("en-GB", ("card",), None),
        ("en-US", (), None),
    ],
)
def test_amazon_is_asked_to_redact_where_it_can(language: str, redact: tuple[str, ...], expected: Any) -> None:
    from shared.adapters.aws_transcriber import content_redaction
    from shared.core.ports import TranscriptionJob

    asked = content_redaction(TranscriptionJob("tapedeck-vm-r", "a.wav", "wav", language, redact=redact))
    if expected is None:
        assert asked is None
    else:
        assert asked == {"RedactionType": "PII", "RedactionOutput": "redacted", "PiiEntityTypes": expected}
