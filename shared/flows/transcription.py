"""Use cases shared by the flows that record a call (voicemail, conversation): receive the
recording webhook, run its transcription through the route's chain of engines, and finish each
job once, by its flow.

A route's `engines` are tried in turn on the same stored audio, each attempt a task of its own:
- an engine that raises, refuses the audio, or reports a failed job hands over to the next at once;
- a cloud engine (Amazon Transcribe) that has not reported within its deadline (AWS_DEADLINE) is
  given up on by a `transcribe-deadline` task, which first collects it in case its event was lost;
- the last engine is never given a deadline: a late transcript beats a failure page.

The job document records each attempt (engine, start, outcome, reason) and the engine whose
transcript was used. An attempt's outcome is written once, with a conditional write, so when an
engine given up on reports after all, its result is ignored (and its copies discarded): the
transcript the fallback produced stands, and nobody is paged twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any, Protocol

from shared.core.call_record import Flow
from shared.core.errors import BadRequest
from shared.core.job_record import Job, JobState
from shared.core.ports import Transcript, TranscriptionJob
from shared.core.tasks import Task
from shared.flows.conversation import ConversationServices, finish_conversation, receive_conversation
from shared.flows.jobs import read_job, read_recording_webhook, set_job
from shared.flows.needs import HasEngines
from shared.flows.voicemail import finish_voicemail, receive_voicemail

__all__ = [
    "DEADLINE_TASK",
    "TRANSCRIBE_TASK",
    "RecordedCallServices",
    "complete_transcription",
    "on_transcription_event",
    "read_transcription_request",
    "receive_recording",
    "run_deadline",
    "run_transcription",
    "transcribe_task",
]

log = logging.getLogger(__name__)

TRANSCRIBE_TASK = "transcribe"
DEADLINE_TASK = "transcribe-deadline"
RUNNING, COMPLETED, FAILED, LATE = "running", "completed", "failed", "late"
# The engine whose results come by an event (EventBridge), rather than within the task.
EVENT_ENGINE = "aws"


class RecordedCallServices(ConversationServices, HasEngines, Protocol):
    pass


def transcribe_task(job: TranscriptionJob, attempt: int = 0, *, kind: str = TRANSCRIBE_TASK, delay: float = 0) -> Task:
    """The task of one attempt at a job (its deadline's, with `kind`): named per attempt."""
    key = job.name if attempt == 0 else f"{job.name}-{attempt}"
    return Task(kind, key, {**asdict(job), "attempt": attempt}, delay=delay)


def read_transcription_request(fields: Mapping[str, Any]) -> TranscriptionJob:
    """A TranscriptionJob from a task's payload or a job document's `request`; BadRequest otherwise."""
    known = {name: fields[name] for name in TranscriptionJob.__dataclass_fields__ if name in fields}
    try:
        job = TranscriptionJob(**known)
    except TypeError as err:
        raise BadRequest("a transcription names a job, its audio, format, language and channels") from err
    texts = (job.name, job.audio_key, job.media_format, job.language)
    if not all(isinstance(v, str) for v in texts) or not isinstance(job.channels, int):
        raise BadRequest("a transcription's fields are malformed")
    for name in ("redact", "vocabulary", "languages"):
        listed = getattr(job, name)
        if not isinstance(listed, list | tuple) or not all(isinstance(item, str) for item in listed):
            raise BadRequest(f"a transcription's {name} must be a list of strings")
    return replace(job, redact=tuple(job.redact), vocabulary=tuple(job.vocabulary), languages=tuple(job.languages))


def receive_recording(services: RecordedCallServices, params: Mapping[str, Any], now: float) -> TranscriptionJob | None:
    """Store a recording once per recording_uuid; returns the transcription to run here, if any."""
    hook = read_recording_webhook(services.settings, params)
    route = services.settings.routes.for_number(hook.called)
    if route.flow == Flow.VOICEMAIL:
        job = receive_voicemail(services, hook, route, now)
    elif route.flow == Flow.CONVERSATION:
        job = receive_conversation(services, hook, route, now)
    else:
        raise BadRequest(f"{hook.called} does not record calls")
    # Vonage transcribes the route's recordings itself: the job waits, `transcribing`, for its webhook.
    return None if route.transcribed_by_vonage else job


def complete_transcription(services: RecordedCallServices, transcript: Transcript, now: float) -> bool:
    """Finish the transcript's job by its flow; False for a job not ours."""
    job = read_job(services.store, transcript.job_name)
    if job is None:
        log.warning("transcript for an unknown job", extra={"job": transcript.job_name})
        return False
    if job.flow == Flow.CONVERSATION:
        finish_conversation(services, job, transcript, now)
    else:
        finish_voicemail(services, job, transcript, now)
    return True


def _chain(services: RecordedCallServices, job: Job) -> list[str]:
    """The job's engines; a job stored before chains had none, and used the deployment's."""
    return job.engines or [services.settings.transcription.engine]


def _begin(services: RecordedCallServices, job: TranscriptionJob, attempt: int, engine: str, now: float) -> bool:
    """Note attempt `attempt` as running (kept as it is when a task runs again); False when the
    job has moved past it."""

    def begin(stored: Job) -> None:
        attempts = stored.attempts = stored.attempts or []
        if len(attempts) == attempt:
            attempts.append({"engine": engine, "started_at": now, "outcome": RUNNING})
        stored.request = stored.request or asdict(job)

    stored = set_job(services.store, job.name, begin)
    attempts = (stored.attempts or []) if stored else []
    return len(attempts) > attempt and attempts[attempt]["engine"] == engine and attempts[attempt]["outcome"] == RUNNING


def _transcribing(services: RecordedCallServices, job: TranscriptionJob, attempt: int) -> Job | str:
    """The job of an attempt's task while it is still transcribing, or what the task answers
    instead; an attempt its chain has not got is refused."""
    stored = read_job(services.store, job.name)
    if stored is None or stored.state != JobState.TRANSCRIBING:
        return "already handled" if stored else "unknown job"
    if not 0 <= attempt < len(_chain(services, stored)):
        raise BadRequest(f"{job.name} has no attempt {attempt}")
    return stored


def run_transcription(services: RecordedCallServices, job: TranscriptionJob, now: float, attempt: int = 0) -> str:
    """Run one attempt of a job in the task's own request. A job already past `transcribing`, or
    past this attempt (a task run twice), changes nothing."""
    stored = _transcribing(services, job, attempt)
    if isinstance(stored, str):
        return stored
    chain = _chain(services, stored)
    engine = chain[attempt]
    if not _begin(services, job, attempt, engine, now):
        return "superseded"
    try:
        transcript = services.transcriber_for(engine).start(job)
    except Exception as err:
        log.exception("transcription failed to run", extra={"job": job.name, "engine": engine})
        transcript = Transcript(job.name, "failed", "", failure=str(err) or type(err).__name__)
    if transcript is not None:
        return _settle(services, job, chain, attempt, transcript, now)
    if attempt + 1 < len(chain):
        delay = services.settings.transcription.deadlines.get(engine, 0)
        services.queue.enqueue(transcribe_task(job, attempt, kind=DEADLINE_TASK, delay=delay))
    return "started"  # a cloud engine: its event calls back in when it is done


def _settle(
    services: RecordedCallServices,
    job: TranscriptionJob,
    chain: list[str],
    attempt: int,
    transcript: Transcript,
    now: float,
) -> str:
    """Write attempt `attempt`'s outcome, once; then finish the job with its transcript, or hand
    a failure to the next engine of `chain` (the job's) while there is one."""
    engine = chain[attempt]
    late = transcript.status == LATE
    onward = transcript.status != "completed" and attempt + 1 < len(chain)
    outcome = COMPLETED if transcript.status == "completed" else LATE if late else FAILED

    def settle(held: Job) -> None:
        attempts = held.attempts or []
        if len(attempts) <= attempt or attempts[attempt]["outcome"] != RUNNING:
            return
        attempts[attempt] |= {"outcome": outcome, "ended_at": now}
        if transcript.failure:
            attempts[attempt]["reason"] = transcript.failure
        if not onward:
            held.engine, held.detected_language = engine, transcript.language

    settled = set_job(services.store, job.name, settle)
    if settled is None:
        return "unknown job"
    attempts = settled.attempts or []
    # Applied here, or by an earlier run of this same step that died before finishing the job.
    ours = len(attempts) > attempt and attempts[attempt]["outcome"] == outcome
    if not ours or settled.state != JobState.TRANSCRIBING:
        log.info("result of an attempt already settled, ignored", extra={"job": job.name, "engine": engine})
        return "late result ignored"
    if onward:
        log.warning(
            "engine gave no transcript: trying the next",
            extra={"job": job.name, "engine": engine, "next": chain[attempt + 1], "reason": transcript.failure},
        )
        services.queue.enqueue(transcribe_task(job, attempt + 1))
        return f"falling back to {chain[attempt + 1]}"
    if late:
        transcript = replace(transcript, status="failed")
    complete_transcription(services, transcript, now)
    return "completed"


def _running(job: Job, engine: str) -> int | None:
    """The attempt of `engine` that is still running, if any."""
    for index, attempt in enumerate(job.attempts or []):
        if attempt["engine"] == engine and attempt["outcome"] == RUNNING:
            return index
    return None


def on_transcription_event(services: RecordedCallServices, name: str, now: float) -> str:
    """A cloud engine says a job changed state: collect and settle its attempt, once. An engine
    the chain gave up on is ignored, and what it keeps of the job discarded."""
    job = read_job(services.store, name)
    if job is None:
        return "unknown job"
    attempt = _running(job, EVENT_ENGINE) if job.state == JobState.TRANSCRIBING else None
    if attempt is None and job.attempts is None and job.state == JobState.TRANSCRIBING:
        attempt = 0  # a job queued before chains: one attempt, never recorded
        if not _begin(services, _request_of(job), 0, EVENT_ENGINE, now):
            return "already handled"
    if attempt is None:
        if any(a["engine"] == EVENT_ENGINE and a["outcome"] == LATE for a in job.attempts or []):
            services.transcriber_for(EVENT_ENGINE).discard(name)
            log.info("late result of an engine given up on, ignored", extra={"job": name, "engine": EVENT_ENGINE})
            return "late result ignored"
        return "already handled"
    transcript = services.transcriber_for(EVENT_ENGINE).collect(name)
    return _settle(services, _request_of(job), _chain(services, job), attempt, transcript, now)


def _request_of(job: Job) -> TranscriptionJob:
    """The job's request; a job stored before requests were kept names only its audio."""
    if job.request is not None:
        return read_transcription_request(job.request)
    media_format = (job.audio_key or "").rsplit(".", 1)[-1]
    return TranscriptionJob(job.name, job.audio_key or "", media_format, job.language, job.channels or 1)


def run_deadline(services: RecordedCallServices, job: TranscriptionJob, now: float, attempt: int) -> str:
    """An attempt's deadline: unless it has settled, collect it (its event may have been lost) or
    give up on it and run the next engine."""
    stored = _transcribing(services, job, attempt)
    if isinstance(stored, str):
        return stored
    attempts = stored.attempts or []
    if len(attempts) <= attempt or attempts[attempt]["outcome"] != RUNNING:
        return "already settled"
    engine = attempts[attempt]["engine"]
    deadline = services.settings.transcription.deadlines.get(engine, 0)
    try:
        transcript = services.transcriber_for(engine).collect(job.name)
    except Exception as err:
        log.info("engine not finished by its deadline", extra={"job": job.name, "engine": engine, "state": str(err)})
        transcript = Transcript(job.name, LATE, "", failure=f"not finished within {deadline} s")
    return _settle(services, job, _chain(services, stored), attempt, transcript, now)
