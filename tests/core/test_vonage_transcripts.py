"""Vonage's transcription: its webhook and its transcript file, read into tapedeck's model.

The fixture is tapedeck's own, written in the shape third-party Vonage clients read; anything
else (malformed, truncated, another engine's) is a failed transcript or a 400, never an error."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.errors import BadRequest
from shared.core.transcript_parsers import parse_transcript
from shared.core.transcripts import build_turns, format_dialogue
from shared.core.vonage_transcripts import (
    is_transcription_webhook,
    read_transcription_webhook,
    read_vonage_transcript,
)
from tests.testbed import DATA
from tools.standin.transcription import transcription_webhook, vonage_transcript_file

FILE = (DATA / "vonage_transcript_voicemail.json").read_bytes()
RECORDING = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)
# Documents near Vonage's shape, so the fuzzing reaches the sentence and word readers.
VONAGE_LIKE = st.fixed_dictionaries(
    {
        "ver": JSON,
        "channels": st.lists(
            st.fixed_dictionaries(
                {"transcript": st.lists(st.fixed_dictionaries({"sentence": JSON, "words": JSON}) | JSON, max_size=3)}
            )
            | JSON,
            max_size=3,
        ),
    }
)


def test_the_file_s_sentences_are_the_text_and_its_words_are_timed_in_seconds() -> None:
    transcript = read_vonage_transcript("job", FILE)
    assert transcript.status == "completed"
    assert transcript.text == "Hi Sam, the production database is down. Please call me back."
    model = parse_transcript(transcript.document or {}, ("Caller",), 1)
    assert model.engine == "vonage" and model.notes == ()
    (caller,) = model.channels
    assert [w.text for w in caller.words][:2] == ["Hi", "Sam,"]
    assert (caller.words[0].start, caller.words[0].end, caller.words[0].confidence) == (1.2, 1.58, 0.93)
    assert format_dialogue(build_turns(model)).startswith("[00:01.2] Caller: Hi Sam, the production database is down.")


def test_two_channels_are_the_caller_and_the_agent_in_order() -> None:
    words = [
        [{"word": "Hello", "start": 0.5, "end": 0.9, "confidence": 0.9}],
        [{"word": "Hi", "start": 1.2, "end": 1.4, "confidence": 0.8}],
    ]
    document = vonage_transcript_file(words, 3.0)
    model = parse_transcript(document, ("Caller", "Agent"), 2)
    assert [(c.label, [w.text for w in c.words]) for c in model.channels] == [("Caller", ["Hello"]), ("Agent", ["Hi"])]
    assert read_vonage_transcript("job", json.dumps(document).encode()).text == "Hello\nHi"


def test_words_without_times_are_skipped_with_a_note() -> None:
    document = json.loads(FILE)
    del document["channels"][0]["transcript"][0]["words"][0]["start_time"]
    model = parse_transcript(document, ("Caller",), 1)
    assert "skipped 1 word without usable start and end times" in model.notes


@pytest.mark.parametrize(
    "data",
    [b"", b"not json", b"[]", b'{"channels": []}', b'{"ver": "1", "channels": {}}', b"\xff\xfe", b"[" * 100000],
)
def test_an_unreadable_file_is_a_failed_transcript(data: bytes) -> None:
    transcript = read_vonage_transcript("job", data)
    assert transcript.status == "failed" and transcript.failure and transcript.failure.startswith("malformed")


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON, VONAGE_LIKE))
def test_any_json_is_a_transcript_completed_or_failed_and_any_model_reads(document: Any) -> None:
    transcript = read_vonage_transcript("job", json.dumps(document).encode())
    assert transcript.status in ("completed", "failed")
    if transcript.status == "completed":
        model = parse_transcript(transcript.document or {}, ("Caller", "Agent"), 2)
        assert model.engine == "vonage"
        assert all(0 <= w.start <= w.end and 0 <= w.confidence <= 1 for c in model.channels for w in c.words)


def test_the_stand_in_s_webhook_is_read_as_a_transcription() -> None:
    url = "https://api.nexmo.com/v1/files/bbbbbbbb-aaaa-cccc-dddd-0123456789ab"
    params = transcription_webhook("CON-aaaaaaaa-bbbb-cccc-dddd-0123456789ab", RECORDING, url)
    assert is_transcription_webhook(params)
    hook = read_transcription_webhook(params)
    assert (hook.recording_uuid, hook.transcription_url, hook.status) == (RECORDING, url, "transcribed")
    recording = {"recording_uuid": RECORDING, "recording_url": url, "size": 10, "conversation_uuid": "CON-x"}
    assert not is_transcription_webhook(recording)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["recording_uuid", "transcription_url", "status", "type"]), JSON))
def test_a_malformed_transcription_webhook_is_a_bad_request(params: dict[str, Any]) -> None:
    with contextlib.suppress(BadRequest):
        hook = read_transcription_webhook(params)
        assert hook.recording_uuid == params["recording_uuid"]
