"""Live voicemail end to end: the stand-in hears the recorder's beep, the message ends on a
hang-up, `#` or silence, and the owners are paged from the live transcript; with the recorder
down, the message is recorded and paged through the batch path instead."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
import requests

from shared.core.message_end import BEEP_HZ, BEEP_SECONDS
from tests.deck import MAILBOX, OWNERS, Deck, DeckFactory, voicemail_routes
from tests.testbed import DATA
from tools.standin import DtmfPress

pytestmark = pytest.mark.slow

ROUTES = voicemail_routes(MAILBOX, OWNERS, capture="stream")


def live_pages(deck: Deck) -> list[dict[str, str]]:
    pages = deck.wait_for("outbox/live-", len(OWNERS))
    assert sorted(p["to"] for p in pages) == OWNERS
    return pages


def message_of(page: dict[str, str]) -> str:
    head, message, link = page["text"].split("\n\n")
    assert head == "[From: +447700900123]"
    assert requests.get(link, timeout=10).status_code == 200
    return message


def test_a_live_voicemail_beeps_then_pages_from_the_live_transcript_at_hang_up(deck_factory: DeckFactory) -> None:
    deck = deck_factory(LIVE_TRANSCRIBER="pocketsphinx")
    # In real time, as a caller speaks: the beep comes back while they talk.
    report = deck.call(DATA / "voicemail_outage.wav")

    assert report.talks == ["You have reached Sam. Please leave a message after the tone, then hang up or press hash."]
    assert report.closed_by == "caller"
    # The beep: a 1 kHz tone, sent as soon as the stream opened.
    beep = np.frombuffer(report.heard, "<i2").astype(np.float64)
    assert len(beep) == round(BEEP_SECONDS * 16000)
    peak = np.fft.rfftfreq(len(beep), 1 / 16000)[int(np.argmax(np.abs(np.fft.rfft(beep))))]
    assert abs(peak - BEEP_HZ) < 30
    assert report.heard_at is not None and report.heard_at < 1.0
    assert report.stream_rate == 16000
    message = message_of(live_pages(deck)[0])
    assert "PRODUCTION DATABASE" in message and "CALL ME BACK" in message
    folder = f"calls/{report.conversation_uuid}"
    assert deck.read_json(f"{folder}/call.json")["flow"] == "voicemail"
    assert deck.store.read(f"{folder}/live.jsonl") is not None
    assert deck.store.read(f"{folder}/audio.wav") is not None


def test_hash_ends_a_live_message_and_the_call_goes_on_to_the_thanks(deck_factory: DeckFactory) -> None:
    # A socket lifetime shorter than the message: a message is never rotated.
    deck = deck_factory(LIVE_TRANSCRIBER="pocketsphinx", STREAM_ROTATE_SECONDS="2")
    # In real time: the recorder hears `#` at 4 s, while the caller is still talking.
    report = deck.call(DATA / "voicemail_outage.wav", dtmf=[DtmfPress("#", 4.0)])

    assert (report.closed_by, report.close_code) == ("recorder", 1000)
    assert report.talks[-1] == "Thank you for your message. Goodbye."
    assert report.event_statuses["disconnected"] == 204
    # Closed on purpose, so not connected again: one socket, and the call went on to the thanks.
    assert len(report.sockets) == 1 and len(report.nccos) == 1
    message = message_of(live_pages(deck)[0])
    assert "CALL ME BACK" not in message
    call = deck.read_json(f"calls/{report.conversation_uuid}/call.json")
    (recording,) = call["recordings"]
    assert (recording["end_reason"], recording["closing"]) == ("key", "final")
    assert recording["duration"] == pytest.approx(4.0, abs=0.1)
    assert "reconnects" not in call


def test_silence_ends_a_live_message(deck_factory: DeckFactory, tmp_path: Path) -> None:
    with wave.open(str(DATA / "voicemail_outage.wav")) as source:
        speech, rate = source.readframes(source.getnframes()), source.getframerate()
    audio = tmp_path / "then_silence.wav"
    with wave.open(str(audio), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        # The first 3 s of the message, then 5 s of silence.
        out.writeframes(speech[: rate * 2 * 3] + b"\0" * rate * 2 * 5)
    deck = deck_factory(LIVE_TRANSCRIBER="pocketsphinx")
    report = deck.call(audio)

    assert (report.closed_by, report.close_code) == ("recorder", 1000)
    recording = deck.read_json(f"calls/{report.conversation_uuid}/call.json")["recordings"][0]
    assert recording["end_reason"] == "silence"
    # Three quiet seconds after the speech stops at 3 s, the message is over.
    assert 5.8 < recording["duration"] < 6.6
    assert "SAM" in message_of(live_pages(deck)[0])


def test_with_the_recorder_down_the_message_is_recorded_and_paged_through_the_batch_path(
    deck_factory: DeckFactory,
) -> None:
    deck = deck_factory(LIVE_TRANSCRIBER="pocketsphinx")
    report = deck.call(DATA / "voicemail_outage.wav", websocket_fails=True)

    assert report.fallback is not None and report.fallback[0]["action"] == "record"
    assert report.event_statuses["failed"] == 200
    assert report.talks[-1] == "Thank you for your message. Goodbye."
    pages = deck.pages(report.recording_uuid, len(OWNERS))
    assert sorted(p["to"] for p in pages) == OWNERS
    assert "PRODUCTION DATABASE" in message_of(pages[0])
