"""What Vonage accepts, as tapedeck declares it (shared/core/vonage_limits.py), held against the
vonage v4 SDK; and the NCCO checker of the tests (tests/ncco_models.py) catching what Vonage refuses."""

from __future__ import annotations

from typing import Any

import pytest
from vonage_voice.models.enums import TtsLanguageCode

from shared.core.vonage_limits import (
    TALK_LIMIT,
    TTS_LANGUAGES,
    TTS_STYLES,
    check_language,
    check_phone_number,
    check_record_format,
    check_style,
    check_talk_text,
    spoken_length,
)
from tests.ncco_models import ncco_faults


def test_the_text_to_speech_languages_hold_the_sdk_s_and_each_has_the_default_style() -> None:
    assert {code.value for code in TtsLanguageCode} <= set(TTS_LANGUAGES)
    # Named by Vonage's guide or its Node SDK, though not by the Python SDK.
    assert {"bg-BG", "en-NZ", "gu-IN", "yue-HK"} <= set(TTS_LANGUAGES)
    assert len(set(TTS_LANGUAGES)) == len(TTS_LANGUAGES)
    for language, styles in TTS_STYLES.items():
        assert styles[0] == 0 and list(styles) == sorted(set(styles)), language


def test_styles_are_those_of_the_language() -> None:
    assert check_style("en-US", 23) is None and check_style("cy-GB", 0) is None
    assert check_style("en-GB", 8) == "8 is not a voice style of en-GB (its styles: 0-7, 9)"
    assert check_style("cy-GB", 1) == "1 is not a voice style of cy-GB (its styles: 0)"


def test_a_well_formed_tag_vonage_does_not_speak_is_refused() -> None:
    assert check_language("en-GB-WLS") is None
    fault = check_language("fr-BE")
    assert fault is not None
    assert fault.startswith("'fr-BE' is not one of Vonage's text-to-speech languages (af-ZA, ar, ")


def test_talk_text_counts_what_is_spoken_not_ssml_tags() -> None:
    words = "a" * TALK_LIMIT
    assert check_talk_text(words) is None
    assert check_talk_text(words + "a") == (
        "is 1,501 characters, over Vonage's 1,500-character talk limit (SSML tags not counted)"
    )
    ssml = f'<speak><prosody rate="slow">{words}</prosody><break time="1s"/></speak>'
    assert spoken_length(ssml) == TALK_LIMIT and check_talk_text(ssml) is None
    # Outside <speak> a tag is text like any other.
    assert check_talk_text("<b>" + words) is not None
    assert check_talk_text("  \n") == "has nothing to say"
    broken = "starts with <speak> but is not one well-formed SSML <speak> element"
    assert check_talk_text("<speak>Tom & Jerry</speak>") == broken
    assert check_talk_text('<!DOCTYPE x [<!ENTITY a "aaaa">]><speak>&a;</speak>') is None  # not SSML: plain text
    assert check_talk_text('<speak><!DOCTYPE x [<!ENTITY a "aaaa">]>&a;</speak>') == broken
    # A deeply nested text is measured, not a crash.
    deep = "<speak>" + "<p>" * 5000 + "hi" + "</p>" * 5000 + "</speak>"
    assert spoken_length(deep) == 2


def test_numbers_and_formats() -> None:
    assert check_phone_number("447700900200") is None
    for number in ("12345", "0447700900200", "4477009002001234", "+447700900200"):
        assert check_phone_number(number) is not None, number
    assert check_record_format("mp3", 2) is None and check_record_format("wav", 32) is None
    assert check_record_format("mp3", 3) == "mp3 holds at most 2 channels, and this records 3: use wav"


URL = ["https://fn.example.test/event"]
TALK = {"action": "talk", "text": "Hello."}
WEBSOCKET = {"type": "websocket", "uri": "wss://rec.example.test/socket", "content-type": "audio/l16;rate=16000"}
PHONE_CONNECT = {"action": "connect", "endpoint": [{"type": "phone", "number": "447700900200"}], "from": "447700900002"}
INPUT = {"action": "input", "type": ["dtmf"], "dtmf": {"maxDigits": 4, "timeOut": 8}, "eventUrl": URL}
RECORD = {"action": "record", "split": "conversation", "channels": 2, "format": "mp3", "eventUrl": URL}


