"""A route's live_webhook: the events' shapes, the route's rules, and the sender that posts one
stream's events in order without ever holding the stream back. The receiver here is a function
the test controls (a poster), so slowness and failure are exact, not timed."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

import pytest

from shared.config.routes import parse_routes
from shared.config.settings import Settings
from shared.core.deliveries import DeliveryOutcome
from shared.core.errors import ConfigError
from shared.core.live_events import segment_event, transcript_event
from shared.core.ports import LiveSegment
from shared.core.transcript_parsers import Word
from shared.runtime.live_webhook import WebhookLiveListener
from tests.testbed import routes_env

CALL = "CON-2b4c4f2e-6a38-4b0a-9a52-0f5a7c2d6e11"
HOOK = "https://crm.example.com/live"


def words(*spoken: tuple[str, float]) -> tuple[Word, ...]:
    return tuple(Word(text, at, at + 0.3, 0.9) for text, at in spoken)


def test_a_segment_a_gap_and_the_transcript_as_the_receiver_gets_them() -> None:
    final = LiveSegment(True, "hello there", 0.5, 1.1, words(("hello", 0.5), ("there", 0.8)))
    assert segment_event(CALL, "a1b2c3d4e5f6", 3, final) == {
        "event": "segment",
        "conversation_uuid": CALL,
        "session": "a1b2c3d4e5f6",
        "offset": 0.0,
        "sequence": 3,
        "final": True,
        "start": 0.5,
        "end": 1.1,
        "text": "hello there",
        "words": [
            {"word": "hello", "start": 0.5, "end": 0.8, "confidence": 0.9},
            {"word": "there", "start": 0.8, "end": 1.1, "confidence": 0.9},
        ],
    }
    gap = segment_event(CALL, "a1b2c3d4e5f6", 4, LiveSegment(True, "", 2.0, 3.5, gap=True))
    assert gap == {
        "event": "gap",
        "conversation_uuid": CALL,
        "session": "a1b2c3d4e5f6",
        "offset": 0.0,
        "sequence": 4,
        "start": 2.0,
        "end": 3.5,
    }
    done = transcript_event(CALL, "a1b2c3d4e5f6", "447700900123", "447700900004", {"dialogue": "Caller: hello"})
    assert done["status"] == "completed" and done["transcript"] == {"dialogue": "Caller: hello"}
    unheard = transcript_event(CALL, "a1b2c3d4e5f6", "447700900123", "447700900004", None)
    assert (unheard["status"], unheard["transcript"]) == ("not transcribed", None)


ROUTES = f"""\
"447700900004":
  flow: stream
  live_webhook: {HOOK}
"447700900005":
  flow: voicemail
  capture: stream
  recipients: ["447700900111"]
  live_webhook: {HOOK}
