"""What Vonage accepts, as tapedeck declares it (shared/core/vonage_limits.py), held against the
vonage v4 SDK."""

from __future__ import annotations

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


def test_the_text_to_speech_languages_are_the_sdk_s_and_each_has_the_default_style() -> None:
    assert set(TTS_LANGUAGES) == {code.value for code in TtsLanguageCode}
    assert len(TTS_LANGUAGES) == len(TtsLanguageCode)
    for language, styles in TTS_STYLES.items():
        assert styles[0] == 0 and list(styles) == sorted(set(styles)), language


def test_styles_are_those_of_the_language() -> None:
    assert check_style("en-US", 23) is None and check_style("cy-GB", 0) is None
    assert check_style("en-GB", 8) == "8 is not a voice style of en-GB (its styles: 0-7, 9)"
    assert check_style("cy-GB", 1) == "1 is not a voice style of cy-GB (its styles: 0)"


def test_a_well_formed_tag_vonage_does_not_speak_is_refused() -> None:
    assert check_language("en-GB-WLS") is None
    fault = check_language("bg-BG")
    assert fault is not None and fault.startswith("'bg-BG' is not one of Vonage's text-to-speech languages (ar, ")


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
