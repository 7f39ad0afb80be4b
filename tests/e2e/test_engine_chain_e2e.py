"""A voicemail route with `engines: [aws, offline]`, end to end: the functions and the embedded
queue under gunicorn, the Vonage stand-in, Amazon Transcribe and S3 on moto, and the page in the
outbox. Amazon is made to fail in the two ways moto can: its staging bucket is gone (the start
errors), or its job never finishes (the deadline gives up on it). moto has no FAILED state, so a
job Amazon reports FAILED is tested in-process (tests/flows/test_engine_chain.py)."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
import requests

from shared.runtime.web import API_KEY_HEADER
from tests.aws import REGION, TRANSCRIPTION_JOB, aws_transcriber_env, job_state_change, started_job
from tests.aws import TRANSCRIBE_BUCKET as BUCKET
from tests.aws import TRANSCRIPTION_API_KEY as API_KEY
from tests.deck import MAILBOX, OWNERS, Deck, DeckFactory, voicemail_routes
from tests.testbed import DATA

# Real servers or emulators on loopback, started by the tests.
pytestmark = pytest.mark.slow

ROUTES = voicemail_routes(MAILBOX, OWNERS, language="en-US", engines="[aws, offline]")
AMAZON_SAID = "Amazon heard this much later."


def offline_pages(deck: Deck, recording_uuid: str) -> list[dict[str, Any]]:
    """One page per owner, with what the offline engine heard in the message."""
    pages = deck.pages(recording_uuid, len(OWNERS), timeout=90)
    assert sorted(p["to"] for p in pages) == OWNERS
    for page in pages:
        assert "PRODUCTION DATABASE IS DOWN" in page["text"].split("\n\n")[1]
    return pages


def attempts(deck: Deck, job: str) -> list[tuple[str, str]]:
    stored = deck.read_json(f"jobs/{job}.json")
    return [(a["engine"], a["outcome"]) for a in stored["attempts"]]


def test_amazon_failing_to_start_hands_the_message_to_the_offline_engine_which_pages_once(
    deck_factory: DeckFactory, aws: str
) -> None:
    env = aws_transcriber_env(aws)
    boto3.client("s3", region_name=REGION).delete_bucket(Bucket=BUCKET)  # staging the audio fails
    deck = deck_factory(**(env | {"TRANSCRIBER": "offline"}))
    report = deck.call(DATA / "voicemail_outage.wav", dtmf=[])
    job = f"tapedeck-vm-{report.recording_uuid}"

    offline_pages(deck, report.recording_uuid)
    assert attempts(deck, job) == [("aws", "failed"), ("offline", "completed")]
    stored = deck.read_json(f"jobs/{job}.json")
    assert "NoSuchBucket" in stored["attempts"][0]["reason"] and stored["engine"] == "offline"
    time.sleep(2)
    assert len(deck.store.list(f"outbox/{report.recording_uuid}")) == len(OWNERS)


def test_amazon_late_past_its_deadline_is_given_up_and_its_late_result_changes_nothing(
    deck_factory: DeckFactory, aws: str
) -> None:
    env = aws_transcriber_env(aws)
    # Amazon's job never moves on by itself: it never finishes.
    requests.post(
        f"{aws}/moto-api/state-manager/set-transition",
        json={"model_name": TRANSCRIPTION_JOB, "transition": {"progression": "manual", "times": 10**6}},
        timeout=5,
    ).raise_for_status()
    deck = deck_factory(**(env | {"TRANSCRIBER": "offline", "AWS_DEADLINE": "2"}))
    report = deck.call(DATA / "voicemail_outage.wav", dtmf=[])
    job = f"tapedeck-vm-{report.recording_uuid}"
    assert started_job(job).get("TranscriptionJobStatus") != "COMPLETED"

    pages = offline_pages(deck, report.recording_uuid)
    assert attempts(deck, job) == [("aws", "late"), ("offline", "completed")]
    folder = f"calls/{report.conversation_uuid}"
    transcript = deck.store.read(f"{folder}/transcript.txt")

    # Amazon finishes after all, and EventBridge says so.
    requests.post(
        f"{aws}/moto-api/state-manager/set-transition",
        json={"model_name": TRANSCRIPTION_JOB, "transition": {"progression": "immediate"}},
        timeout=5,
    ).raise_for_status()
    s3 = boto3.client("s3", region_name=REGION)
    late = {"jobName": job, "status": "COMPLETED", "results": {"transcripts": [{"transcript": AMAZON_SAID}]}}
    s3.put_object(Bucket=BUCKET, Key=f"transcripts/{job}.json", Body=json.dumps(late).encode())
    headers = {API_KEY_HEADER: API_KEY}
    answer = requests.post(f"{deck.url}/transcription", json=job_state_change(job), headers=headers, timeout=10)
    assert answer.status_code == 200 and answer.json()["result"] == "late result ignored"

    time.sleep(2)
    assert deck.wait_for(f"outbox/{report.recording_uuid}", len(OWNERS)) == pages
    assert deck.store.read(f"{folder}/transcript.txt") == transcript
    assert attempts(deck, job) == [("aws", "late"), ("offline", "completed")]
    # What Amazon kept of the message (staged audio, its transcript, the job) is discarded.
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
    assert boto3.client("transcribe", region_name=REGION).list_transcription_jobs()["TranscriptionJobSummaries"] == []
