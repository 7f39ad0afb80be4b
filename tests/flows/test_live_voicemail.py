"""A live voicemail's page, in-process on FakeServices: once per message from the live words, the
no-message page for an empty one, and the batch path when the live words are incomplete."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.flows.jobs import read_job
from shared.flows.voicemail import LiveMessage, page_live_message
from tests.fakes import FakeServices
from tests.flows.mailbox import CALLER, CONVERSATION, OWNERS, voicemail_services

MAILBOX = "447700900001"


@pytest.fixture
def services(tmp_path: Path) -> FakeServices:
    return voicemail_services(tmp_path)


def message(text: str | None, session: str = "a1b2c3d4e5f6") -> LiveMessage:
    return LiveMessage(CONVERSATION, session, CALLER, MAILBOX, f"calls/{CONVERSATION}/audio.wav", "wav", text)


def test_the_live_words_page_each_owner_once_however_often_the_end_is_reported(services: FakeServices) -> None:
    for _ in range(3):
        assert page_live_message(services, message("the database is down"), services.clock()) is None

    pages = dict(services.messenger.texts)
    assert sorted(pages) == sorted(OWNERS)
    assert pages[OWNERS[0]].split("\n\n")[:2] == [f"[From: +{CALLER}]", "THE DATABASE IS DOWN"]
    assert len(services.messenger.sent) == len(OWNERS)
    job = read_job(services.store, "tapedeck-vm-live-a1b2c3d4e5f6")
    assert job is not None and job.state == "paged" and job.audio_key == f"calls/{CONVERSATION}/audio.wav"


def test_an_empty_live_message_pages_that_the_caller_left_none(services: FakeServices) -> None:
    page_live_message(services, message("  "), services.clock())

    assert {text.split("\n\n")[1] for _, text in services.messenger.texts} == {"CALLER LEFT NO MESSAGE"}


def test_incomplete_live_words_hand_the_audio_to_the_batch_path(services: FakeServices) -> None:
    job = page_live_message(services, message(None), services.clock())

    assert job is not None
    assert (job.audio_key, job.media_format) == (f"calls/{CONVERSATION}/audio.wav", "wav")
    assert services.messenger.sent == []
    stored = read_job(services.store, job.name)
    assert stored is not None and stored.state == "transcribing"
    # A second report of the same message's end starts nothing more.
    assert page_live_message(services, message(None), services.clock()) is None
