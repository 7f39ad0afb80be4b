"""Redaction of what callers say: card numbers, runs of digits, phone numbers and e-mail addresses,
written or spoken, found in a transcript's words and replaced by a marker. Pure, no I/O.

Words are what an engine heard, one token each ("four", "4111", "1111,", "john@example.com");
numbers are read across tokens, so "four one one one" and "4111 1111" are both runs of digits:
- `card`: 13 to 19 digits that pass the Luhn check (payment card numbers do; a run of digits of
  that length mostly does not), alone or within a longer run;
- `phone`: a run of 7 to 15 digits (E.164 numbers have at most 15, national ones at least 7);
- `digits`: any run of 4 or more digits (a PIN, an account or reference number);
- `email`: a written address, or a spoken one ("john dot smith at example dot com").
Spoken digits are zero to nine, "oh" and "nought" for zero, and "double"/"triple" before a digit.
A span replaces whole tokens, so no digit of it survives, and keeps the punctuation that ended it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from shared.core.transcript_parsers import Channel, TranscriptModel, Word

__all__ = [
    "CARD_DIGITS",
    "DIGITS_AT_LEAST",
    "PHONE_DIGITS",
    "REDACT_CHOICES",
    "Redact",
    "RedactedSpan",
    "Redaction",
    "find_redactions",
    "luhn_valid",
    "marker",
    "mask_words",
    "redact_model",
    "redact_text",
    "redact_tokens",
    "redact_words",
]


class Redact(StrEnum):
    CARD = "card"
    DIGITS = "digits"
    PHONE = "phone"
    EMAIL = "email"
    # Words the engine itself redacted (Amazon Transcribe writes them as "[PII]").
    PII = "pii"


# What a route may ask for; `pii` is only ever the engine's.
REDACT_CHOICES = (Redact.CARD, Redact.DIGITS, Redact.PHONE, Redact.EMAIL)
CARD_DIGITS = (13, 19)
PHONE_DIGITS = (7, 15)
_SEARCHED_ABOVE = 16
DIGITS_AT_LEAST = 4

_DIGIT_WORDS = {
    "zero": "0",
    "oh": "0",
    "nought": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_REPEATS = {"double": 2, "triple": 3}
# Written numbers are grouped with these; a token of digits and these is one piece of a number.
_NUMBER_MARKS = re.compile(r"[-+().,/]")
# Punctuation an engine attaches to the word before it.
_TRAILING = ".,;:!?"
_WRAPPING = "\"'()[]{}<>" + _TRAILING
_WRITTEN_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_EMAIL_JOINERS = {"dot", "underscore", "dash", "hyphen"}
_ENGINE_REDACTED = "[pii]"


def marker(kind: Redact) -> str:
    """What a span reads as once redacted: `[card]`, `[phone]`, `[digits]`, `[email]`, `[pii]`."""
    return f"[{kind}]"


@dataclass(frozen=True)
class Redaction:
    """Tokens `first` to `last` (exclusive) are one `kind` of thing to hide."""

    kind: Redact
    first: int
    last: int


@dataclass(frozen=True)
class RedactedSpan:
    """Seconds of a channel's audio where redacted words were said."""

    channel: int
    kind: Redact
    start: float
    end: float

    def to_json(self) -> dict[str, object]:
        return {"channel": self.channel, "kind": str(self.kind), "start": self.start, "end": self.end}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RedactedSpan:
        return cls(int(doc["channel"]), Redact(doc["kind"]), float(doc["start"]), float(doc["end"]))


def luhn_valid(digits: str) -> bool:
    """The Luhn check every payment card number passes."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return bool(digits) and total % 10 == 0


def _bare(token: str) -> str:
    return token.strip(_WRAPPING).lower()


def _written_digits(token: str) -> str | None:
    """The digits of a written number ("4111", "07700-900123", "+44"), in ASCII; None if not one."""
    core = _NUMBER_MARKS.sub("", token.strip(_WRAPPING))
    if not core or not all(char.isdecimal() for char in core):
        return None
    return "".join(str(unicodedata.decimal(char)) for char in core)


def _token_digits(tokens: Sequence[str]) -> list[str | None]:
    """Each token's digits, or None when it is not part of a number."""
    found: list[str | None] = []
    for index, token in enumerate(tokens):
        bare = _bare(token)
        spoken = _DIGIT_WORDS.get(bare)
        following = _DIGIT_WORDS.get(_bare(tokens[index + 1])) if index + 1 < len(tokens) else None
        if bare in _REPEATS and following is not None:
            found.append(following * (_REPEATS[bare] - 1))
        else:
            found.append(spoken if spoken is not None else _written_digits(token))
    return found


