"""Vonage as the engine, end to end: the functions under gunicorn, the stand-in recording the
caller, then transcribing as Vonage does (a signed transcription webhook, the transcript file
behind the application's JWT), and the page in the outbox from Vonage's words."""

from __future__ import annotations

import pytest

from tests.deck import OWNERS, DeckFactory, signed_post, voicemail_routes
from tests.testbed import DATA

pytestmark = pytest.mark.slow

MAILBOX = "447700900005"
ROUTES = voicemail_routes(MAILBOX, OWNERS, language="en-US", engine="vonage")
# The stand-in serves this file, not what the offline engine hears: its words (mixed case,
# punctuated) can come from nowhere but Vonage's transcript.
TRANSCRIPT = DATA / "vonage_transcript_voicemail.json"


def test_a_voicemail_vonage_transcribes_pages_each_owner_once_with_vonages_words(deck_factory: DeckFactory) -> None:
    deck = deck_factory()
    deck.standin.transcript = TRANSCRIPT.read_bytes()
    deck.standin.webhook_copies = 3  # Vonage's retries deliver both webhooks again
    report = deck.call(DATA / "voicemail_outage.wav", dtmf=[])
    (record,) = (action for action in report.ncco if action["action"] == "record")
    assert record["transcription"] == {"language": "en-US", "eventUrl": record["eventUrl"], "eventMethod": "POST"}
    assert report.event_statuses["record"] == 204
    assert report.event_statuses["transcription"] == 204
    pages = deck.pages(report.recording_uuid, len(OWNERS))
    assert sorted(p["to"] for p in pages) == OWNERS
    head, message, _ = pages[0]["text"].split("\n\n")
    assert head == "[From: +447700900123]"
    assert message == "HI SAM, THE PRODUCTION DATABASE IS DOWN. PLEASE CALL ME BACK."  # pages are in capitals
    folder = f"calls/{report.conversation_uuid}"
    document = deck.read_json(f"{folder}/transcript.json")
    assert document["channels"][0]["transcript"][1]["sentence"] == "Please call me back."
    file_id = report.transcription_webhook["transcription_url"].rsplit("/", 1)[1]
    assert file_id in deck.api.downloads
    assert len(deck.wait_for(f"outbox/{report.recording_uuid}", len(OWNERS), 2)) == len(OWNERS)


def test_an_unreadable_transcript_pages_that_transcription_failed(deck_factory: DeckFactory) -> None:
    deck = deck_factory()
    deck.standin.transcript = b'{"ver": "1.0.0", "channels": "not a list"}'
    report = deck.call(DATA / "voicemail_outage.wav", dtmf=[])
    pages = deck.pages(report.recording_uuid, len(OWNERS))
    assert pages[0]["text"].split("\n\n")[1] == "TRANSCRIPTION FAILED"


def test_a_transcription_webhook_badly_signed_sealed_or_shaped_changes_nothing(deck_factory: DeckFactory) -> None:
    deck = deck_factory()
    deck.standin.transcript = TRANSCRIPT.read_bytes()
    deck.standin.webhook_copies = 0
    report = deck.call(DATA / "voicemail_outage.wav", dtmf=[])
    (record,) = (action for action in report.ncco if action["action"] == "record")
    url = record["eventUrl"][0]
    assert signed_post(url, report.recording_webhook).status_code == 204
    assert signed_post(url, report.transcription_webhook, secret="not-the-secret" * 3).status_code == 401
    assert signed_post(url.replace("sig=", "sig=0"), report.transcription_webhook).status_code in (400, 401, 403)
    assert signed_post(url, {**report.transcription_webhook, "recording_uuid": "../x"}).status_code == 400
    assert deck.store.list(f"outbox/{report.recording_uuid}") == []
    assert deck.read_json(f"jobs/tapedeck-vm-{report.recording_uuid}.json")["state"] == "transcribing"
    assert signed_post(url, report.transcription_webhook).status_code == 204
    assert len(deck.pages(report.recording_uuid, len(OWNERS))) == len(OWNERS)
