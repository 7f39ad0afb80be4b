"""A route's `redact` and `keep_unredacted`: what a routes file may say. The faults refused, each
named by its line, are in test_config_refusals."""

from __future__ import annotations

from shared.config.routes import parse_routes
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


def test_keep_unredacted_false_needs_no_redact() -> None:
    route = parse_routes(MAILBOX + "  keep_unredacted: false\n", "routes.yaml").for_number("447700900001")
    assert (route.redact, route.keep_unredacted) == ((), False)
