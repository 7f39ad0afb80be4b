"""Redaction on the live path, in-process on a local folder: a scripted socket streams a call, a
scripted live engine hears a card and a phone number read out, and what each reader gets carries
none of their digits: the live webhook's segments and transcript, live.jsonl, the transcript
files, the page, and the recording's silenced copy. A number a pause split across two segments
is found once the stream is over."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.config.routes import parse_routes
from shared.config.settings import Settings, StreamSettings
from shared.core.ports import LiveSegment
from shared.core.transcripts import Word
from shared.core.wav import parse_wav
from shared.flows.links import resolve_link
from shared.flows.streams import StreamContext, run_stream
from shared.flows.voicemail import page_live_message
from shared.runtime.live_webhook import WebhookLiveListener
from tests.fakes import FakeServices, ScriptedLiveTranscriber
from tests.flows.test_live_webhook import Receiver
from tests.flows.test_stream_handover import CALL, SPEECH, ScriptedSocket, Ticker
from tests.testbed import TOKEN_SECRET

STREAMED, MAILBOX, KEEPING = "447700900004", "447700900001", "447700900002"
OWNER = "447700900111"
HOOK = "https://crm.example.com/live"
ROUTES = f"""\
"{STREAMED}":
  flow: stream
  live_webhook: {HOOK}
  redact: [card, phone]
"{MAILBOX}":
  flow: voicemail
  capture: stream
  recipients: ["{OWNER}"]
  redact: [card, phone]
"{KEEPING}":
  flow: voicemail
  capture: stream
  recipients: ["{OWNER}"]
  redact: [card, phone]
  keep_unredacted: true
"""
CARD, PHONE = "4539148803436467", "07700900456"
SPOKEN = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# Each word said in STEP seconds.
STEP = 0.3
RATE = 16000


def spoken(number: str) -> list[str]:
    return [SPOKEN[int(digit)] for digit in number]


def segment(said: list[str], at: float, final: bool = True) -> LiveSegment:
    """`said` heard from `at` seconds on, a word every STEP seconds."""
    words = tuple(
        Word(text, round(at + i * STEP, 2), round(at + i * STEP + 0.25, 2), 0.9) for i, text in enumerate(said)
    )
    return LiveSegment(final, " ".join(said), words[0].start, words[-1].end, words)


def heard_digits(text: str) -> list[str]:
    """Every digit in `text`, written or spoken, but for a dialogue's `[MM:SS.s]` times."""
    words = re.sub(r"\[[0-9]{2}:[0-9]{2}\.[0-9]\]", "", text).lower()
    return [token for token in re.findall(r"[a-z]+|[0-9]", words) if token in SPOKEN or token.isdigit()]


def said_in(events: list[dict[str, Any]]) -> str:
    """The words of segments or live.jsonl lines, as one text."""
    return " ".join([e["text"] for e in events] + [w["word"] for e in events for w in e.get("words", [])])


def document_text(document: dict[str, Any]) -> str:
    """Everything a transcript document says: its dialogue, turns, and each channel's words."""
    channels = document["channels"]
    texts = [document["dialogue"], *(t["text"] for t in document["turns"]), *(c["text"] for c in channels)]
    return " ".join(texts + [w["word"] for c in channels for w in c["words"]])


def cue_text(vtt: str) -> str:
    """A WebVTT file's words, without its timings."""
    return "\n".join(line for line in vtt.splitlines() if "-->" not in line)


def routes_settings() -> Settings:
    return Settings(
        public_url="https://fn.example.test",
        stream=StreamSettings(token_secret=TOKEN_SECRET),
        routes=parse_routes(ROUTES, "routes.yaml"),
    )


@pytest.fixture
def services(tmp_path: Path) -> FakeServices:
    return FakeServices.on(tmp_path, routes_settings())


def streamed(
    services: FakeServices, to: str, segments: list[LiveSegment], **kwargs: Any
) -> tuple[ScriptedSocket, StreamContext]:
    """A call to `to` streamed as long as its words last, and a second more, heard as `segments`."""
    seconds = max(s.end for s in segments) + 1.0
    ticker = Ticker()
    headers = {"to": to, "capture": "voicemail"} if to != STREAMED else {"to": to}
    socket = ScriptedSocket(services.store, ticker, [SPEECH] * round(seconds / 0.02), headers=headers)
    context = StreamContext(
        services.store,
        TOKEN_SECRET,
        256 * 1024,
        monotonic=ticker,
        # call.json is written as often as the stream changes it: nothing here waits.
        document_spacing=0.0,
        live=ScriptedLiveTranscriber(segments),
        routes=services.settings.routes,
        **kwargs,
    )
    run_stream(socket, context)
    return socket, context


def read(services: FakeServices, name: str) -> str:
    blob = services.store.read(f"calls/{CALL}/{name}")
    assert blob is not None, name
    return blob.data.decode()


def samples(services: FakeServices, name: str) -> np.ndarray:
    blob = services.store.read(f"calls/{CALL}/{name}")
    assert blob is not None, name
    return np.frombuffer(parse_wav(blob.data).pcm, "<i2")


def assert_silent_over(services: FakeServices, words: tuple[Word, ...]) -> None:
    """The redacted copy is silent from the first of `words` to the last, as the recording is not."""
    cut = slice(int(words[0].start * RATE), int(words[-1].end * RATE))
    assert np.abs(samples(services, "audio.wav")[cut]).max() > 1000
    assert np.abs(samples(services, "audio.redacted.wav")[cut]).max() == 0


# --- a stream with a live webhook -----------------------------------------------------------------

