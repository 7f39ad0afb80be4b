"""What Vonage accepts in the NCCO actions tapedeck emits: ranges, lengths, numbers, languages
and their voice styles. Pure: each `check_*` returns why Vonage would refuse a value (a phrase
that reads after the value's name), or None.

Sources: Vonage's NCCO reference (2022) and its published NCCO JSON schema
(Nexmo/api-specification, json-schemas/ncco-schema.json), the text-to-speech guide's table of
supported languages (2022-06-30), and the models of vonage-voice 1.5.1 (`vonage_voice.models`).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from types import MappingProxyType

from shared.core.identifiers import E164, is_shaped

__all__ = [
    "CONNECT_LIMIT",
    "INPUT_DIGITS",
    "INPUT_SECONDS",
    "MP3_CHANNELS",
    "RECORD_CHANNELS",
    "RECORD_SECONDS",
    "RECORD_SILENCE",
    "TALK_LIMIT",
    "TTS_LANGUAGES",
    "TTS_STYLES",
    "WEBSOCKET_HEADERS_LIMIT",
    "WEBSOCKET_RATES",
    "check_language",
    "check_phone_number",
    "check_record_format",
    "check_style",
    "check_talk_text",
    "spoken_length",
    "websocket_headers_size",
]

# talk.text: at most 1,500 characters, SSML tags not counted.
TALK_LIMIT = 1500
# record.timeOut, in seconds.
RECORD_SECONDS = (3, 7200)
# record.endOnSilence, in seconds.
RECORD_SILENCE = (3, 10)
# record.channels: one per leg, legs beyond the last mixed into it.
RECORD_CHANNELS = (1, 32)
# An MP3 recording holds at most two channels; Vonage records WAV by default above that.
MP3_CHANNELS = 2
# connect.limit: the longest a connected leg may last, in seconds (also the default).
CONNECT_LIMIT = 7200
# input.dtmf.maxDigits and input.dtmf.timeOut (seconds).
INPUT_DIGITS = (1, 20)
INPUT_SECONDS = (0, 10)
# A websocket endpoint's headers: at most 512 bytes as JSON.
WEBSOCKET_HEADERS_LIMIT = 512
# The `audio/l16;rate=N` content types of a websocket endpoint.
WEBSOCKET_RATES = (8000, 16000, 24000)

# Vonage's text-to-speech languages, each with its voice styles (talk `style`, default 0).
# The codes are every language a Vonage-written list names: the text-to-speech guide's table of
# supported languages (2022-06-30), vonage-node-sdk's TTSLanguages (@vonage/voice 1.22.0, 2024)
# and vonage-voice 1.5.1's TtsLanguageCode (a test keeps that one's codes among these). Refusing
# a language one of them names would refuse a call Vonage takes. The styles are the guide's; a
# language it leaves out gets only the default style every language has.
TTS_STYLES: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {
        "af-ZA": (0,),
        "ar": tuple(range(8)),
        "bg-BG": (0,),
        "bn-IN": tuple(range(2)),
        "ca-ES": tuple(range(3)),
        "cmn-CN": tuple(range(6)),
        "cmn-TW": tuple(range(4)),
        "cs-CZ": tuple(range(3)),
        "cy-GB": (0,),
        "da-DK": tuple(range(6)),
        "de-AT": (0,),  # not in the 2022 guide's table: the default style only
        "de-DE": tuple(range(11)),
        "de-ET": (0,),  # not in the 2022 guide's table: the default style only
        "el-GR": tuple(range(3)),
        "en-AU": tuple(range(6)),
        "en-GB": (*range(8), 9),
        "en-GB-SCT": (0,),  # not in the 2022 guide's table: the default style only
        "en-GB-WLS": (0,),
        "en-IE": (0,),  # not in the 2022 guide's table: the default style only
        "en-IN": tuple(range(7)),
        "en-NZ": (0,),  # not in the 2022 guide's table: the default style only
        "en-US": tuple(range(24)),
        "en-ZA": (0,),
        "es-CO": (0,),  # not in the 2022 guide's table: the default style only
        "es-ES": tuple(range(9)),
        "es-MX": (0,),
        "es-US": tuple(range(6)),
        "eu-ES": (0,),
        "fi-FI": tuple(range(2)),
        "fil-PH": tuple(range(4)),
        "fr-CA": tuple(range(5)),
        "fr-FR": tuple(range(10)),
        "gl-ES": (0,),  # not in the 2022 guide's table: the default style only
        "gu-IN": tuple(range(2)),
        "he-IL": (0,),
        "hi-IN": tuple(range(6)),
        "hu-HU": tuple(range(2)),
        "id-ID": tuple(range(5)),
        "is-IS": tuple(range(3)),
        "it-IT": tuple(range(7)),
        "ja-JP": tuple(range(6)),
        "kn-IN": tuple(range(2)),
        "ko-KR": tuple(range(6)),
        "lv-LV": (0,),
        "ml-IN": tuple(range(2)),
        "ms-MY": tuple(range(4)),
        "nb-NO": tuple(range(8)),
        "nl-BE": (0, 2),
        "nl-NL": tuple(range(7)),
        "no-NO": (0,),  # not in the 2022 guide's table: the default style only
        "pa-IN": tuple(range(4)),
        "pl-PL": tuple(range(9)),
        "pt-BR": tuple(range(6)),
        "pt-PT": tuple(range(8)),
        "ro-RO": tuple(range(3)),
        "ru-RU": tuple(range(7)),
        "sk-SK": tuple(range(2)),
        "sr-RS": (0,),
        "sv-SE": tuple(range(4)),
        "ta-IN": tuple(range(2)),
        "te-IN": tuple(range(2)),
        "th-TH": tuple(range(2)),
        "tr-TR": tuple(range(8)),
        "uk-UA": (0,),
        "vi-VN": tuple(range(4)),
        "yue-CN": (0,),
        "yue-HK": tuple(range(4)),
    }
)
TTS_LANGUAGES = tuple(TTS_STYLES)


# An SSML tag, as the talk limit leaves it out of the count.
_TAG = re.compile(r"<[^>]*>")


def _is_ssml(text: str) -> bool:
    # Vonage reads a talk text as SSML only when it sits inside <speak>.
    return text.lstrip().startswith("<speak")


def _is_well_formed_ssml(text: str) -> bool:
    """Whether an SSML text is one well-formed <speak> element."""
    if "<!DOCTYPE" in text.upper():
        return False  # entities are declared there: SSML needs none
    try:
        root = ElementTree.fromstring(text.strip())
    except ElementTree.ParseError:
        return False
    return root.tag.rpartition("}")[2] == "speak"  # `{namespace}speak` when it names SSML's namespace


def spoken_length(text: str) -> int:
    """The characters Vonage counts against the talk limit: an SSML text's tags are not counted.
    An entity such as `&amp;` counts as written: whether Vonage counts it as one is not documented."""
    return len(_TAG.sub("", text)) if _is_ssml(text) else len(text)


def check_talk_text(text: str) -> str | None:
    """Why Vonage would refuse `text` as a talk action's text, or None."""
    if not text.strip():
        return "has nothing to say"
    if _is_ssml(text) and not _is_well_formed_ssml(text):
        return "starts with <speak> but is not one well-formed SSML <speak> element"
    length = spoken_length(text)
    if length > TALK_LIMIT:
        return f"is {length:,} characters, over Vonage's {TALK_LIMIT:,}-character talk limit (SSML tags not counted)"
    return None


