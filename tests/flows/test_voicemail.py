"""The voicemail pager in-process, against FakeServices: a message is received, transcribed by an
engine that answers at once, and paged once to each owner; a blank or failed transcript still pages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.core.job_record import Job
from shared.core.ports import Transcript
from shared.flows.jobs import read_job
from shared.flows.transcription import run_transcription
from shared.flows.voicemail import finish_voicemail
from tests.fakes import FakeServices
from tests.flows.mailbox import CALLER, CONVERSATION, JOB, LINK, OWNERS, SPOKEN, received, voicemail_services


@pytest.fixture
def services(tmp_path: Path) -> FakeServices:
    return voicemail_services(tmp_path)


def received_job(services: FakeServices) -> Job:
    """The job document a recording webhook leaves, waiting for its transcript."""
    received(services)
    stored = read_job(services.store, JOB)
    assert stored is not None and stored.state == "transcribing"
    return stored


def pages_of(services: FakeServices) -> dict[str, str]:
    return dict(services.messenger.texts)


def test_a_transcribed_message_pages_each_owner_once_with_the_caller_the_words_and_a_link(
    services: FakeServices,
) -> None:
    job = received(services)
    services.transcriber.transcripts[JOB] = Transcript(JOB, "completed", SPOKEN)

    assert run_transcription(services, job, services.clock()) == "completed"

    pages = pages_of(services)
    assert sorted(pages) == sorted(OWNERS)
    head, body, link = pages[OWNERS[0]].split("\n\n")
    assert (head, body) == (f"[From: +{CALLER}]", SPOKEN.upper())
    assert LINK.fullmatch(link)
    assert pages[OWNERS[1]].split("\n\n")[:2] == [head, body]
    assert len(services.messenger.sent) == 2
    stored = read_job(services.store, JOB)
    assert stored is not None
    assert (stored.state, stored.transcript_status) == ("paged", "completed")
    assert sorted(stored.paged or ()) == sorted(OWNERS)


def test_finishing_the_same_job_again_pages_nobody_twice(services: FakeServices) -> None:
    job = received_job(services)
    transcript = Transcript(JOB, "completed", SPOKEN)

    finish_voicemail(services, job, transcript, services.clock())
    finish_voicemail(services, job, transcript, services.clock.advance(60))

    assert sorted(to for to, _ in services.messenger.texts) == sorted(OWNERS)


def test_the_transcript_is_stored_beside_the_audio(services: FakeServices) -> None:
    job = received_job(services)

    finish_voicemail(services, job, Transcript(JOB, "completed", SPOKEN), services.clock())

    text = services.store.read(f"calls/{CONVERSATION}/transcript.txt")
    document = services.store.read(f"calls/{CONVERSATION}/transcript.json")
    assert text is not None and text.data == (SPOKEN + "\n").encode()
    assert document is not None and json.loads(document.data) == {"text": SPOKEN}


@pytest.mark.parametrize(
    ("transcript", "body"),
    [
        (Transcript(JOB, "completed", "  "), "CALLER LEFT NO MESSAGE"),
        (Transcript(JOB, "failed", "", failure="engine unavailable"), "TRANSCRIPTION FAILED"),
    ],
    ids=["blank", "failed"],
)
def test_a_blank_or_failed_transcript_still_pages_the_owners(
    services: FakeServices, transcript: Transcript, body: str
) -> None:
    job = received_job(services)

    finish_voicemail(services, job, transcript, services.clock())

    pages = pages_of(services)
    assert sorted(pages) == sorted(OWNERS)
    head, text, link = pages[OWNERS[0]].split("\n\n")
    assert (head, text) == (f"[From: +{CALLER}]", body)
    assert LINK.fullmatch(link)
    stored = read_job(services.store, JOB)
    assert stored is not None and stored.transcript_status == transcript.status