GREETING = segment(["hello", "this", "is", "alex"], 0.5)
CARD_SAID = segment(["my", "card", "is", *spoken(CARD)], 2.0)
# Heard before the card's final words: the utterance under way, its digits still coming.
CARD_SO_FAR = segment(["my", "card", "is", *spoken(CARD[:9])], 2.0, final=False)
PHONE_SAID = segment(["and", "my", "phone", "is", *spoken(PHONE), "thanks"], 8.0)


def test_a_stream_that_redacts_sends_and_stores_no_digit_of_a_card_or_phone_number(services: FakeServices) -> None:
    receiver, delivered = Receiver(), list[dict[str, Any]]()
    streamed(
        services,
        STREAMED,
        [GREETING, CARD_SO_FAR, CARD_SAID, PHONE_SAID],
        listen=lambda url: WebhookLiveListener(receiver),
        post_result=lambda call, name, url, event: delivered.append(dict(event)),
    )
    deadline = time.monotonic() + 5
    while not delivered and time.monotonic() < deadline:
        time.sleep(0.01)

    # The live webhook's segments, the interim one too, as the receiver got them.
    segments = [event for event, _ in receiver.posts]
    assert [(e["event"], e["final"]) for e in segments] == [
        ("segment", True),
        ("segment", False),
        ("segment", True),
        ("segment", True),
    ]
    assert [e["text"] for e in segments] == [
        "hello this is alex",
        "my card is [phone]",
        "my card is [card]",
        "and my phone is [phone] thanks",
    ]
    assert heard_digits(said_in(segments)) == []
    # live.jsonl, as the browser shows a call under way and the stitching reads it.
    lines = [json.loads(line) for line in read(services, "live.jsonl").splitlines()]
    assert [line["text"] for line in lines] == [
        "hello this is alex",
        "my card is [card]",
        "and my phone is [phone] thanks",
    ]
    assert heard_digits(said_in(lines)) == []

    # The whole transcript, to the webhook once and in the call's files.
    (event,) = delivered
    dialogue = "[00:00.5] Caller: Hello this is alex my card is [card] and my phone is [phone] thanks."
    assert event["event"] == "transcript" and event["transcript"]["dialogue"] == dialogue
    assert event["transcript"]["redacted"] == ["card", "phone"]
    stored = json.loads(read(services, "transcript.json"))
    assert stored["dialogue"] == dialogue
    assert heard_digits(document_text(stored)) == heard_digits(document_text(event["transcript"])) == []
    assert read(services, "transcript.txt") == dialogue + "\n"
    assert heard_digits(cue_text(read(services, "transcript.vtt"))) == []
    assert "[card]" in read(services, "transcript.vtt")
    # Nothing is kept as heard: the route does not ask for it.
    assert [blob.key for blob in services.store.list(f"calls/{CALL}/") if "unredacted" in blob.key] == []

    # The recording's copy is silent where the numbers were said, and only there.
    assert_silent_over(services, CARD_SAID.words[3:])
    assert_silent_over(services, PHONE_SAID.words[4:-1])
    hello = slice(int(GREETING.start * RATE), int(GREETING.end * RATE))
    assert np.abs(samples(services, "audio.redacted.wav")[hello]).max() > 1000


# --- a live voicemail -----------------------------------------------------------------------------

# A card read out with a pause after its first four digits: the engine makes two segments of it.
BEFORE_PAUSE = segment(["hi", "this", "is", "sam", "my", "card", "is", *spoken(CARD[:4])], 0.5)
AFTER_PAUSE = segment(spoken(CARD[4:]), 4.5)
CALL_BACK = segment(["please", "call", "me", "back"], 9.0)
SPLIT = [BEFORE_PAUSE, AFTER_PAUSE, CALL_BACK]


def paged(services: FakeServices, to: str, segments: list[LiveSegment]) -> tuple[str, str]:
    """A live voicemail to `to` heard as `segments`: the page's message, and what its link plays."""
    streamed(services, to, segments, on_message=lambda message: page_live_message(services, message, services.clock()))
    ((recipient, text),) = services.messenger.texts
    head, message, link = text.split("\n\n")
    assert recipient == OWNER and head == "[From: +447700900123]"
    link_id = link.rsplit("=", 1)[1]
    return message, resolve_link(services.store, link_id, services.clock())


def test_a_live_voicemail_pages_and_stores_a_card_split_by_a_pause_redacted_once(services: FakeServices) -> None:
    message, plays = paged(services, MAILBOX, SPLIT)

    assert message == "HI THIS IS SAM MY CARD IS [CARD] PLEASE CALL ME BACK"
    assert (
        read(services, "transcript.txt") == "[00:00.5] Caller: Hi this is sam my card is [card] please call me back.\n"
    )
    assert heard_digits(document_text(json.loads(read(services, "transcript.json")))) == []
    # live.jsonl is rewritten once the whole card is found: neither part is left.
    lines = [json.loads(line) for line in read(services, "live.jsonl").splitlines()]
    assert heard_digits(said_in(lines)) == []
    # The link plays the silenced copy, silent over both parts and the pause between.
    assert plays == f"calls/{CALL}/audio.redacted.wav"
    assert_silent_over(services, (*BEFORE_PAUSE.words[7:], *AFTER_PAUSE.words))
    assert [blob.key for blob in services.store.list(f"calls/{CALL}/") if "unredacted" in blob.key] == []


def test_a_live_voicemail_that_keeps_the_words_as_heard_keeps_them_apart(services: FakeServices) -> None:
    message, plays = paged(services, KEEPING, SPLIT)

    assert "[CARD]" in message and heard_digits(message) == []
    assert plays == f"calls/{CALL}/audio.redacted.wav"
    heard = read(services, "transcript.unredacted.txt")
    assert " ".join(spoken(CARD)) in heard
    assert heard_digits(read(services, "transcript.txt")) == []
    assert samples(services, "audio.wav").size > 0
