"""A route's vocabulary on its way to the engines: in a recorded call's transcribe task, through the
queue's JSON, to the batch engine; and to the live engine a streamed call opens."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from shared.config.routes import parse_routes
from shared.config.settings import Settings, StreamSettings
from shared.core.ports import LiveSegment, SpeechHints
from shared.core.tasks import Task, parse_task
from shared.runtime.task_dispatch import run_task
from tests.fakes import FakeServices, ScriptedLiveTranscriber
from tests.flows.mailbox import JOB, MAILBOX, URL, received
from tests.flows.test_live_redaction import STREAMED, streamed
from tests.testbed import DATA, TOKEN_SECRET

PHRASES = ("Tapedeck", "Kubernetes", "Sam O'Neil")


def services_for(tmp_path: Path, vocabulary: str) -> FakeServices:
    routes = (
        f'"{MAILBOX}":\n  flow: voicemail\n  recipients: ["447700900111"]\n  language: en-GB\n'
        f"  vocabulary: {vocabulary}\n"
        f'"{STREAMED}":\n  flow: stream\n  language: en-AU\n  vocabulary: {vocabulary}\n'
    )
    settings = Settings(
        stream=StreamSettings(token_secret=TOKEN_SECRET),
        public_url="https://fn.example.test",
        routes=parse_routes(routes, "routes.yaml"),
    )
    services = FakeServices.on(tmp_path, settings)
    services.recordings.files[URL] = (DATA / "voicemail_outage.wav").read_bytes()
    services.transcriber.in_process = False
    return services


def through_the_queue(services: FakeServices) -> None:
    """The recording's transcribe task, as the queue delivers it (JSON), run."""
    job = received(services)
    task = parse_task(json.loads(json.dumps(Task("transcribe", job.name, asdict(job)).to_json())))
    assert run_task(services, task, 1, services.clock()) == "started"


def test_a_voicemail_job_reaches_the_engine_with_its_routes_language_and_phrases(tmp_path: Path) -> None:
    services = services_for(tmp_path, '[Tapedeck, Kubernetes, "Sam O\'Neil"]')
    through_the_queue(services)
    [job] = services.transcriber.jobs
    assert (job.name, job.language, job.vocabulary) == (JOB, "en-GB", PHRASES)


def test_the_largest_vocabulary_a_route_may_have_fits_in_a_task(tmp_path: Path) -> None:
    # 500 phrases of 20 characters: both limits reached at once.
    phrases = [chr(97 + i // 26) + chr(97 + i % 26) + "x" * 17 + "'" for i in range(500)]
    services = services_for(tmp_path, json.dumps(phrases))
    through_the_queue(services)
    [job] = services.transcriber.jobs
    assert job.vocabulary == tuple(phrases)


def test_a_streamed_call_opens_its_live_engine_with_its_routes_language_and_phrases(tmp_path: Path) -> None:
    services = services_for(tmp_path, '[Tapedeck, Kubernetes, "Sam O\'Neil"]')
    _, context = streamed(services, STREAMED, [LiveSegment(True, "hello", 0.1, 0.5)])
    assert isinstance(context.live, ScriptedLiveTranscriber)
    assert context.live.hints == [SpeechHints("en-AU", PHRASES)]