def _runs(digits: Sequence[str | None], taken: Collection[int]) -> Iterable[tuple[int, int]]:
    """Token ranges of consecutive number pieces, outside `taken`."""
    start = None
    for index, piece in enumerate([*digits, None]):
        inside = piece is not None and index not in taken
        if inside and start is None:
            start = index
        elif not inside and start is not None:
            yield start, index
            start = None


def _card_within(pieces: Sequence[str]) -> tuple[int, int] | None:
    """Token offsets covering every Luhn-valid stretch of a card's length that starts and ends at a
    token's edge: a stray digit heard next to a card can make a valid stretch of its own that
    overlaps the card, and leaving either end of the union would leave digits of the card."""
    ends = [0]
    for piece in pieces:
        ends.append(ends[-1] + len(piece))
    joined = "".join(pieces)
    low, high = CARD_DIGITS
    found: list[tuple[int, int]] = []
    for first in range(len(pieces)):
        for last in range(first + 1, len(pieces) + 1):
            size = ends[last] - ends[first]
            if size > high:
                break
            if size >= low and luhn_valid(joined[ends[first] : ends[last]]):
                found.append((first, last))
    if not found:
        return None
    # The first card, with every stretch that overlaps it.
    first, last = found[0]
    for begin, finish in found[1:]:
        if begin < last:
            last = max(last, finish)
    return first, last


def _whole_number(pieces: Sequence[str], at: int, kinds: Collection[Redact]) -> Redaction | None:
    """A run that is one thing to hide as a whole: a card, a phone number, or digits."""
    joined = "".join(pieces)
    size, kind = len(joined), None
    if Redact.CARD in kinds and CARD_DIGITS[0] <= size <= CARD_DIGITS[1] and luhn_valid(joined):
        kind = Redact.CARD
    elif Redact.PHONE in kinds and PHONE_DIGITS[0] <= size <= PHONE_DIGITS[1]:
        kind = Redact.PHONE
    elif Redact.DIGITS in kinds and size >= DIGITS_AT_LEAST:
        kind = Redact.DIGITS
    return Redaction(kind, at, at + len(pieces)) if kind is not None and pieces else None


def _number_spans(pieces: Sequence[str], at: int, kinds: Collection[Redact]) -> list[Redaction]:
    """What to hide in one run of number pieces starting at token `at`: the run as a whole, or
    each card within it and what lies between."""
    whole = _whole_number(pieces, at, kinds)
    if whole is not None or Redact.CARD not in kinds:
        return [whole] if whole is not None else []
    spans: list[Redaction] = []
    rest = 0
    # Only a run longer than most cards is searched for one within it (a stray digit heard before
    # it, a card read on into its expiry date or a phone number); a run of up to 16 digits is a
    # card as a whole or not at all, as most such runs hold a Luhn-valid stretch somewhere.
    while sum(len(piece) for piece in pieces[rest:]) > _SEARCHED_ABOVE:
        card = _card_within(pieces[rest:])
        if card is None:
            break
        first, last = card
        before = _whole_number(pieces[rest : rest + first], at + rest, kinds)
        spans += [before] if before is not None else []
        spans.append(Redaction(Redact.CARD, at + rest + first, at + rest + last))
        rest += last
    after = _whole_number(pieces[rest:], at + rest, kinds)
    return spans + ([after] if after is not None else [])


def _is_word(token: str) -> bool:
    bare = _bare(token)
    return bool(bare) and bare.replace(".", "").replace("_", "").replace("-", "").isalnum()


def _spoken_email(bares: Sequence[str], tokens: Sequence[str], at: int) -> Redaction | None:
    """A spoken address around the "at" (or "@") token `at`: word [dot word…] at word (dot word)+."""
    if at == 0 or not _is_word(tokens[at - 1]) or at + 1 >= len(tokens) or not _is_word(tokens[at + 1]):
        return None
    first = at - 1
    while first >= 2 and bares[first - 1] in _EMAIL_JOINERS and _is_word(tokens[first - 2]):
        first -= 2
    last, dotted = at + 2, "." in bares[at + 1].strip(".")
    while last + 1 < len(tokens) and bares[last] == "dot" and _is_word(tokens[last + 1]):
        last, dotted = last + 2, True
    return Redaction(Redact.EMAIL, first, last) if dotted else None


def _email_spans(tokens: Sequence[str]) -> list[Redaction]:
    bares = [_bare(token) for token in tokens]
    spans: list[Redaction] = []
    index = 0
    while index < len(tokens):
        found = None
        if _WRITTEN_EMAIL.search(tokens[index]):
            found = Redaction(Redact.EMAIL, index, index + 1)
        elif bares[index] in ("at", "@"):
            found = _spoken_email(bares, tokens, index)
        if found is not None and (not spans or found.first >= spans[-1].last):
            spans.append(found)
            index = found.last
        else:
            index += 1
    return spans


