"""A route's vocabulary: phrases its callers say that the engines should expect (names, products,
jargon), held to the limits of every engine that takes them, and written as each one wants them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "BOOST",
    "MAX_PHRASES",
    "MAX_PHRASE_CHARS",
    "MAX_TOTAL_CHARS",
    "amazon_phrases",
    "check_phrase",
    "check_vocabulary",
    "vocabulary_name",
]

# Google Speech-to-Text v1 (speech adaptation): at most 100 characters a phrase. Of its count and
# total limits per request, the smaller ones Google published first (500 phrases, 10,000
# characters) are kept, so a route stays under both those and the later ones (5,000 and 100,000).
# Amazon Transcribe's are looser: 256 characters an entry, 50 KB a vocabulary.
MAX_PHRASES = 500
MAX_PHRASE_CHARS = 100
MAX_TOTAL_CHARS = 10_000
# How much more likely Google makes the phrases (v1 takes 0 to 20; higher gives more false hits).
BOOST = 10.0
# Amazon's character sets allow letters, apostrophes, hyphens and periods (for acronyms), and
# no digits: numbers are spelled out. Spaces separate words; a list vocabulary hyphenates them.
_MARKS = frozenset("'-. ")


def check_phrase(phrase: str, language: str) -> str | None:
    """Why Amazon Transcribe would refuse `phrase` in a vocabulary for `language`, or None. An
    English vocabulary takes a-z and A-Z only; other languages' letters are not checked one by one."""
    if not phrase:
        return "a phrase must not be empty"
    if len(phrase) > MAX_PHRASE_CHARS:
        return f"{phrase[:20]!r}... is longer than {MAX_PHRASE_CHARS} characters"
    english = language.lower().startswith("en")
    for char in phrase:
        if char not in _MARKS and not (char.isalpha() and (char.isascii() or not english)):
            letters = "letters a-z" if english else "letters"
            return (
                f"{phrase!r} has {char!r}: a phrase takes {letters}, apostrophes, hyphens, periods "
                "and spaces (numbers spelled out)"
            )
    return None


def check_vocabulary(phrases: Sequence[str]) -> str | None:
    """Why a whole vocabulary is too large for an engine, or None."""
    if len(phrases) > MAX_PHRASES:
        return f"{len(phrases)} phrases: at most {MAX_PHRASES}"
    total = sum(len(phrase) for phrase in phrases)
    if total > MAX_TOTAL_CHARS:
        return f"{total} characters in all: at most {MAX_TOTAL_CHARS}"
    return None


def amazon_phrases(phrases: Sequence[str]) -> list[str]:
    """The phrases as entries of Amazon's list vocabulary: the words of each joined by hyphens."""
    return ["-".join(phrase.split()) for phrase in phrases]


def vocabulary_name(prefix: str, language: str, phrases: Sequence[str]) -> str:
    """The name of the engine's vocabulary for these phrases in `language`: the same phrases always
    give the same name, and changed ones a new vocabulary."""
    digest = hashlib.sha256("\n".join((language, *sorted(phrases))).encode()).hexdigest()[:20]
    return f"{prefix}vocab-{digest}"
