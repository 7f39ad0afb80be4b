"""A route's `vocabulary`: the phrases a routes file may give, each fault named by its line, and
how the phrases are written for Amazon Transcribe's vocabulary."""

from __future__ import annotations

import pytest

from shared.config.routes import parse_routes
from shared.core.errors import ConfigError
from shared.core.vocabulary import amazon_phrases, vocabulary_name

MAILBOX = '"447700900001":\n  flow: voicemail\n  recipients: ["447700900111"]\n'


def test_a_route_keeps_its_phrases_in_order_once_each_with_single_spaces() -> None:
    routes = parse_routes(
        MAILBOX
        + '  vocabulary: [Tapedeck, Kubernetes, "Sam  O\'Neil", Tapedeck, A.W.S.]\n'
        + '"447700900002":\n  flow: stream\n  vocabulary: Vonage\n'
        + '"447700900003":\n  flow: conversation\n  connect: ["447700900222"]\n  language: de-DE\n'
        + "  vocabulary: [Müller, Straße]\n",
        "routes.yaml",
    )

    assert routes.for_number("447700900001").vocabulary == ("Tapedeck", "Kubernetes", "Sam O'Neil", "A.W.S.")
    assert routes.for_number("447700900002").vocabulary == ("Vonage",)
    # Outside English, a language's own letters.
    assert routes.for_number("447700900003").vocabulary == ("Müller", "Straße")
    assert routes.for_number("447700900999").vocabulary == ()


@pytest.mark.parametrize(
    ("fields", "line", "says"),
    [
        ("  vocabulary: [Tapedeck, K8s]\n", 4, "vocabulary: 'K8s' has '8': a phrase takes letters a-z, apostrophes"),
        ("  vocabulary:\n    - Tapedeck\n    - Müller\n", 6, "vocabulary: 'Müller' has 'ü'"),
        ('  vocabulary: ["tapedeck.io/docs"]\n', 4, "has '/'"),
        ('  vocabulary: [""]\n', 4, "a phrase must not be empty"),
        ("  vocabulary: [" + "a" * 101 + "]\n", 4, "longer than 100 characters"),
        ("  vocabulary: [[Tapedeck]]\n", 4, "a phrase must be a single value"),
        # Distinct phrases: one given twice counts once.
        (f"  vocabulary: [{', '.join(chr(97 + i // 26) + chr(97 + i % 26) for i in range(501))}]\n", 4, "501 phrases"),
        (
            f"  vocabulary: [{', '.join(chr(97 + i % 26) * 90 + chr(97 + i // 26 % 26) * 9 for i in range(120))}]\n",
            4,
            "vocabulary: 11880 characters in all: at most 10000$",
        ),
    ],
)
def test_a_vocabulary_an_engine_would_refuse_names_its_line(fields: str, line: int, says: str) -> None:
    with pytest.raises(ConfigError, match=rf"^routes\.yaml, line {line}: .*{says}"):
        parse_routes(MAILBOX + fields, "routes.yaml")


def test_amazon_gets_hyphenated_phrases_under_a_name_that_follows_the_phrases_and_language() -> None:
    assert amazon_phrases(["Sam O'Neil", "Kubernetes", "Los Angeles Lakers"]) == [
        "Sam-O'Neil",
        "Kubernetes",
        "Los-Angeles-Lakers",
    ]
    name = vocabulary_name("tapedeck-", "en-US", ["Tapedeck", "Kubernetes"])
    assert name.startswith("tapedeck-vocab-")
    assert name == vocabulary_name("tapedeck-", "en-US", ["Kubernetes", "Tapedeck"])
    assert name != vocabulary_name("tapedeck-", "en-GB", ["Tapedeck", "Kubernetes"])
    assert name != vocabulary_name("tapedeck-", "en-US", ["Tapedeck"])