def _engine_spans(tokens: Sequence[str]) -> list[Redaction]:
    spans: list[Redaction] = []
    for index, token in enumerate(tokens):
        if token.strip(_TRAILING).lower() != _ENGINE_REDACTED:
            continue
        if spans and spans[-1].last == index:
            spans[-1] = replace(spans[-1], last=index + 1)
        else:
            spans.append(Redaction(Redact.PII, index, index + 1))
    return spans


def find_redactions(tokens: Sequence[str], kinds: Collection[Redact]) -> list[Redaction]:
    """The spans of `tokens` to hide, in order and apart; what the engine redacted always is."""
    spans = _engine_spans(tokens)
    if Redact.EMAIL in kinds:
        spans += _email_spans(tokens)
    taken = {index for span in spans for index in range(span.first, span.last)}
    if any(kind in kinds for kind in (Redact.CARD, Redact.PHONE, Redact.DIGITS)):
        digits = _token_digits(tokens)
        for start, end in _runs(digits, taken):
            pieces = [piece for piece in digits[start:end] if piece is not None]
            spans += _number_spans(pieces, start, kinds)
    return sorted(spans, key=lambda span: span.first)


def _closing(token: str) -> str:
    """The punctuation that ends a token, kept after its marker: "1111." → "."."""
    kept = len(token) - len(token.rstrip(_TRAILING))
    return token[len(token) - kept :] if kept else ""


def redact_tokens(tokens: Sequence[str], spans: Sequence[Redaction]) -> list[str]:
    """`tokens` with each span replaced by its marker."""
    out: list[str] = []
    at = 0
    for span in spans:
        out += tokens[at : span.first]
        out.append(marker(span.kind) + _closing(tokens[span.last - 1]))
        at = span.last
    return out + list(tokens[at:])


def redact_text(text: str, kinds: Collection[Redact]) -> str:
    """Plain text with what `kinds` name hidden; its whitespace becomes single spaces, line breaks kept."""
    lines = []
    for line in text.split("\n"):
        tokens = line.split()
        lines.append(" ".join(redact_tokens(tokens, find_redactions(tokens, kinds))))
    return "\n".join(lines)


def redact_words(
    words: Sequence[Word], kinds: Collection[Redact], channel: int = 0
) -> tuple[tuple[Word, ...], tuple[RedactedSpan, ...]]:
    """Timed words with each span made one word, its marker, timed from the span's first to last
    word; and the spans' times, for the audio."""
    tokens = [word.text for word in words]
    spans = find_redactions(tokens, kinds)
    texts = redact_tokens(tokens, spans)
    out: list[Word] = []
    timed: list[RedactedSpan] = []
    at = 0
    for span in spans:
        out += words[at : span.first]
        hidden = words[span.first : span.last]
        start, end = min(w.start for w in hidden), max(w.end for w in hidden)
        out.append(Word(texts[len(out)], start, end, min(w.confidence for w in hidden)))
        timed.append(RedactedSpan(channel, span.kind, start, end))
        at = span.last
    return tuple(out) + tuple(words[at:]), tuple(timed)


def redact_model(model: TranscriptModel, kinds: Collection[Redact]) -> tuple[TranscriptModel, tuple[RedactedSpan, ...]]:
    """Every channel's words redacted, and where in which channel's audio."""
    channels: list[Channel] = []
    spans: list[RedactedSpan] = []
    for channel in model.channels:
        words, timed = redact_words(channel.words, kinds, channel.index)
        channels.append(replace(channel, words=words))
        spans += timed
    return replace(model, channels=tuple(channels)), tuple(spans)


def mask_words(words: Sequence[Word], spans: Sequence[RedactedSpan], channel: int = 0) -> tuple[Word, ...]:
    """Words said within any of the channel's spans (found elsewhere: in the whole transcript, not
    just these words) replaced by the span's marker, once per span."""
    out: list[Word] = []
    last: RedactedSpan | None = None
    for word in words:
        span = next((s for s in spans if s.channel == channel and word.start < s.end and s.start < word.end), None)
        if span is None or word.text.startswith(marker(span.kind)):
            out.append(word)
        elif span is last and out:
            out[-1] = replace(out[-1], end=max(out[-1].end, word.end))
        else:
            out.append(Word(marker(span.kind), word.start, word.end, word.confidence))
        last = span
    return tuple(out)
