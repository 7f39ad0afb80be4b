"""A cloud engine's job-state events, in-process against FakeServices: the job is collected and
finished once, whatever order and however often the events come."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.core.call_record import Flow
from shared.core.ports import Transcript
from shared.flows.jobs import job_name, read_job
from shared.flows.transcription import on_transcription_event, run_transcription
from tests.fakes import FakeServices
from tests.flows.mailbox import CALLER, JOB, OWNERS, SPOKEN, received, voicemail_services


@pytest.fixture
def services(tmp_path: Path) -> FakeServices:
    services = voicemail_services(tmp_path, engine="aws")
    services.transcriber.in_process = False
    return services


def test_a_started_job_is_collected_and_paged_when_its_event_arrives(services: FakeServices) -> None:
    assert run_transcription(services, received(services), services.clock()) == "started"
    assert services.messenger.sent == []
    services.transcriber.transcripts[JOB] = Transcript(JOB, "completed", SPOKEN)

    assert on_transcription_event(services, JOB, services.clock.advance(30)) == "completed"

    assert services.transcriber.collected == [JOB]
    pages = dict(services.messenger.texts)
    assert sorted(pages) == sorted(OWNERS)
    assert pages[OWNERS[0]].startswith(f"[From: +{CALLER}]\n\n{SPOKEN.upper()}\n\nhttps://fn.example.test/link?id=")


def test_a_second_event_for_the_same_job_is_already_handled(services: FakeServices) -> None:
    run_transcription(services, received(services), services.clock())
    services.transcriber.transcripts[JOB] = Transcript(JOB, "completed", SPOKEN)
    on_transcription_event(services, JOB, services.clock())

    assert on_transcription_event(services, JOB, services.clock.advance(5)) == "already handled"

    assert services.transcriber.collected == [JOB]
    assert len(services.messenger.sent) == len(OWNERS)


def test_an_event_for_a_job_never_received_is_unknown(services: FakeServices) -> None:
    unknown = job_name(Flow.VOICEMAIL, "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")

    assert on_transcription_event(services, unknown, services.clock()) == "unknown job"
    assert on_transcription_event(services, "someone-elses-job", services.clock()) == "unknown job"

    assert services.transcriber.collected == []
    assert services.messenger.sent == []


def test_a_failed_cloud_job_still_pages_the_owners(services: FakeServices) -> None:
    run_transcription(services, received(services), services.clock())
    services.transcriber.transcripts[JOB] = Transcript(JOB, "failed", "", failure="The media file length is too small.")

    assert on_transcription_event(services, JOB, services.clock()) == "completed"

    pages = dict(services.messenger.texts)
    assert sorted(pages) == sorted(OWNERS)
    assert pages[OWNERS[1]].split("\n\n")[1] == "TRANSCRIPTION FAILED"
    stored = read_job(services.store, JOB)
    assert stored is not None and (stored.state, stored.transcript_status) == ("paged", "failed")
