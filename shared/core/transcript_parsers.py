"""Reading Amazon Transcribe, pocketsphinx, Google and Vonage output into one transcript model: pure, no I/O."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["VONAGE_TIME_UNITS", "Channel", "TranscriptModel", "Word", "is_vonage_transcript", "parse_transcript"]

_AWS_CHANNEL = re.compile(r"ch_(\d+)")
# Vonage's transcript file gives word times as whole numbers; read as milliseconds (unconfirmed:
# no Vonage-authored description of the file was found).
VONAGE_TIME_UNITS = 1000.0
# What was skipped while reading a document: a sentence with "{}" for the counted noun, and the noun.
_SKIPS = {
    "untimed": ("skipped {} without usable start and end times", "word"),
    "malformed": ("skipped {} that could not be read", "malformed item"),
    "channel": ("skipped {} with an unreadable channel label or tag", "channel"),
    "orphan": ("dropped {} with no preceding word to attach to", "punctuation mark"),
    "no_timings": ("skipped {} with text but no word timings", "result"),
    "confidence": ("{} had no usable confidence and scored 0", "word"),
}


@dataclass(frozen=True)
class Word:
    text: str  # with attached punctuation, e.g. "Hello,"
    start: float  # seconds from the start of the recording
    end: float
    confidence: float  # 0..1

    def to_json(self) -> dict[str, object]:
        """As plain data, the shape the pocketsphinx reader takes back: word, start, end, confidence."""
        return {"word": self.text, "start": self.start, "end": self.end, "confidence": self.confidence}


@dataclass(frozen=True)
class Channel:
    index: int  # 0-based
    label: str  # e.g. "Caller"
    words: tuple[Word, ...]  # time-ordered


@dataclass(frozen=True)
class TranscriptModel:
    """What an engine heard, per channel, whichever engine it was."""

    engine: str  # "aws" | "pocketsphinx" | "google" | "vonage" | "unknown"
    channels: tuple[Channel, ...]  # sorted by index; every expected channel, even if empty
    notes: tuple[str, ...]  # human-readable remarks about anything odd


class _Reading:
    """Words per channel, and what was odd, gathered while reading one document."""

    def __init__(self) -> None:
        self.words: dict[int, list[Word]] = {}
        self.found: set[int] = set()
        self.notes: list[str] = []
        self.skipped: Counter[str] = Counter()

    def declare(self, *channels: int) -> None:
        self.found.update(channels)
        for channel in channels:
            self.words.setdefault(channel, [])

    def add(self, channel: int, text: str, start: object, end: object, confidence: object) -> None:
        begin, finish, score = _number(start), _number(end), _number(confidence)
        if begin is None or finish is None or not 0 <= begin <= finish:
            self.skipped["untimed"] += 1
            return
        if score is None:
            self.skipped["confidence"] += 1
        self.declare(channel)
        self.words[channel].append(Word(text, begin, finish, min(1.0, max(0.0, score or 0.0))))

    def attach(self, channel: int | None, mark: str) -> None:
        """Glue punctuation to the channel's latest word, as the engine wrote it without a space."""
        words = self.words.get(channel) if channel is not None else None
        if not words:
            self.skipped["orphan"] += 1
            return
        words[-1] = replace(words[-1], text=words[-1].text + mark)


