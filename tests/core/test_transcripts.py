"""Transcripts: each engine's document read into one model, and the dialogue, text, WebVTT and JSON made from it."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from shared.adapters.local_blob_store import LocalBlobStore
from shared.adapters.pocketsphinx_transcriber import PocketsphinxTranscriber
from shared.core.ports import TranscriptionJob
from shared.core.transcripts import (
    Channel,
    TranscriptModel,
    Turn,
    Word,
    build_turns,
    format_channel_text,
    format_dialogue,
    format_webvtt,
    parse_transcript,
    transcript_document,
)
from tests.testbed import DATA

LABELS = ("Caller", "Agent")
# What is said in tests/data/conversation_stereo.wav: when it starts, on which channel, and the words.
SCRIPT = [
    (0.5, 0, "Hello, thanks for taking my call. I would like to change my delivery address."),
    (5.6, 1, "Of course. Can you tell me the new address please?"),
    (9.1, 0, "It is twenty two Baker Street in London."),
    (12.5, 1, "Thank you, the address has been updated."),
]
DIALOGUE = """\
[00:00.5] Caller: Hello, thanks for taking my call. I would like to change my delivery address.
[00:05.6] Agent:  Of course. Can you tell me the new address please?
[00:09.1] Caller: It is twenty two Baker Street in London.
[00:12.5] Agent:  Thank you, the address has been updated."""


def say(content: str, start: str | float, end: str | float, confidence: str = "0.99") -> dict[str, Any]:
    """A pronunciation item as Amazon Transcribe writes it: times and confidence are strings."""
    return {
        "type": "pronunciation",
        "start_time": start,
        "end_time": end,
        "alternatives": [{"content": content, "confidence": confidence}],
    }


def mark(content: str) -> dict[str, Any]:
    return {"type": "punctuation", "alternatives": [{"content": content, "confidence": "0.0"}]}


def spoken(text: str) -> list[dict[str, Any]]:
    """Items from `word start end` triples, a punctuation mark written against the end it follows."""
    items = []
    for word, start, end, punctuation in re.findall(r"(\S+)\s+([0-9.]+)\s+([0-9]+\.[0-9]+)([,.?]?)", text):
        items.append(say(word, start, end))
        if punctuation:
            items.append(mark(punctuation))
    return items


def labelled(items: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    """Top-level items: words carry their channel_label, punctuation does not (reference notes, section 3)."""
    return [{**item, "channel_label": label} if item["type"] == "pronunciation" else item for item in items]


CALLER_1 = spoken(
    """
    Hello 0.50 0.84, thanks 0.90 1.25 for 1.25 1.40 taking 1.40 1.80 my 1.80 1.95 call 1.95 2.40.
    I 2.80 2.90 would 2.90 3.10 like 3.10 3.35 to 3.35 3.45 change 3.45 3.85 my 3.85 4.00
    delivery 4.00 4.45 address 4.45 5.00.
    """
)
AGENT_1 = spoken(
    """
    Of 5.60 5.72 course 5.72 6.20. Can 6.40 6.58 you 6.58 6.70 tell 6.70 6.90 me 6.90 7.05 the 7.05 7.15
    new 7.15 7.40 address 7.40 7.85 please 7.85 8.40?
    """
)
CALLER_2 = spoken(
    """
    It 9.10 9.22 is 9.22 9.38 twenty 9.38 9.80 two 9.80 10.05 Baker 10.05 10.40 Street 10.40 10.85
    in 10.95 11.05 London 11.05 11.60.
    """
)
AGENT_2 = spoken(
    """
    Thank 12.50 12.85 you 12.85 13.10, the 13.25 13.35 address 13.35 13.80 has 13.80 14.00
    been 14.00 14.20 updated 14.20 14.90.
    """
)
# Amazon Transcribe's output file for the fixture conversation, channel identification on.
AWS_CALL = {
    "jobName": "tapedeck-CON-7f3a",
    "accountId": "123456789012",
    "status": "COMPLETED",
    "results": {
        "transcripts": [{"transcript": " ".join(text for _, _, text in SCRIPT)}],
        "items": [
            *labelled(CALLER_1, "ch_0"),
            *labelled(AGENT_1, "ch_1"),
            *labelled(CALLER_2, "ch_0"),
            *labelled(AGENT_2, "ch_1"),
        ],
        "channel_labels": {
            "number_of_channels": 2,
            "channels": [
                {"channel_label": "ch_0", "items": [*CALLER_1, *CALLER_2]},
                {"channel_label": "ch_1", "items": [*AGENT_1, *AGENT_2]},
            ],
        },
    },
}


def aws(items: list[Any], **results: Any) -> dict[str, Any]:
    """A mono Amazon Transcribe output file: top-level items only."""
    return {"jobName": "j", "results": {"transcripts": [{"transcript": ""}], "items": items, **results}}


def offline(*channels: list[tuple[str, float, float]]) -> dict[str, Any]:
    """A pocketsphinx document, one list of (word, start, end) per channel."""
    return {
        "engine": "pocketsphinx",
        "channels": [
            {"channel": i, "words": [{"word": w, "start": s, "end": e, "confidence": 0.9} for w, s, e in words]}
            for i, words in enumerate(channels)
        ],
    }


def texts(model: TranscriptModel) -> list[list[str]]:
    return [[word.text for word in channel.words] for channel in model.channels]


# Amazon Transcribe ---------------------------------------------------------------------------------


def test_an_aws_call_reads_as_the_dialogue_with_punctuation_attached() -> None:
    model = parse_transcript(AWS_CALL, LABELS, 2)
    assert model.engine == "aws"
    assert model.notes == ()
    assert format_dialogue(build_turns(model)) == DIALOGUE
    assert texts(model)[0][:3] == ["Hello,", "thanks", "for"]
    assert format_channel_text(model) == (
        "Caller:\n"
        "Hello, thanks for taking my call. I would like to change my delivery address. "
        "It is twenty two Baker Street in London.\n"
        "\n"
        "Agent:\n"
        "Of course. Can you tell me the new address please? Thank you, the address has been updated."
    )


def test_an_aws_word_keeps_its_times_and_confidence_as_numbers() -> None:
    model = parse_transcript(AWS_CALL, LABELS, 2)
    assert model.channels[0].words[0] == Word("Hello,", 0.5, 0.84, 0.99)
    assert [(channel.index, channel.label) for channel in model.channels] == [(0, "Caller"), (1, "Agent")]


def test_a_mono_aws_job_fills_one_channel_and_notes_the_missing_one() -> None:
    model = parse_transcript(aws([*CALLER_2]), LABELS, 2)
    assert texts(model) == [["It", "is", "twenty", "two", "Baker", "Street", "in", "London."], []]
    assert model.notes == ("expected 2 channels, the transcript has 1",)
    assert format_channel_text(model) == (
        "Caller:\nIt is twenty two Baker Street in London.\n\nAgent:\n(nothing recognised)"
    )


def test_mono_aws_items_with_a_channel_label_go_to_that_channel() -> None:
    model = parse_transcript(aws([*labelled(AGENT_1[:3], "ch_1"), *labelled(CALLER_2[-2:], "ch_0")]), LABELS, 2)
    assert texts(model) == [["London."], ["Of", "course."]]
    assert model.notes == ()


@pytest.mark.parametrize(
    "results",
    [
        {"transcripts": [{"transcript": ""}], "items": []},
        {
            "transcripts": [{"transcript": ""}],
            "items": [],
            "channel_labels": {
                "number_of_channels": 2,
                "channels": [{"channel_label": "ch_0", "items": []}, {"channel_label": "ch_1", "items": []}],
            },
        },
    ],
    ids=["mono", "two channels"],
)
def test_a_silent_aws_recording_has_no_turns_and_says_so(results: dict[str, Any]) -> None:
    model = parse_transcript({"jobName": "j", "results": results}, LABELS, 1)
    assert build_turns(model) == []
    assert format_dialogue(build_turns(model)) == ""
    assert model.notes == ("no words were recognised",)


def test_an_aws_word_without_times_is_skipped_and_counted() -> None:
    untimed = {"type": "pronunciation", "alternatives": [{"content": "um", "confidence": "0.5"}]}
    model = parse_transcript(aws([say("Hi", "0.1", "0.3"), untimed, untimed, say("there", "0.5", "0.8")]), LABELS, 1)
    assert texts(model) == [["Hi", "there"]]
    assert model.notes == ("skipped 2 words without usable start and end times",)


def test_leading_aws_punctuation_is_dropped() -> None:
    model = parse_transcript(aws([mark("."), say("Hi", "0.1", "0.3"), mark("!")]), LABELS, 1)
    assert texts(model) == [["Hi!"]]
    assert model.notes == ("dropped 1 punctuation mark with no preceding word to attach to",)


def test_an_aws_channel_beyond_the_labels_is_labelled_by_its_index() -> None:
    document = {
        "results": {
            "channel_labels": {
                "number_of_channels": 2,
                "channels": [
                    {"channel_label": "ch_0", "items": [say("Hi", "0.1", "0.3")]},
                    {"channel_label": "ch_3", "items": [say("Hello", "1.0", "1.4"), mark(".")]},
                ],
            }
        }
    }
    model = parse_transcript(document, LABELS, 2)
    assert [(channel.index, channel.label) for channel in model.channels] == [
        (0, "Caller"),
        (1, "Agent"),
        (3, "Channel 3"),
    ]
    assert format_dialogue(build_turns(model)) == "[00:00.1] Caller:    Hi.\n[00:01.0] Channel 3: Hello."


def test_malformed_aws_values_are_skipped_with_notes_and_never_raise() -> None:
    items: list[Any] = [
        say("Hello", "0.1", "0.4", confidence="abc"),
        {"type": "pronunciation", "start_time": "0.5", "end_time": "0.7"},
        {"type": "pronunciation", "start_time": "0.5", "end_time": "0.7", "alternatives": []},
        {"type": "pronunciation", "start_time": "0.5", "end_time": "0.7", "alternatives": [{"content": 5}]},
        say("soon", "later", "0.9"),
        say("backwards", "2.0", "1.0"),
        {"type": "speaker-change", "alternatives": [{"content": "x"}]},
        "not an item",
        None,
        say("there", 1.5, 1.9),  # numbers where strings are usual are still numbers
        mark("."),
    ]
    model = parse_transcript(aws(items), LABELS, 1)
    assert model.channels[0].words == (Word("Hello", 0.1, 0.4, 0.0), Word("there.", 1.5, 1.9, 0.99))
    assert model.notes == (
        "1 word had no usable confidence and scored 0",
        "skipped 6 malformed items that could not be read",
        "skipped 2 words without usable start and end times",
    )


@pytest.mark.parametrize(
    "results",
    [
        {"channel_labels": "two", "items": "many"},
        {"channel_labels": {"channels": [None, {"channel_label": "left", "items": []}, {"channel_label": "ch_0"}]}},
        {"channel_labels": {"channels": [{"channel_label": "ch_0", "items": {"0": say("x", "0", "1")}}]}},
    ],
)
def test_malformed_aws_structure_never_raises(results: dict[str, Any]) -> None:
    model = parse_transcript({"results": results}, LABELS, 1)
    assert model.engine == "aws"
    assert [channel.index for channel in model.channels] == [0]
    assert model.notes[-1] == "no words were recognised"
    assert len(model.notes) >= 2


# Google and the offline engine ---------------------------------------------------------------------


def google_result(tag: int, *words: tuple[str, float, float]) -> dict[str, Any]:
    return {
        "channel_tag": tag,
        "transcript": " ".join(word for word, _, _ in words),
        "confidence": 0.9,
        "words": [{"word": word, "start": start, "end": end, "confidence": 0.9} for word, start, end in words],
    }


def test_google_channel_tags_count_from_one() -> None:
    document = {
        "engine": "google",
        "results": [
            google_result(1, ("Hello,", 0.5, 0.9), ("thanks.", 0.9, 1.3)),
            google_result(2, ("Of", 2.0, 2.2), ("course.", 2.2, 2.6)),
            google_result(3, ("Hi!", 3.0, 3.3)),
        ],
    }
    model = parse_transcript(document, LABELS, 2)
    assert model.engine == "google"
    assert model.notes == ()
    assert format_dialogue(build_turns(model)) == (
        "[00:00.5] Caller:    Hello, thanks.\n[00:02.0] Agent:     Of course.\n[00:03.0] Channel 2: Hi!"
    )


def test_a_single_channel_google_result_is_channel_zero() -> None:
    document = {"engine": "google", "results": [google_result(0, ("Hello.", 0.5, 0.9))]}
    model = parse_transcript(document, LABELS, 1)
    assert texts(model) == [["Hello."]]
    assert model.channels[0].label == "Caller"


def test_a_google_result_without_word_timings_is_noted() -> None:
    document = {
        "engine": "google",
        "results": [{"channel_tag": 1, "transcript": "Hello.", "words": []}, {"channel_tag": "one", "words": []}],
    }
    model = parse_transcript(document, LABELS, 1)
    assert model.notes == (
        "skipped 1 result with text but no word timings",
        "skipped 1 channel with an unreadable channel label or tag",
        "no words were recognised",
    )


def test_offline_words_read_like_a_script() -> None:
    document = offline(
        [("hello", 0.5, 0.9), ("there", 0.9, 1.2), ("twenty", 4.0, 4.3), ("two", 4.3, 4.5)],
        [("hi", 2.0, 2.3)],
    )
    model = parse_transcript(document, LABELS, 2)
    assert model.engine == "pocketsphinx"
    assert format_dialogue(build_turns(model)) == (
        "[00:00.5] Caller: Hello there.\n[00:02.0] Agent:  Hi.\n[00:04.0] Caller: Twenty two."
    )


@pytest.mark.parametrize(
    ("document", "note"),
    [
        ({}, "unrecognised transcript document (neither Amazon results nor an engine); nothing was read"),
        ({"engine": "whisper"}, "unrecognised transcript document (engine 'whisper'); nothing was read"),
        (
            {"results": [1, 2]},
            "unrecognised transcript document (neither Amazon results nor an engine); nothing was read",
        ),
    ],
)
def test_an_unknown_document_gives_no_channels_and_a_note(document: dict[str, Any], note: str) -> None:
    model = parse_transcript(document, LABELS, 2)
    assert model == TranscriptModel("unknown", (), (note,))
    assert build_turns(model) == []
    assert format_channel_text(model) == ""


def test_a_malformed_offline_document_never_raises() -> None:
    document = {
        "engine": "pocketsphinx",
        "channels": [
            {"channel": 0, "words": [{"word": "hi", "start": "0.1", "end": 0.4}, {"word": "", "start": 1, "end": 2}]},
            {"channel": -1, "words": []},
            {"channel": 1, "words": "hello"},
            "nothing",
        ],
    }
    model = parse_transcript(document, LABELS, 2)
    assert model.channels[0].words == (Word("hi", 0.1, 0.4, 0.0),)
    assert model.notes == (
        "1 word had no usable confidence and scored 0",
        "skipped 2 malformed items that could not be read",
        "skipped 2 channels with an unreadable channel label or tag",
    )


# Turns and the dialogue ------------------------------------------------------------------------------


def test_a_pause_longer_than_the_limit_starts_a_new_turn() -> None:
    model = parse_transcript(offline([("yes", 0.0, 0.5), ("right", 0.6, 1.0), ("okay", 3.0, 3.4)]), LABELS, 1)
    turns = build_turns(model)
    assert [(turn.start, turn.end, turn.text) for turn in turns] == [(0.0, 1.0, "Yes right."), (3.0, 3.4, "Okay.")]
    assert [turn.text for turn in build_turns(model, pause=2.5)] == ["Yes right okay."]
    # Exactly the limit is not longer than it.
    assert [turn.text for turn in build_turns(model, pause=2.0)] == ["Yes right okay."]


def test_a_change_of_speaker_starts_a_new_turn() -> None:
    model = parse_transcript(offline([("yes", 0.0, 0.5), ("right", 1.0, 1.3)], [("no", 0.6, 0.9)]), LABELS, 2)
    assert [(turn.label, turn.text) for turn in build_turns(model)] == [
        ("Caller", "Yes."),
        ("Agent", "No."),
        ("Caller", "Right."),
    ]


def test_words_starting_together_go_lower_channel_first() -> None:
    model = parse_transcript(offline([("yes", 1.0, 1.5)], [("no", 1.0, 1.5)]), LABELS, 2)
    assert format_dialogue(build_turns(model)) == "[00:01.0] Caller: Yes.\n[00:01.0] Agent:  No."


@pytest.mark.parametrize(
    ("seconds", "stamp"),
    [(0.5, "00:00.5"), (65.04, "01:05.0"), (59.96, "01:00.0"), (4500, "75:00.0"), (0.0, "00:00.0"), (0.25, "00:00.3")],
)
def test_dialogue_timestamps(seconds: float, stamp: str) -> None:
    assert format_dialogue([Turn(0, "Caller", seconds, seconds + 1, "Hi.")]) == f"[{stamp}] Caller: Hi."


def test_an_empty_dialogue_is_empty() -> None:
    assert format_dialogue([]) == ""


# WebVTT and JSON ------------------------------------------------------------------------------------


def test_webvtt_of_a_short_call() -> None:
    turns = [Turn(0, "Caller", 0.5, 1.25, "Hello, thanks."), Turn(1, "Agent", 2.0, 2.0, "Hi.")]
    assert format_webvtt(turns) == (
        "WEBVTT\n\n"
        "00:00:00.500 --> 00:00:01.250\n<v Caller>Hello, thanks.\n\n"
        "00:00:02.000 --> 00:00:02.500\n<v Agent>Hi.\n\n"
    )


def test_webvtt_escapes_text_and_labels() -> None:
    turns = [Turn(0, "R&D <ops>", 3661.0, 3662.0, "Is a < b & c > d?")]
    assert (
        format_webvtt(turns)
        == "WEBVTT\n\n01:01:01.000 --> 01:01:02.000\n<v R&amp;D &lt;ops&gt;>Is a &lt; b &amp; c &gt; d?\n\n"
    )


def test_a_cue_that_would_not_end_after_its_start_gets_half_a_second() -> None:
    turns = [Turn(0, "Caller", 1.0001, 1.0004, "Hm."), Turn(1, "Agent", 2.0, 1.5, "Yes.")]
    assert format_webvtt(turns) == (
        "WEBVTT\n\n00:00:01.000 --> 00:00:01.500\n<v Caller>Hm.\n\n00:00:02.000 --> 00:00:02.500\n<v Agent>Yes.\n\n"
    )


def test_a_long_turn_made_by_hand_is_cut_in_proportion_to_its_text() -> None:
    turns = [Turn(0, "Caller", 0.0, 9.0, "First part. Second.")]
    assert format_webvtt(turns) == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:05.211\n<v Caller>First part.\n\n"
        "00:00:05.684 --> 00:00:09.000\n<v Caller>Second.\n\n"
    )


def test_a_long_turn_becomes_cues_timed_by_its_words() -> None:
    numbers = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
    words = [(word, i * 0.5, i * 0.5 + 0.45) for i, word in enumerate(numbers.split())]
    turns = build_turns(parse_transcript(offline(words), LABELS, 1))
    assert len(turns) == 1
    assert format_webvtt(turns) == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:06.950\n"
        "<v Caller>One two three four five six seven eight nine ten eleven twelve thirteen fourteen\n\n"
        "00:00:07.000 --> 00:00:07.950\n<v Caller>fifteen sixteen.\n\n"
    )


def test_a_wordy_turn_is_cut_before_ninety_characters() -> None:
    words = [(f"extraordinarily{i}", i * 0.2, i * 0.2 + 0.2) for i in range(8)]
    cues = format_webvtt(build_turns(parse_transcript(offline(words), LABELS, 1)))
    assert cues == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:01.000\n"
        "<v Caller>Extraordinarily0 extraordinarily1 extraordinarily2 extraordinarily3 extraordinarily4\n\n"
        "00:00:01.000 --> 00:00:01.600\n<v Caller>extraordinarily5 extraordinarily6 extraordinarily7.\n\n"
    )


def test_the_transcript_document_is_plain_json_data() -> None:
    model = parse_transcript(offline([("hello", 0.5, 0.9)], []), LABELS, 2)
    assert transcript_document(model, build_turns(model)) == {
        "engine": "pocketsphinx",
        "notes": [],
        "channels": [
            {
                "channel": 0,
                "label": "Caller",
                "text": "hello",
                "words": [{"word": "hello", "start": 0.5, "end": 0.9, "confidence": 0.9}],
            },
            {"channel": 1, "label": "Agent", "text": "", "words": []},
        ],
        "turns": [{"channel": 0, "label": "Caller", "start": 0.5, "end": 0.9, "text": "Hello."}],
        "dialogue": "[00:00.5] Caller: Hello.",
    }


def test_channel_text_of_a_model_made_by_hand() -> None:
    model = TranscriptModel("aws", (Channel(0, "Caller", (Word("Hi.", 0.0, 0.2, 1.0),)), Channel(1, "Agent", ())), ())
    assert format_channel_text(model) == "Caller:\nHi.\n\nAgent:\n(nothing recognised)"


# The real offline engine on the fixture conversation -------------------------------------------------


@pytest.fixture(scope="module")
def offline_call(tmp_path_factory: pytest.TempPathFactory) -> TranscriptModel:
    """tests/data/conversation_stereo.wav as pocketsphinx hears it (decoding takes a few seconds)."""
    store = LocalBlobStore(tmp_path_factory.mktemp("store"))
    key = "calls/CON-transcripts/conversation.wav"
    store.write(key, (DATA / "conversation_stereo.wav").read_bytes())
    transcript = PocketsphinxTranscriber(store).start(TranscriptionJob("t", key, "wav", "en-US", channels=2))
    assert transcript.status == "completed" and transcript.document is not None
    return parse_transcript(transcript.document, LABELS, 2)


def plain_words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


@pytest.mark.slow  # decodes real speech: seconds
def test_the_real_offline_call_reads_as_four_turns(offline_call: TranscriptModel) -> None:
    turns = build_turns(offline_call)
    assert offline_call.notes == ()
    assert [turn.channel for turn in turns] == [0, 1, 0, 1]
    assert [turn.label for turn in turns] == ["Caller", "Agent", "Caller", "Agent"]
    for turn, (start, _, said) in zip(turns, SCRIPT, strict=True):
        assert turn.start == pytest.approx(start, abs=0.5)
        script = Counter(plain_words(said))
        heard = Counter(plain_words(turn.text))
        overlap = sum((script & heard).values()) / sum(script.values())
        assert overlap >= 0.7, (turn.text, said)
        assert turn.text[0].isupper() and turn.text.endswith(".")


def test_the_real_offline_call_renders_every_turn(offline_call: TranscriptModel) -> None:
    turns = build_turns(offline_call)
    lines = format_dialogue(turns).splitlines()
    assert [re.sub(r"^\[\d\d:\d\d\.\d\] ", "", line)[:8] for line in lines] == ["Caller: ", "Agent:  "] * 2
    assert lines[2].endswith("] Caller: It is twenty two baker street in london.")
    assert format_webvtt(turns).count(" --> ") == 4
