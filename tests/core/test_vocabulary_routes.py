"""A route's `vocabulary`: the phrases a routes file may give, and how the phrases are written for
Amazon Transcribe's vocabulary. The faults refused are in test_config_refusals."""

from __future__ import annotations

from shared.config.routes import parse_routes
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
