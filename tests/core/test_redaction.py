"""Redaction of what callers say: cards by their Luhn check, phone numbers, digit runs and e-mail
addresses, written or spoken, and the redacted copy of the audio."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.redacted_audio import PAD_SECONDS, redacted_wav
from shared.core.redaction import (
    Redact,
    RedactedSpan,
    luhn_valid,
    mask_words,
    redact_text,
    redact_words,
)
from shared.core.transcripts import Word
from shared.core.wav import parse_wav, wav_header

ALL = frozenset(Redact)
SPOKEN = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FILLER = ["my", "card", "is", "please", "call", "me", "back", "thanks", "the", "number", "ok", "à", "日本"]


def with_check_digit(body: str) -> str:
    """`body` and the digit that makes it Luhn-valid."""
    for digit in "0123456789":
        if luhn_valid(body + digit):
            return body + digit
    raise AssertionError("some digit always completes a Luhn number")


@pytest.mark.parametrize(
    ("text", "kinds", "expected"),
    [
        ("my card is 4111 1111 1111 1111, thanks", {Redact.CARD}, "my card is [card], thanks"),
        (
            "four one one one one one one one one one one one one one one one",
            {Redact.CARD},
            "[card]",
        ),
        # Not Luhn-valid: sixteen digits are not a card by their length.
        ("4111 1111 1111 1112", {Redact.CARD}, "4111 1111 1111 1112"),
        ("4111 1111 1111 1112", {Redact.CARD, Redact.DIGITS}, "[digits]"),
        ("call oh seven seven double oh nine oh oh one two three.", {Redact.PHONE}, "call [phone]."),
        ("+44 7700 900123 or 07700-900123", {Redact.PHONE}, "[phone] or [phone]"),
        ("the pin is 1234 and the room 12", {Redact.DIGITS}, "the pin is [digits] and the room 12"),
        ("mail john dot smith at example dot com now", {Redact.EMAIL}, "mail [email] now"),
        ("mail jo@example.co.uk now", {Redact.EMAIL}, "mail [email] now"),
        ("I am at home now", {Redact.EMAIL}, "I am at home now"),
        # A card then a phone number read on in one breath: the card by its check, the rest a phone.
        (
            "4111111111111111 07700900123",
            {Redact.CARD, Redact.PHONE},
            "[card] [phone]",
        ),
        # What Amazon Transcribe redacted itself is always hidden, and heard in the audio's spans.
        ("my name is [PII] [PII].", set(), "my name is [pii]."),
        ("nothing to hide here", ALL, "nothing to hide here"),
        ("", ALL, ""),
    ],
)
def test_what_each_kind_hides(text: str, kinds: set[Redact], expected: str) -> None:
    assert redact_text(text, kinds) == expected


def test_a_card_inside_a_longer_run_of_digits_is_found_by_its_check() -> None:
    card = "4539148803436467"
    assert luhn_valid(card)
    spoken = " ".join(SPOKEN[int(d)] for d in card)
    # "seven four five three … four six" passes the check too: the two overlap, and both are hidden.
    assert redact_text(f"the number seven {spoken} thanks", {Redact.CARD}) == "the number [card] thanks"


def test_timed_words_become_one_marker_word_and_a_span() -> None:
    words = [
        Word(text, i * 0.5, i * 0.5 + 0.4, 0.9)
        for i, text in enumerate(["call", "0", "7", "7", "0", "0", "9", "0", "0", "1", "2", "3", "now"])
    ]
    redacted, spans = redact_words(words, {Redact.PHONE})
    assert [w.text for w in redacted] == ["call", "[phone]", "now"]
    assert spans == (RedactedSpan(0, Redact.PHONE, 0.5, 5.9),)
    assert (redacted[1].start, redacted[1].end) == (0.5, 5.9)


def test_words_within_spans_found_elsewhere_are_masked() -> None:
    words = (Word("four", 1.0, 1.2, 1), Word("one", 1.3, 1.5, 1), Word("thanks", 2.0, 2.3, 1))
    masked = mask_words(words, [RedactedSpan(0, Redact.CARD, 0.2, 1.5)])
    assert [w.text for w in masked] == ["[card]", "thanks"]


def _spoken_or_written(draw: st.DrawFn, digits: str) -> list[str]:
    """The digits as tokens: each group spoken digit by digit or written, in any mix."""
    tokens, at = [], 0
    while at < len(digits):
        size = draw(st.integers(1, 5))
        group = digits[at : at + size]
        if draw(st.booleans()):
            tokens += [SPOKEN[int(d)] for d in group]
        else:
            tokens.append(group)
        at += size
    return tokens


@st.composite
def card_in_speech(draw: st.DrawFn) -> tuple[str, str]:
    length = draw(st.integers(13, 19))
    body = draw(st.text("0123456789", min_size=length - 1, max_size=length - 1))
    card = with_check_digit(body)
    before = draw(st.lists(st.sampled_from(FILLER), max_size=5))
    after = draw(st.lists(st.sampled_from(FILLER), max_size=5))
    return card, " ".join([*before, *_spoken_or_written(draw, card), *after])


@settings(max_examples=300, deadline=None)
@given(card_in_speech(), st.sampled_from([{Redact.CARD}, {Redact.CARD, Redact.PHONE}, set(ALL)]))
def test_any_luhn_valid_card_spoken_or_written_leaves_no_digit(found: tuple[str, str], kinds: set[Redact]) -> None:
    _, text = found
    redacted = redact_text(text, kinds)
    assert "[card]" in redacted
    assert not re.search(r"\d", redacted)
    assert not set(redacted.split()) & set(SPOKEN)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400), st.sets(st.sampled_from(list(Redact))))
def test_any_text_at_all_is_redacted_without_failing(text: str, kinds: set[Redact]) -> None:
    redacted = redact_text(text, kinds)
    assert isinstance(redacted, str)
    if Redact.DIGITS in kinds:
        # No run of four ASCII digits survives in a token of its own.
        assert not any(re.fullmatch(r"[0-9]{4,}", token) for token in redacted.split())


def test_huge_text_is_redacted_in_reasonable_time() -> None:
    text = ("please call me on 07700 900123 about card 4111 1111 1111 1111 日本 " * 3000).strip()
    redacted = redact_text(text, ALL)
    assert not re.search(r"\d", redacted)
    assert redacted.count("[card]") == 3000 and redacted.count("[phone]") == 3000


def test_the_redacted_copy_is_silent_over_each_span_and_untouched_elsewhere() -> None:
    rate = 8000
    tone = (np.sin(np.arange(rate * 3) * 2 * np.pi * 440 / rate) * 10000).astype("<i2")
    stereo = np.stack([tone, tone], axis=1).tobytes()
    original = wav_header(rate, len(stereo), 2) + stereo
    copy = parse_wav(redacted_wav(original, "wav", [RedactedSpan(1, Redact.CARD, 1.0, 1.5)]))
    samples = np.frombuffer(copy.pcm, "<i2").reshape(-1, 2)
    first, last = int((1.0 - PAD_SECONDS) * rate), int((1.5 + PAD_SECONDS) * rate)
    assert not samples[first:last, 1].any()
    assert np.array_equal(samples[:, 0], tone)
    assert np.array_equal(samples[: first - 1, 1], tone[: first - 1])
    assert np.array_equal(samples[last + 1 :, 1], tone[last + 1 :])