def test_every_kind_of_action_the_checker_knows_passes_when_good() -> None:
    ncco = [
        TALK,
        {"action": "stream", "streamUrl": ["https://fn.example.test/a.mp3"], "bargeIn": True},
        INPUT,
        {"action": "notify", "payload": {"step": 1}, "eventUrl": URL},
        RECORD,
        PHONE_CONNECT,
        {"action": "connect", "endpoint": [WEBSOCKET], "randomFromNumber": True, "eventUrl": URL},
        {"action": "conversation", "name": "room", "eventUrl": URL},
    ]
    assert ncco_faults(ncco) == []


@pytest.mark.parametrize(
    ("ncco", "fault"),
    [
        ([], "at least one action"),
        ([{"action": "hangup"}], "not one of"),
        ([TALK | {"voiceName": "Amy"}], "unknown or changed fields: ['voiceName']"),
        ([TALK | {"text": "x" * 1501}], "refused by vonage_voice.models.Talk"),
        ([TALK | {"text": "  "}], "blank"),
        ([TALK | {"language": "fr-BE"}], "not a text-to-speech language"),
        ([TALK | {"language": "en-GB", "style": 8}], "style 8 is not one of en-GB's"),
        ([TALK | {"bargeIn": True}], "bargeIn, but the next non-talk action is not an input"),
        ([TALK | {"bargeIn": True}, PHONE_CONNECT], "bargeIn"),
        ([PHONE_CONNECT | {"endpoint": [{"type": "phone", "number": "12345"}]}], "refused by"),
        ([PHONE_CONNECT | {"from": "0447700900"}], "refused by"),
        ([PHONE_CONNECT | {"endpoint": [{"type": "fax", "number": "447700900200"}]}], "refused by"),
        ([PHONE_CONNECT | {"endpoint": [{"type": "websocket", "number": "447700900200"}]}], "refused by"),
        ([PHONE_CONNECT | {"endpoint": [WEBSOCKET, WEBSOCKET]}], "exactly one endpoint"),
        ([PHONE_CONNECT | {"limit": 7201}], "refused by"),
        ([PHONE_CONNECT | {"eventUrl": "https://fn.example.test/event"}], "refused by"),
        ([PHONE_CONNECT | {"eventUrl": [*URL, *URL]}], "one URL"),
        ([PHONE_CONNECT | {"eventUrl": ["/event"]}], "not an http(s) URL"),
        ([PHONE_CONNECT | {"eventMethod": "PUT"}], "GET or POST"),
        (
            [{"action": "connect", "endpoint": [WEBSOCKET | {"headers": {"k": "v" * 600}}], "randomFromNumber": True}],
            "bytes",
        ),
        ([{"action": "connect", "endpoint": [WEBSOCKET | {"uri": "https://x/"}], "randomFromNumber": True}], "ws://"),
        ([RECORD | {"channels": 3}, PHONE_CONNECT], "mp3 holds at most 2 channels"),
        ([{k: v for k, v in RECORD.items() if k != "split"}, PHONE_CONNECT], "unknown or changed fields"),
        ([RECORD | {"timeOut": 7201}], "refused by"),
        ([RECORD | {"endOnSilence": 2}], "refused by"),
        ([RECORD], "background record with nothing after it"),
        ([INPUT | {"dtmf": {"maxDigits": 21}}], "refused by"),
        ([INPUT | {"dtmf": {"timeOut": 11}}], "refused by"),
        ([INPUT | {"type": ["speech"]}], "dtmf settings on an input that takes no dtmf"),
        ([INPUT | {"maxDigits": 4}], "unknown or changed fields"),
    ],
)
def test_the_checker_refuses_what_vonage_refuses(ncco: list[dict[str, Any]], fault: str) -> None:
    faults = ncco_faults(ncco)
    assert any(fault in found for found in faults), faults
