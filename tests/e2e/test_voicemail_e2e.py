"""Voicemail to pager, end to end: the functions under gunicorn, the Vonage stand-in recording
the caller and serving the file behind the application's JWT, offline recognition or Amazon
Transcribe on moto, and the page in the outbox."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
import requests

from shared.core.wav import parse_wav
from shared.runtime.web import API_KEY_HEADER
from tests.aws import REGION, aws_transcriber_env, job_state_change, started_job
from tests.aws import TRANSCRIBE_BUCKET as BUCKET
from tests.aws import TRANSCRIPTION_API_KEY as API_KEY
from tests.deck import MAILBOX, OWNERS, DeckFactory, signed_post, voicemail_routes
from tests.testbed import DATA

# Real servers or emulators on loopback, started by the tests.
pytestmark = pytest.mark.slow

ROUTES = voicemail_routes(MAILBOX, OWNERS, language="en-US")


def test_a_voicemail_becomes_one_page_per_owner_with_the_spoken_words(deck_factory: DeckFactory) -> None:
    deck = deck_factory()
    deck.standin.webhook_copies = 3  # Vonage's retries deliver the recording webhook again
    report = deck.call(DATA / "voicemail_outage.wav", dtmf=[])
    assert report.talks[0].startswith("You have reached Sam.")
    assert report.event_statuses["record"] == 204
    pages = deck.pages(report.recording_uuid, len(OWNERS))
    assert sorted(p["to"] for p in pages) == OWNERS
    text = pages[0]["text"]
    assert pages[1]["text"] == text
    head, message, link = text.split("\n\n")
    assert head == "[From: +447700900123]"
    for words in ("PRODUCTION DATABASE IS DOWN", "CALL ME BACK"):
        assert words in message
    assert message == message.upper()
    audio = requests.get(link, timeout=10)
    assert audio.status_code == 200
    assert audio.content == deck.api.recordings[report.recording_uuid]
    folder = f"calls/{report.conversation_uuid}"
    assert "production database" in deck.store.read(f"{folder}/transcript.txt").data.decode()  # type: ignore[union-attr]
    call = json.loads(deck.store.read(f"{folder}/call.json").data)  # type: ignore[union-attr]
    assert call["flow"] == "voicemail"
    assert call["voicemail"]["recording_uuid"] == report.recording_uuid
    assert deck.store.read(f"{folder}/message.wav").data == deck.api.recordings[report.recording_uuid]  # type: ignore[union-attr]


def test_ten_concurrent_deliveries_of_a_recording_webhook_download_and_page_once(deck_factory: DeckFactory) -> None:
    deck = deck_factory()
    deck.standin.webhook_copies = 0  # delivered below instead, ten copies at the same moment
    report = deck.call(DATA / "voicemail_outage.wav", dtmf=[])
    (record,) = (action for action in report.ncco if action["action"] == "record")
    start = threading.Barrier(10)

    def deliver(_: int) -> int:
        start.wait()
        return deck.standin.post_event(record["eventUrl"][0], report.recording_webhook)

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(deliver, range(10)))
    assert statuses == [204] * 10
    pages = deck.pages(report.recording_uuid, len(OWNERS))
    assert sorted(p["to"] for p in pages) == OWNERS
    assert deck.api.downloads == [report.recording_uuid]
    assert len(deck.store.list("links/")) == 1
    assert len(deck.store.list("jobs/")) == 1


def test_pressing_hash_ends_the_message(deck_factory: DeckFactory) -> None:
    from tools.standin import DtmfPress

    deck = deck_factory()
    report = deck.call(DATA / "voicemail_outage.wav", dtmf=[DtmfPress("#", 4.0)])
    assert report.recording_ended_by == "endOnKey"
    recorded = parse_wav(deck.api.recordings[report.recording_uuid])
    assert recorded.duration == pytest.approx(4.0, abs=0.02)
    (page, _) = deck.pages(report.recording_uuid, len(OWNERS))
    assert "CALL ME BACK" not in page["text"]


def test_silence_and_withheld_callers_still_page_the_owner(deck_factory: DeckFactory) -> None:
    deck = deck_factory()
    report = deck.call(DATA / "silence_2s.wav", from_="")
    pages = deck.pages(report.recording_uuid, len(OWNERS))
    head, message, link = pages[0]["text"].split("\n\n")
    assert (head, message) == ("[From: withheld]", "CALLER LEFT NO MESSAGE")
    assert link.startswith(deck.url + "/link?id=")
    assert deck.store.read(f"calls/{report.conversation_uuid}/transcript.txt") is None


def test_bad_recording_webhooks_get_a_4xx(deck_factory: DeckFactory) -> None:
    deck = deck_factory()
    ncco = deck.standin.fetch_ncco(
        f"{deck.url}/answer", {"conversation_uuid": "CON-1", "uuid": "u", "from": "447700900123", "to": MAILBOX}
    )
    url = ncco[1]["eventUrl"][0]
    good: dict[str, Any] = {
        "conversation_uuid": "CON-1",
        "recording_uuid": "r-1",
        "recording_url": "",
        "size": 0,
        "timestamp": "t",
    }
    assert signed_post(url, {k: v for k, v in good.items() if k != "recording_uuid"}).status_code == 400
    assert signed_post(url, good | {"conversation_uuid": "CON-2"}).status_code == 401
    assert signed_post(url.replace("447700900123", "447700900999"), good).status_code == 401
    assert signed_post(url, good, secret="forged").status_code == 401
    assert signed_post(url, good | {"recording_url": "https://evil.example.com/x", "size": 10}).status_code == 400
    response = requests.post(url, json=good, timeout=10)
    assert response.status_code == 503 and "error" in response.json()  # unsigned: Vonage sends it again
    malformed = signed_post(url, good | {"recording_url": "https://[::1", "size": 10})
    assert malformed.status_code == 400 and "recording_url" in malformed.json()["error"]
    assert requests.get(f"{deck.url}/link?id=not-a-real-link-id-123", timeout=10).status_code == 404
    assert deck.store.list("outbox/") == []


def test_amazon_transcribe_path_pages_once_per_owner(deck_factory: DeckFactory, aws: str) -> None:
    """The test puts the transcript JSON where Transcribe would and calls the `transcription`
    function as EventBridge's API destination would; moto never writes transcripts or sends events."""
    s3 = boto3.client("s3", region_name=REGION)
    deck = deck_factory(**aws_transcriber_env(aws))
    report = deck.call(DATA / "voicemail_outage.wav")
    job = f"tapedeck-vm-{report.recording_uuid}"
    started = started_job(job)
    assert started["Media"]["MediaFileUri"] == f"s3://{BUCKET}/media/{job}.wav"
    transcript = {
        "jobName": job,
        "status": "COMPLETED",
        "results": {
            "transcripts": [{"transcript": "The production database is down. Please call me back."}],
            "items": [],
        },
    }
    s3.put_object(Bucket=BUCKET, Key=f"transcripts/{job}.json", Body=json.dumps(transcript).encode())
    event = job_state_change(job)
    url = f"{deck.url}/transcription"
    assert requests.post(url, json=event, timeout=10).status_code == 401
    assert requests.post(url, json=event, headers={API_KEY_HEADER: "wrong"}, timeout=10).status_code == 401
    first = requests.post(url, json=event, headers={API_KEY_HEADER: API_KEY}, timeout=10)
    assert first.status_code == 200 and first.json()["result"] == "completed"
    again = requests.post(url, json=event, headers={API_KEY_HEADER: API_KEY}, timeout=10)
    assert again.json()["result"] == "already handled"
    other = event | {"detail": {"TranscriptionJobName": "someone-elses-job", "TranscriptionJobStatus": "COMPLETED"}}
    assert (
        requests.post(url, json=other, headers={API_KEY_HEADER: API_KEY}, timeout=10).json()["result"] == "unknown job"
    )
    pages = deck.pages(report.recording_uuid, len(OWNERS))
    assert sorted(p["to"] for p in pages) == OWNERS
    assert "THE PRODUCTION DATABASE IS DOWN. PLEASE CALL ME BACK." in pages[0]["text"]
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
    stored = deck.store.read(f"calls/{report.conversation_uuid}/message.wav")
    assert stored is not None and stored.data == deck.api.recordings[report.recording_uuid]


def test_an_empty_recording_pages_no_message_once(deck_factory: DeckFactory) -> None:
    deck = deck_factory()
    ncco = deck.standin.fetch_ncco(
        f"{deck.url}/answer", {"conversation_uuid": "CON-9", "uuid": "u", "from": "447700900123", "to": MAILBOX}
    )
    hook = {"conversation_uuid": "CON-9", "recording_uuid": "r-9", "recording_url": "", "size": 0, "timestamp": "t"}
    for _ in range(2):
        assert signed_post(ncco[1]["eventUrl"][0], hook).status_code == 204
    pages = deck.pages("r-9", len(OWNERS))
    assert [p["text"] for p in pages] == ["[From: +447700900123]\n\nCALLER LEFT NO MESSAGE"] * len(OWNERS)