def check_language(language: str) -> str | None:
    """Why Vonage would refuse `language` as a talk action's language, or None."""
    if language in TTS_STYLES:
        return None
    return f"{language!r} is not one of Vonage's text-to-speech languages ({', '.join(TTS_LANGUAGES)})"


def _spans(numbers: tuple[int, ...]) -> str:
    """`(0, 1, 2, 3, 9)` as `0-3, 9`."""
    spans: list[list[int]] = []
    for number in numbers:
        if spans and number == spans[-1][-1] + 1:
            spans[-1].append(number)
        else:
            spans.append([number])
    return ", ".join(f"{s[0]}-{s[-1]}" if len(s) > 1 else str(s[0]) for s in spans)


def check_style(language: str, style: int) -> str | None:
    """Why Vonage would refuse voice `style` for `language` (a language it speaks), or None."""
    styles = TTS_STYLES.get(language, (0,))
    if style in styles:
        return None
    return f"{style} is not a voice style of {language} (its styles: {_spans(styles)})"


def check_phone_number(number: str) -> str | None:
    """Why Vonage would refuse `number` as a phone endpoint or a `from`, or None."""
    if is_shaped(number, E164):
        return None
    return f"{number!r} is not an E.164 number: country code first, 7 to 15 digits, no leading 0"


def check_record_format(media_format: str, channels: int) -> str | None:
    """Why Vonage could not record `channels` channels in `media_format`, or None."""
    if media_format == "mp3" and channels > MP3_CHANNELS:
        return f"mp3 holds at most {MP3_CHANNELS} channels, and this records {channels}: use wav"
    return None


def websocket_headers_size(headers: Mapping[str, str]) -> int:
    """The bytes of a websocket endpoint's headers, as the JSON Vonage counts."""
    return len(json.dumps(headers, separators=(",", ":"), ensure_ascii=False).encode())
