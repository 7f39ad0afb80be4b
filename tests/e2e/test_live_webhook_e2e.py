"""A stream's live_webhook end to end: the stand-in speaks a message to the recorder in real
time, and a receiver on loopback gets the live transcript's segments while the call goes on,
signed and in order, then the whole transcript once, after the call."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deck import DeckFactory, deck_fixture
from tests.servers import receiving
from tests.testbed import DATA
from tools.standin.receiver import CallbackReceiver

pytestmark = pytest.mark.slow

NUMBER = "447700900004"
SECRET = "live-webhook-secret"


@pytest.fixture
def receiver() -> Iterator[tuple[CallbackReceiver, str]]:
    with receiving(SECRET, "/live") as found:
        yield found


@pytest.fixture
def deck_factory(tmp_path: Path, receiver: tuple[CallbackReceiver, str]) -> Iterator[DeckFactory]:
    routes = f'"{NUMBER}":\n  flow: stream\n  live_webhook: {receiver[1]}\n'
    yield from deck_fixture(tmp_path, routes, NUMBER)


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z ]", " ", text.lower()).split()


def test_live_segments_arrive_in_order_while_the_caller_speaks_then_the_transcript_once(
    deck_factory: DeckFactory, receiver: tuple[CallbackReceiver, str]
) -> None:
    deck = deck_factory(
        LIVE_TRANSCRIBER="pocketsphinx", CALLBACK_SECRET=SECRET, ALLOW_PRIVATE_CALLBACKS="true", CALLBACK_BACKOFF="0.05"
    )
    report = deck.call(DATA / "voicemail_outage.wav")
    hung_up = report.socket_closed_at
    assert hung_up is not None

    deliveries = receiver[0].wait(1, timeout=60)
    while not any(d.json["event"] == "transcript" for d in receiver[0].accepted()):
        deliveries = receiver[0].wait(len(deliveries) + 1, timeout=60)
    deliveries = receiver[0].accepted()
    assert all(d.signature_valid and d.method == "POST" and d.path == "/live" for d in deliveries)
    events = [d.json for d in deliveries]
    *live, last = events
    assert last["event"] == "transcript" and [e["event"] for e in events].count("transcript") == 1
    assert {e["event"] for e in live} == {"segment"}
    assert all(e["conversation_uuid"] == report.conversation_uuid for e in events)
    sequences = [e["sequence"] for e in live]
    assert sequences == sorted(set(sequences))
    # Heard while the caller was still speaking, not only after the hang-up.
    assert any(not e["final"] for e in live)
    assert min(d.at for d in deliveries[:-1]) < hung_up - 3

    finals = [e for e in live if e["final"]]
    starts = [e["start"] for e in finals]
    assert starts == sorted(starts)
    heard = [w["word"] for e in finals for w in e["words"]]
    transcript = last["transcript"]
    assert last["status"] == "completed" and last["session"] == live[0]["session"]
    assert [w["word"] for w in transcript["channels"][0]["words"]] == heard
    stored = deck.read_json(f"calls/{report.conversation_uuid}/transcript.json")
    assert stored["dialogue"] == transcript["dialogue"]
    said = words("our production database is down")
    assert sum(w in heard for w in said) >= 4, heard
    record = deck.read_json(f"calls/{report.conversation_uuid}/deliveries/live-{last['session']}.json")
    assert record["state"] == "delivered" and record["attempts"] == 1