def _number(value: object) -> float | None:
    """A finite float from a number or a numeric string (Amazon writes times as strings)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _index(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _words_text(value: object) -> str | None:
    """Text with its whitespace collapsed, or None when there is no text."""
    return (" ".join(value.split()) or None) if isinstance(value, str) else None


def _aws_channel(value: object) -> int | None:
    match = _AWS_CHANNEL.fullmatch(value) if isinstance(value, str) else None
    return int(match.group(1)) if match else None


def _read_aws_items(items: object, into: _Reading, fixed: int | None) -> None:
    """Amazon items: `fixed` is the channel of a channel_labels entry, None for top-level items."""
    if not isinstance(items, list):
        if items is not None:
            into.skipped["malformed"] += 1
        return
    previous = fixed  # top-level punctuation carries no channel_label: it follows the word before it
    for item in items:
        alternatives = item.get("alternatives") if isinstance(item, Mapping) else None
        best = alternatives[0] if isinstance(alternatives, list) and alternatives else None
        if not isinstance(item, Mapping) or not isinstance(best, Mapping):
            into.skipped["malformed"] += 1
            continue
        content, kind = _words_text(best.get("content")), item.get("type")
        if content is None or kind not in ("pronunciation", "punctuation"):
            into.skipped["malformed"] += 1
            continue
        channel = fixed
        if channel is None and "channel_label" in item:
            channel = _aws_channel(item["channel_label"])
            if channel is None:
                into.skipped["channel"] += 1
                continue
        if kind == "punctuation":
            into.attach(channel if channel is not None else previous, content)
            continue
        channel = previous = 0 if channel is None else channel
        into.add(channel, content, item.get("start_time"), item.get("end_time"), best.get("confidence"))


def _read_aws(results: Mapping[str, Any], into: _Reading) -> None:
    layout = results.get("channel_labels")
    if isinstance(layout, Mapping) and isinstance(layout.get("channels"), list):
        count = _index(layout.get("number_of_channels"))
        into.declare(*range(count or 0))
        for entry in layout["channels"]:
            channel = _aws_channel(entry.get("channel_label")) if isinstance(entry, Mapping) else None
            if channel is None:
                into.skipped["channel"] += 1
                continue
            into.declare(channel)
            _read_aws_items(entry.get("items"), into, channel)
        return
    if layout is not None:
        into.notes.append("channel_labels could not be read, so the top-level items were used")
    _read_aws_items(results.get("items"), into, None)
    if not into.found:
        into.declare(0)  # a job without channel identification is one channel, even when silent


def _seconds(value: object, units: float) -> float | None:
    number = _number(value)
    return None if number is None else number / units


def _read_words(
    words: object, channel: int, into: _Reading, times: tuple[str, str] = ("start", "end"), units: float = 1.0
) -> None:
    """Words as plain data: {"word", "start", "end", "confidence"}, times in seconds (or under the
    keys `times`, in 1/`units` seconds)."""
    if not isinstance(words, list):
        if words is not None:
            into.skipped["malformed"] += 1
        return
    for word in words:
        text = _words_text(word.get("word")) if isinstance(word, Mapping) else None
        if text is None or not isinstance(word, Mapping):
            into.skipped["malformed"] += 1
            continue
        start, end = (_seconds(word.get(key), units) for key in times)
        into.add(channel, text, start, end, word.get("confidence"))


def _read_offline(document: Mapping[str, Any], into: _Reading) -> None:
    channels = document.get("channels")
    for entry in channels if isinstance(channels, list) else ():
        channel = _index(entry.get("channel")) if isinstance(entry, Mapping) else None
        if channel is None or not isinstance(entry, Mapping):
            into.skipped["channel"] += 1
            continue
        into.declare(channel)
        _read_words(entry.get("words"), channel, into)
    if not isinstance(channels, list):
        into.skipped["malformed"] += 1


def _read_google(document: Mapping[str, Any], into: _Reading) -> None:
    results = document.get("results")
    for result in results if isinstance(results, list) else ():
        if not isinstance(result, Mapping):
            into.skipped["malformed"] += 1
            continue
        # channel_tag counts from 1 per channel; 0 means the audio was recognised as one channel.
        tag = _index(result.get("channel_tag", 0))
        if tag is None:
            into.skipped["channel"] += 1
            continue
        channel = max(tag - 1, 0)
        into.declare(channel)
        words = result.get("words")
        if not words and _words_text(result.get("transcript")):
            into.skipped["no_timings"] += 1
            continue
        _read_words(words, channel, into)
    if not isinstance(results, list):
        into.skipped["malformed"] += 1


def _read_vonage(document: Mapping[str, Any], into: _Reading) -> None:
    """Vonage's transcript file: one entry per recorded channel, in order, each a list of sentences."""
    channels = document.get("channels")
    for channel, entry in enumerate(channels if isinstance(channels, list) else ()):
        into.declare(channel)
        sentences = entry.get("transcript") if isinstance(entry, Mapping) else None
        if not isinstance(sentences, list):
            into.skipped["channel"] += 1
            continue
        for sentence in sentences:
            if not isinstance(sentence, Mapping):
                into.skipped["malformed"] += 1
                continue
            words = sentence.get("words")
            if not words and _words_text(sentence.get("sentence")):
                into.skipped["no_timings"] += 1
                continue
            # A Vonage sentence's words: {"word", "start_time", "end_time", "confidence"}.
            _read_words(words, channel, into, ("start_time", "end_time"), VONAGE_TIME_UNITS)


def is_vonage_transcript(document: object) -> bool:
    """Whether a document has the shape of Vonage's transcript file (`ver`, `request_id`, `channels`)."""
    return (
        isinstance(document, Mapping)
        and "engine" not in document
        and isinstance(document.get("channels"), list)
        and ("ver" in document or "request_id" in document)
    )


def _label(labels: Sequence[str], index: int) -> str:
    return labels[index] if index < len(labels) else f"Channel {index}"


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def parse_transcript(document: Mapping[str, Any], labels: Sequence[str], expected_channels: int) -> TranscriptModel:
    """Amazon Transcribe, pocketsphinx, Google or Vonage output as one model; oddities become notes, never errors."""
    into = _Reading()
    results = document.get("results") if isinstance(document, Mapping) else None
    engine = document.get("engine") if isinstance(document, Mapping) else None
    if isinstance(results, Mapping):
        engine = "aws"
        _read_aws(results, into)
    elif is_vonage_transcript(document):
        engine = "vonage"
        _read_vonage(document, into)
    elif engine == "pocketsphinx":
        _read_offline(document, into)
    elif engine == "google":
        _read_google(document, into)
    else:
        named = f"engine {engine[:40]!r}" if isinstance(engine, str) else "neither Amazon results nor an engine"
        return TranscriptModel("unknown", (), (f"unrecognised transcript document ({named}); nothing was read",))
    channels = tuple(
        Channel(index, _label(labels, index), tuple(sorted(into.words.get(index, []), key=lambda w: (w.start, w.end))))
        for index in sorted(into.found | set(range(expected_channels)))
    )
    notes = list(into.notes)
    for key, count in into.skipped.items():
        sentence, noun = _SKIPS[key]
        notes.append(sentence.format(_counted(count, noun)))
    if len(into.found) < expected_channels:
        notes.append(f"expected {expected_channels} channels, the transcript has {len(into.found)}")
    if not any(channel.words for channel in channels):
        notes.append("no words were recognised")
    return TranscriptModel(engine, channels, tuple(notes))
