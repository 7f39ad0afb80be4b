"""Transcripts as dialogue, per-channel text, WebVTT subtitles and JSON: pure, no I/O.

The model and its parser live in shared.core.transcript_parsers; they are re-exported here so callers
need one import for reading and rendering a transcript.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.core.transcript_parsers import Channel, TranscriptModel, Word, parse_transcript

__all__ = [
    "NOTHING",
    "Channel",
    "TranscriptModel",
    "Turn",
    "Word",
    "build_turns",
    "format_channel_text",
    "format_dialogue",
    "format_webvtt",
    "parse_transcript",
    "transcript_document",
]

# Measured on tests/data/conversation_stereo.wav decoded by pocketsphinx: the longest silence inside one
# speaker's turn is 0.28 s (between "call" and "I"), the shortest between two turns of the same speaker
# 3.66 s. One second sits well between the two and is also a natural breath-length pause.
_DEFAULT_PAUSE = 1.0
# Subtitle guidance: a cue is read in a glance, so keep it to about two lines and a few seconds.
_CUE_SECONDS = 7.0
_CUE_CHARS = 90
# WebVTT wants every cue to end after it starts: a cue that would not gets this long on screen (ms).
_CUE_MINIMUM = 500
NOTHING = "(nothing recognised)"


@dataclass(frozen=True)
class Turn:
    """One speaker's stretch of speech; `words` keeps the timings behind `text`."""

    channel: int
    label: str
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()


def _turn(channel: Channel, words: Sequence[Word]) -> Turn:
    text = " ".join(word.text for word in words)
    text = text[:1].upper() + text[1:]
    if text[-1:].isalnum():
        text += "."  # offline engines give no punctuation: end each turn like a line of a script
    return Turn(channel.index, channel.label, words[0].start, words[-1].end, text, tuple(words))


def build_turns(model: TranscriptModel, pause: float = _DEFAULT_PAUSE) -> list[Turn]:
    """Every channel's words in time order, grouped into turns at a change of speaker or a longer pause."""
    spoken = sorted(
        ((word, channel) for channel in model.channels for word in channel.words),
        key=lambda pair: (pair[0].start, pair[1].index),
    )
    turns: list[Turn] = []
    current: list[Word] = []
    speaker: Channel | None = None
    for word, channel in spoken:
        if speaker is not None and (channel.index != speaker.index or word.start - current[-1].end > pause):
            turns.append(_turn(speaker, current))
            current = []
        speaker = channel
        current.append(word)
    if speaker is not None:
        turns.append(_turn(speaker, current))
    return turns


def _clock(seconds: float) -> str:
    """MM:SS.s from rounded tenths, so 59.96 s reads 01:00.0 and never 00:60.0."""
    tenths = math.floor(seconds * 10 + 0.5) if math.isfinite(seconds) and seconds > 0 else 0
    minutes, rest = divmod(tenths, 600)
    return f"{minutes:02d}:{rest // 10:02d}.{rest % 10}"


def format_dialogue(turns: Sequence[Turn]) -> str:
    """One line per turn, `[MM:SS.s] Label: text`, the texts aligned."""
    width = max((len(turn.label) + 1 for turn in turns), default=0) + 1
    return "\n".join(f"[{_clock(turn.start)}] {(turn.label + ':').ljust(width)}{turn.text}" for turn in turns)


def _channel_text(channel: Channel) -> str:
    return " ".join(word.text for word in channel.words)


def format_channel_text(model: TranscriptModel) -> str:
    """Each channel's label and everything said on it, blocks separated by a blank line."""
    return "\n\n".join(f"{channel.label}:\n{_channel_text(channel) or NOTHING}" for channel in model.channels)


def _millis(seconds: float) -> int:
    return math.floor(seconds * 1000 + 0.5) if math.isfinite(seconds) and seconds > 0 else 0


def _vtt_time(millis: int) -> str:
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def _vtt_escape(text: str) -> str:
    return " ".join(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").split())


def _timed_pieces(turn: Turn) -> list[tuple[str, float, float]]:
    """The turn's text cut at word boundaries, each piece with the times of the words it came from."""
    tokens = turn.text.split()
    sizes = [len(word.text.split()) for word in turn.words]
    if turn.words and sum(sizes) == len(tokens):
        pieces, at = [], 0
        for word, size in zip(turn.words, sizes, strict=True):
            pieces.append((" ".join(tokens[at : at + size]), word.start, word.end))
            at += size
        return pieces
    # A turn without its words (made by hand): spread its span evenly over the characters.
    span, total, at = turn.end - turn.start, max(len(turn.text), 1), 0
    timed = []
    for token in tokens:
        at = turn.text.index(token, at)
        timed.append((token, turn.start + span * at / total, turn.start + span * (at + len(token)) / total))
        at += len(token)
    return timed


def _cues(turn: Turn) -> list[tuple[float, float, str]]:
    """The turn as subtitle cues of at most _CUE_SECONDS and _CUE_CHARS, where the words allow."""
    chunks: list[list[tuple[str, float, float]]] = []
    for piece in _timed_pieces(turn):
        chunk = chunks[-1] if chunks else []
        length = sum(len(text) + 1 for text, _, _ in chunk) + len(piece[0])
        if chunk and piece[2] - chunk[0][1] <= _CUE_SECONDS and length <= _CUE_CHARS:
            chunk.append(piece)
        else:
            chunks.append([piece])
    return [(chunk[0][1], chunk[-1][2], " ".join(piece[0] for piece in chunk)) for chunk in chunks]


def format_webvtt(turns: Sequence[Turn]) -> str:
    """The turns as WebVTT subtitles with voice tags; long turns split into several cues."""
    cues = []
    for turn in turns:
        for first, last, text in _cues(turn):
            # Compared once rounded to milliseconds, as written, so 1.0001 --> 1.0004 cannot tie.
            start, end = _millis(first), _millis(last)
            end = end if end > start else start + _CUE_MINIMUM
            cues.append(
                f"{_vtt_time(start)} --> {_vtt_time(end)}\n<v {_vtt_escape(turn.label)}>{_vtt_escape(text)}\n\n"
            )
    return "WEBVTT\n\n" + "".join(cues)


def transcript_document(model: TranscriptModel, turns: Sequence[Turn]) -> dict[str, Any]:
    """The model and its turns as JSON-ready data, with the dialogue rendered."""
    return {
        "engine": model.engine,
        "notes": list(model.notes),
        "channels": [
            {
                "channel": channel.index,
                "label": channel.label,
                "text": _channel_text(channel),
                "words": [word.to_json() for word in channel.words],
            }
            for channel in model.channels
        ],
        "turns": [
            {"channel": turn.channel, "label": turn.label, "start": turn.start, "end": turn.end, "text": turn.text}
            for turn in turns
        ],
        "dialogue": format_dialogue(turns),
    }