"""


def test_a_stream_and_a_live_voicemail_may_name_a_live_webhook() -> None:
    routes = parse_routes(ROUTES, "routes.yaml")
    assert routes.for_number("447700900004").live_webhook == HOOK
    assert routes.for_number("+447700900005").live_webhook == HOOK
    assert routes.for_number("447700900006").live_webhook == ""


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ('  flow: voicemail\n  recipients: ["447700900111"]\n  live_webhook: https://a.example/\n', "only a stream"),
        ('  flow: conversation\n  connect: ["447700900200"]\n  live_webhook: https://a.example/\n', "only a stream"),
        ("  flow: stream\n  live_webhook: crm.example.com/live\n", "must be an https:// URL"),
    ],
)
def test_a_live_webhook_where_nothing_is_heard_live_or_not_a_url_is_refused(entry: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_routes(f'"447700900004":\n{entry}', "routes.yaml")


def test_a_live_webhook_needs_a_live_engine_and_on_cloud_storage_a_secret(tmp_path: Path) -> None:
    env = routes_env(tmp_path, ROUTES)
    with pytest.raises(ConfigError, match="447700900004 has a live_webhook, which needs LIVE_TRANSCRIBER"):
        Settings.from_env(env)
    gcs = env | {"LIVE_TRANSCRIBER": "pocketsphinx", "STORAGE": "gcs", "GCS_BUCKET": "b", "STREAM_TOKEN_SECRET": "s"}
    with pytest.raises(ConfigError, match=r"CALLBACK_SECRET .* is required for result, live and recording webhooks"):
        Settings.from_env(gcs)
    assert Settings.from_env(gcs | {"CALLBACK_SECRET": "c"}).routes.for_number("447700900004").live_webhook == HOOK


class Receiver:
    """A poster the test drives: each post waits for the test's go-ahead when `held`, and answers
    with the next of `answers` (delivered when they run out)."""

    def __init__(self, answers: list[DeliveryOutcome] | None = None, held: bool = False) -> None:
        self.answers = list(answers or [])
        self.posts: list[tuple[dict[str, object], int]] = []
        self.held = held
        self.go = threading.Semaphore(0)
        self.arrived = threading.Semaphore(0)

    def __call__(self, event: Mapping[str, object], attempt: int) -> DeliveryOutcome:
        self.posts.append((dict(event), attempt))
        self.arrived.release()
        if self.held:
            assert self.go.acquire(timeout=10), "the test never let this post finish"
        return self.answers.pop(0) if self.answers else DeliveryOutcome(True, attempt, 200)

    def sequences(self) -> list[int]:
        return [int(str(event["sequence"])) for event, _ in self.posts]


def event(sequence: int, final: bool = True) -> dict[str, object]:
    return {"event": "segment", "sequence": sequence, "final": final, "text": f"words {sequence}"}


def closed(listener: WebhookLiveListener) -> list[str]:
    """Close, wait for the sender, and say what `then` saw."""
    after: list[str] = []
    listener.close(lambda: after.append("transcript"))
    assert listener.join(10)
    return after


def test_events_go_out_in_order_and_the_transcript_only_after_the_last() -> None:
    receiver = Receiver()
    listener = WebhookLiveListener(receiver)
    for sequence in range(1, 21):
        listener.send(event(sequence, final=sequence % 2 == 0))

    assert closed(listener) == ["transcript"]
    sent = receiver.sequences()
    assert sent == sorted(sent) and sent[-1] == 20
    # Every final went out; an interim could only be skipped for a newer event.
    assert {s for s in range(2, 21, 2)} <= set(sent)


def test_a_slow_receiver_holds_nothing_back_and_interims_give_way_to_newer_words() -> None:
    receiver = Receiver(held=True)
    listener = WebhookLiveListener(receiver)
    listener.send(event(1))
    assert receiver.arrived.acquire(timeout=10)  # the receiver is now busy with event 1
    # Meanwhile the stream goes on: sending never waits.
    for sequence in range(2, 7):
        listener.send(event(sequence, final=False))
    listener.send(event(7))
    listener.send(event(8, final=False))
    for _ in range(10):
        receiver.go.release()

    assert closed(listener) == ["transcript"]
    # Interims 2-6 were superseded by final 7 before the receiver was free; interim 8 was last.
    assert receiver.sequences() == [1, 7, 8]


def test_a_final_is_retried_a_failed_interim_is_not_and_a_refused_url_is_not_retried() -> None:
    failure = DeliveryOutcome(False, 1, 503, "HTTP 503")
    refused = DeliveryOutcome(False, 1, error="not an https:// URL", permanent=True)
    delivered = DeliveryOutcome(True, 3, 200)
    receiver = Receiver([failure, failure, delivered, failure, refused])
    listener = WebhookLiveListener(receiver, retry_delays=(0.0, 0.0, 0.0))
    listener.send(event(1))  # fails twice, then goes through
    closed(listener)
    listener = WebhookLiveListener(receiver, retry_delays=(0.0, 0.0, 0.0))
    listener.send(event(2, final=False))  # fails, once
    assert receiver.arrived.acquire(timeout=10) and receiver.arrived.acquire(timeout=10)
    assert receiver.arrived.acquire(timeout=10) and receiver.arrived.acquire(timeout=10)
    listener.send(event(3))  # refused: no retry
    closed(listener)

    assert [(e["sequence"], attempt) for e, attempt in receiver.posts] == [(1, 1), (1, 2), (1, 3), (2, 1), (3, 1)]
    assert (listener.sent, listener.dropped) == (0, 2)  # this listener's: interim 2 and final 3


def test_after_the_stream_the_sender_gives_up_in_time_and_still_hands_on_the_transcript() -> None:
    receiver = Receiver([DeliveryOutcome(False, 1, 503, "HTTP 503")] * 100)
    listener = WebhookLiveListener(receiver, retry_delays=(5.0, 5.0, 5.0), drain_timeout=0.2)
    for sequence in range(1, 4):
        listener.send(event(sequence))

    assert closed(listener) == ["transcript"]
    assert listener.sent == 0 and listener.dropped == 3
    listener.send(event(4))  # after close: nothing more is taken
    assert 4 not in receiver.sequences()


def test_the_backlog_is_bounded_by_dropping_the_oldest() -> None:
    receiver = Receiver(held=True)
    listener = WebhookLiveListener(receiver, backlog=3)
    listener.send(event(1))
    assert receiver.arrived.acquire(timeout=10)
    for sequence in range(2, 8):
        listener.send(event(sequence))
    for _ in range(10):
        receiver.go.release()

    closed(listener)
    assert receiver.sequences() == [1, 5, 6, 7]
    assert listener.dropped == 3
