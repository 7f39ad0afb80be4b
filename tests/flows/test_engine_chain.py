"""A route's chain of engines, in-process against FakeServices: each attempt a task, a failure or
a deadline handing over to the next engine, and a late result changing nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from shared.config.settings import Settings
from shared.core.errors import BadRequest
from shared.core.ports import Transcript, TranscriptionJob
from shared.core.tasks import Task
from shared.flows.jobs import read_job
from shared.flows.transcription import on_transcription_event, transcribe_task
from shared.runtime.task_dispatch import run_task
from tests.fakes import FakeServices, FakeTranscriber
from tests.flows.mailbox import JOB, OWNERS, SPOKEN, received, voicemail_services

CHAIN = "  engines: [aws, offline]\n"
HEARD_OFFLINE = "the database is down"


class RefusingTranscriber(FakeTranscriber):
    """An engine that raises as it is started: Amazon refusing the audio, or unreachable."""

    def start(self, job: TranscriptionJob) -> Transcript | None:
        self.started.append(job.name)
        raise BadRequest("Amazon Transcribe does not take this audio")


def chained(tmp_path: Path, aws: FakeTranscriber | None = None) -> FakeServices:
    services = voicemail_services(tmp_path, route=CHAIN)
    services.engines["aws"] = aws or FakeTranscriber(in_process=False)
    services.transcriber.transcripts[JOB] = Transcript(JOB, "completed", HEARD_OFFLINE)
    return services


def run_queued(services: FakeServices, kind: str | None = None) -> list[str]:
    """Run each queued task (of `kind`) once, in the order queued; returns what each did."""
    done = []
    for name, task in list(services.queue.tasks.items()):
        if kind is None or task.kind == kind:
            del services.queue.tasks[name]
            done.append(run_task(services, task, 1, services.clock()))
    return done


def page_texts(services: FakeServices) -> list[str]:
    return [text.split("\n\n")[1] for _, text in services.messenger.texts]


def test_an_engine_that_refuses_hands_over_to_the_next_which_pages_once(tmp_path: Path) -> None:
    services = chained(tmp_path, RefusingTranscriber())
    services.queue.enqueue(transcribe_task(received(services)))

    assert run_queued(services) == ["falling back to offline"]
    assert run_queued(services) == ["completed"]

    assert page_texts(services) == [HEARD_OFFLINE.upper()] * len(OWNERS)
    job = read_job(services.store, JOB)
    assert job is not None and job.engine == "offline" and job.engines == ["aws", "offline"]
    assert [(a["engine"], a["outcome"]) for a in job.attempts or []] == [("aws", "failed"), ("offline", "completed")]
    assert (job.attempts or [])[0]["reason"] == "Amazon Transcribe does not take this audio"


def test_a_failed_cloud_job_hands_over_to_the_next_engine(tmp_path: Path) -> None:
    services = chained(tmp_path)
    services.queue.enqueue(transcribe_task(received(services)))
    assert run_queued(services) == ["started"]
    services.engines["aws"].transcripts[JOB] = Transcript(JOB, "failed", "", failure="The media file is too short.")

    assert on_transcription_event(services, JOB, services.clock.advance(60)) == "falling back to offline"
    assert run_queued(services, "transcribe") == ["completed"]

    assert page_texts(services) == [HEARD_OFFLINE.upper()] * len(OWNERS)
    job = read_job(services.store, JOB)
    assert job is not None and [a["outcome"] for a in job.attempts or []] == ["failed", "completed"]


def test_a_late_engine_is_given_up_at_its_deadline_and_its_late_result_changes_nothing(tmp_path: Path) -> None:
    services = chained(tmp_path)
    services.queue.enqueue(transcribe_task(received(services)))
    assert run_queued(services) == ["started"]
    [deadline] = services.queue.tasks.values()
    assert (deadline.kind, deadline.delay) == ("transcribe-deadline", services.settings.transcription.deadlines["aws"])

    # The deadline collects first (the engine's event may have been lost): not finished, so late.
    assert run_queued(services) == ["falling back to offline"]
    assert services.engines["aws"].collected == [JOB]
    assert run_queued(services) == ["completed"]
    paged = list(services.messenger.sent)
    transcript = services.store.read(f"calls/{read_job(services.store, JOB).conversation_uuid}/transcript.txt")  # type: ignore[union-attr]

    # Amazon finishes after all: its result is ignored, its copies discarded, nobody paged again.
    services.engines["aws"].transcripts[JOB] = Transcript(JOB, "completed", SPOKEN)
    assert on_transcription_event(services, JOB, services.clock.advance(900)) == "late result ignored"
    assert services.engines["aws"].transcripts == {}
    assert services.messenger.sent == paged
    job = read_job(services.store, JOB)
    assert job is not None and job.engine == "offline"
    assert [(a["engine"], a["outcome"]) for a in job.attempts or []] == [("aws", "late"), ("offline", "completed")]
    assert services.store.read(f"calls/{job.conversation_uuid}/transcript.txt") == transcript


def test_an_engine_that_finishes_before_its_deadline_leaves_the_deadline_nothing_to_do(tmp_path: Path) -> None:
    services = chained(tmp_path)
    services.queue.enqueue(transcribe_task(received(services)))
    run_queued(services, "transcribe")
    services.engines["aws"].transcripts[JOB] = Transcript(JOB, "completed", SPOKEN, language="en-US")

    assert on_transcription_event(services, JOB, services.clock.advance(30)) == "completed"
    assert run_queued(services, "transcribe-deadline") == ["already handled"]

    assert page_texts(services) == [SPOKEN.upper()] * len(OWNERS)
    assert services.transcriber.started == []  # the offline engine never ran
    job = read_job(services.store, JOB)
    assert job is not None and (job.engine, job.detected_language) == ("aws", "en-US")
    stored = services.store.read(f"calls/{job.conversation_uuid}/transcript.json")
    assert stored is not None and json.loads(stored.data)["language"] == "en-US"


def test_the_last_engine_failing_pages_that_transcription_failed(tmp_path: Path) -> None:
    services = chained(tmp_path, RefusingTranscriber())
    services.transcriber.transcripts[JOB] = Transcript(JOB, "failed", "", failure="no decoder")
    services.queue.enqueue(transcribe_task(received(services)))

    assert run_queued(services) == ["falling back to offline"]
    assert run_queued(services) == ["completed"]

    assert page_texts(services) == ["TRANSCRIPTION FAILED"] * len(OWNERS)
    job = read_job(services.store, JOB)
    assert job is not None and [a["outcome"] for a in job.attempts or []] == ["failed", "failed"]


def test_the_last_engine_is_given_no_deadline(tmp_path: Path) -> None:
    services = voicemail_services(tmp_path, engine="aws")
    services.transcriber.in_process = False
    services.queue.enqueue(transcribe_task(received(services)))
    assert run_queued(services) == ["started"]
    assert services.queue.tasks == {}


def test_an_attempt_run_again_after_it_settled_changes_nothing(tmp_path: Path) -> None:
    services = chained(tmp_path, RefusingTranscriber())
    first = transcribe_task(received(services))
    services.queue.enqueue(first)
    run_queued(services)
    run_queued(services)
    sent = list(services.messenger.sent)

    assert run_task(services, first, 1, services.clock()) == "already handled"
    assert run_task(services, transcribe_task(received_job(services), 1), 1, services.clock()) == "already handled"
    assert services.messenger.sent == sent


def received_job(services: FakeServices) -> TranscriptionJob:
    job = read_job(services.store, JOB)
    assert job is not None and job.request is not None
    return TranscriptionJob(**{**job.request, "redact": (), "vocabulary": (), "languages": ()})


@settings(max_examples=40, deadline=None)
@example(kind="transcribe-deadline", attempt=2, key_suffix="-2")
@given(
    kind=st.sampled_from(["transcribe", "transcribe-deadline"]),
    attempt=st.one_of(st.integers(-3, 12), st.booleans(), st.text(max_size=3), st.none()),
    key_suffix=st.sampled_from(["", "-1", "-2", "-x"]),
)
def test_a_forged_attempt_is_refused_with_a_4xx(
    tmp_path_factory: pytest.TempPathFactory, kind: str, attempt: object, key_suffix: str
) -> None:
    services = chained(tmp_path_factory.mktemp("forged"))
    job = received(services)
    task = transcribe_task(job, kind=kind)
    payload = {**task.payload, "attempt": attempt}
    forged = Task(kind, job.name + key_suffix, payload)
    try:
        result = run_task(services, forged, 1, services.clock())
    except BadRequest as err:
        assert 400 <= err.status < 500
        return
    # Only a well-formed attempt of this two-engine chain is run at all.
    assert isinstance(attempt, int) and not isinstance(attempt, bool) and 0 <= attempt < 2
    assert key_suffix == ("" if attempt == 0 else f"-{attempt}")
    assert result in ("falling back to offline", "started", "completed", "already settled", "superseded")


def test_the_browser_and_the_call_page_show_which_engine_transcribed_and_what_was_tried(tmp_path: Path) -> None:
    """The same folder, read by the recordings browser."""
    from appengine.browser import create_app
    from shared.runtime.services import Services

    services = chained(tmp_path)
    services.queue.enqueue(transcribe_task(received(services)))
    run_queued(services)
    run_queued(services)
    run_queued(services)
    job = read_job(services.store, JOB)
    assert job is not None and job.engine == "offline"

    env = {"LOCAL_STORAGE_DIR": str(tmp_path / "data"), "STREAM_TOKEN_SECRET": "t" * 32}
    browsing = Services(Settings.from_env(env), clock=services.clock)
    html = create_app(browsing.settings, browsing).test_client().get(f"/calls/{job.conversation_uuid}").data.decode()
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    deadline = services.settings.transcription.deadlines["aws"]
    assert f"Transcription offline completed aws: late (not finished within {deadline} s); offline: completed" in text
