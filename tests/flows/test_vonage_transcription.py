"""A mailbox Vonage transcribes, in-process against FakeServices: the recording webhook stores the
message and queues nothing, the transcription webhook queues one task, and the task pages once
from Vonage's file, whatever order and however often the webhooks and the task come."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from shared.config.routes import parse_routes
from shared.core.errors import BadRequest
from shared.core.tasks import Retry, Task
from shared.flows.jobs import read_job
from shared.flows.transcription import receive_recording
from shared.flows.vonage_transcription import collect_vonage_transcript, receive_vonage_transcription
from tests.fakes import FakeServices
from tests.flows.mailbox import CONVERSATION, JOB, OWNERS, ROUTES, recording_webhook, voicemail_services
from tests.testbed import DATA

FILE_URL = "https://api.nexmo.com/v1/files/bbbbbbbb-aaaa-cccc-dddd-0123456789ab"


@pytest.fixture
def services(tmp_path: Path) -> FakeServices:
    services = voicemail_services(tmp_path)
    routes = parse_routes(ROUTES.replace("flow: voicemail", "flow: voicemail\n  engine: vonage"), "routes.yaml")
    services.settings = dataclasses.replace(services.settings, routes=routes)
    services.recordings.files[FILE_URL] = (DATA / "vonage_transcript_voicemail.json").read_bytes()
    return services


def transcription_task(services: FakeServices, **fields: str) -> Task:
    sealed = {k: v for k, v in recording_webhook().items() if k in ("caller", "to", "sig")}
    webhook = {
        "conversation_uuid": CONVERSATION,
        "recording_uuid": recording_webhook()["recording_uuid"],
        "status": "transcribed",
        "transcription_url": FILE_URL,
        "type": "record",
        **sealed,
        **fields,
    }
    return receive_vonage_transcription(services.settings, webhook)


def test_the_recording_queues_nothing_and_the_transcription_pages_once(services: FakeServices) -> None:
    now = services.clock()
    assert receive_recording(services, recording_webhook(), now) is None
    job = read_job(services.store, JOB)
    assert job is not None and job.state == "transcribing"
    task = transcription_task(services)
    assert (task.kind, task.key) == ("vonage-transcript", JOB)
    assert collect_vonage_transcript(services, task, final=False, now=now) == "completed"
    assert collect_vonage_transcript(services, task, final=False, now=now) == "already handled"
    pages = dict(services.messenger.texts)
    assert sorted(pages) == sorted(OWNERS) and len(services.messenger.sent) == 2
    assert pages[OWNERS[0]].split("\n\n")[1] == "HI SAM, THE PRODUCTION DATABASE IS DOWN. PLEASE CALL ME BACK."


def test_a_transcription_before_its_recording_is_retried_until_the_audio_is_stored(services: FakeServices) -> None:
    task = transcription_task(services)
    with pytest.raises(Retry):
        collect_vonage_transcript(services, task, final=False, now=services.clock())
    receive_recording(services, recording_webhook(), services.clock())
    assert collect_vonage_transcript(services, task, final=False, now=services.clock()) == "completed"


def test_a_file_that_cannot_be_fetched_pages_a_failure_on_the_last_attempt(services: FakeServices) -> None:
    receive_recording(services, recording_webhook(), services.clock())
    del services.recordings.files[FILE_URL]
    task = transcription_task(services)
    assert collect_vonage_transcript(services, task, final=True, now=services.clock()) == "completed"
    assert dict(services.messenger.texts)[OWNERS[0]].split("\n\n")[1] == "TRANSCRIPTION FAILED"


def test_a_transcription_for_a_route_vonage_does_not_transcribe_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadRequest):
        transcription_task(voicemail_services(tmp_path))
