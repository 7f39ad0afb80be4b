"""A route's `redact` and `keep_unredacted`: what a routes file may say, and each fault named by
its line, as an operator reads it when the functions refuse to start."""

from __future__ import annotations

import pytest

from shared.config.routes import parse_routes
from shared.core.errors import ConfigError
from shared.core.redaction import Redact

MAILBOX = '"447700900001":\n  flow: voicemail\n  recipients: ["447700900111"]\n'


def test_a_route_redacts_the_kinds_it_names_once_each_and_keeps_the_words_as_heard_when_asked() -> None:
    routes = parse_routes(
        MAILBOX
        + "  redact: [phone, card, phone]\n  keep_unredacted: true\n"
        + '"447700900002":\n  flow: stream\n  redact: email\n'
        + '"447700900003":\n  flow: stream\n',
        "routes.yaml",
    )

    mailbox = routes.for_number("447700900001")
    assert (mailbox.redact, mailbox.keep_unredacted) == ((Redact.PHONE, Redact.CARD), True)
    # A single kind is a list of one.
    assert routes.for_number("447700900002").redact == (Redact.EMAIL,)
    # Nothing is redacted unless a route asks.
    plain = routes.for_number("447700900003")
    assert (plain.redact, plain.keep_unredacted) == ((), False)
    assert routes.for_number("447700900999").redact == ()


@pytest.mark.parametrize(
    ("fields", "line", "says"),
    [
        (
            "  redact: [card, ssn]\n",
            4,
            "route 447700900001, redact: must be some of card, digits, phone, email, not 'ssn'$",
        ),
        # What the engine redacts on its own is not a route's choice.
        ("  redact: pii\n", 4, "redact: must be some of card, digits, phone, email, not 'pii'"),
        ("  redact: [Card]\n", 4, "redact: must be some of .*, not 'Card'"),
        ("  redact: 16\n", 4, "redact: must be some of .*, not '16'"),
        ("  redact:\n", 4, "redact: must be some of .*, not ''"),
        # In a block list, the line of the kind at fault, not of the field.
        ("  redact:\n    - card\n    - phone\n    - passport\n", 7, "redact: .*not 'passport'"),
        ("  redact: [[card, phone]]\n", 4, "a kind must be a single value"),
        ("  redact: {card: true}\n", 4, "a kind must be a single value"),
    ],
)
def test_a_redact_that_is_not_a_list_of_kinds_names_its_line(fields: str, line: int, says: str) -> None:
    with pytest.raises(ConfigError, match=rf"^routes\.yaml, line {line}: .*{says}"):
        parse_routes(MAILBOX + fields, "routes.yaml")


@pytest.mark.parametrize(
    ("fields", "line", "says"),
    [
        # Without redact there is nothing unredacted to keep apart.
        ("  keep_unredacted: true\n", 4, "keep_unredacted: only a route that redacts can keep the unredacted words"),
        ("  redact: []\n  keep_unredacted: true\n", 5, "keep_unredacted: only a route that redacts"),
        ("  keep_unredacted: true\n  language: en-GB\n", 4, "keep_unredacted: only a route that redacts"),
        ("  redact: [card]\n  keep_unredacted: yes\n", 5, "keep_unredacted: must be true or false, not 'yes'"),
        ("  redact: [card]\n  keep_unredacted: 1\n", 5, "keep_unredacted: must be true or false, not '1'"),
        ("  redact: [card]\n  keep_unredacted:\n", 5, "keep_unredacted: must be true or false, not ''"),
        ("  redact: [card]\n  keep_unredacted: [true]\n", 5, "keep_unredacted must be a single value"),
    ],
)
def test_keep_unredacted_without_redact_or_not_a_boolean_names_its_line(fields: str, line: int, says: str) -> None:
    with pytest.raises(ConfigError, match=rf"^routes\.yaml, line {line}: .*{says}"):
        parse_routes(MAILBOX + fields, "routes.yaml")


def test_keep_unredacted_false_needs_no_redact() -> None:
    route = parse_routes(MAILBOX + "  keep_unredacted: false\n", "routes.yaml").for_number("447700900001")
    assert (route.redact, route.keep_unredacted) == ((), False)
