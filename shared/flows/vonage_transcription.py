"""Recordings Vonage transcribes itself (a route's `engine: vonage`): its transcription webhook
becomes a task, and the task fetches the transcript and finishes the job as any engine's.

The recording webhook stores the audio and leaves the job `transcribing`; the transcription
webhook comes later to the same sealed URL. Either may be delivered twice, or the second before
the first is handled: the task waits (by retrying) for the recording, and a job past
`transcribing` is left as it is, so the owners are paged once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from shared.config.route_fields import VONAGE_ENGINE
from shared.config.settings import Settings
from shared.core.call_record import Flow, check_conversation_uuid
from shared.core.errors import BadRequest, TapedeckError
from shared.core.job_record import Job, JobState
from shared.core.ports import Transcript
from shared.core.tasks import Retry, Task
from shared.core.vonage_transcripts import TRANSCRIBED, read_transcription_webhook, read_vonage_transcript
from shared.flows.jobs import job_name, read_job, read_sealed_numbers, set_job
from shared.flows.transcription import RecordedCallServices, complete_transcription

__all__ = ["VONAGE_TRANSCRIPT_TASK", "collect_vonage_transcript", "receive_vonage_transcription"]

log = logging.getLogger(__name__)

VONAGE_TRANSCRIPT_TASK = "vonage-transcript"


def receive_vonage_transcription(settings: Settings, params: Mapping[str, Any]) -> Task:
    """Vonage's transcription webhook, checked against its sealed URL: the task that collects it."""
    hook = read_transcription_webhook(params)
    conversation_uuid = check_conversation_uuid(params.get("conversation_uuid"))
    _, called = read_sealed_numbers(settings, conversation_uuid, params)
    route = settings.routes.for_number(called)
    if not route.transcribed_by_vonage or route.flow not in (Flow.VOICEMAIL, Flow.CONVERSATION):
        raise BadRequest(f"{called} is not transcribed by Vonage")
    payload = {"transcription_url": hook.transcription_url, "status": hook.status}
    return Task(VONAGE_TRANSCRIPT_TASK, job_name(route.flow, hook.recording_uuid), payload)


def collect_vonage_transcript(services: RecordedCallServices, task: Task, *, final: bool, now: float) -> str:
    """Fetch Vonage's transcript of a job still `transcribing` and finish the job, once."""
    url, status = task.payload.get("transcription_url"), task.payload.get("status")
    if not isinstance(url, str) or not isinstance(status, str):
        raise BadRequest("a vonage-transcript task names its transcription_url and status")
    job = read_job(services.store, task.key)
    if job is None or job.state == JobState.RECEIVED:
        # The transcription webhook overtook its recording's: wait until the audio is stored.
        raise Retry(f"{task.key}: the recording is not stored yet")
    if job.state != JobState.TRANSCRIBING:
        return "already handled"
    transcript = _transcript(services, task.key, url, status, final=final)
    set_job(services.store, task.key, lambda held: _by_vonage(held, transcript, now))
    complete_transcription(services, transcript, now)
    return "completed"


def _by_vonage(job: Job, transcript: Transcript, now: float) -> None:
    """Record Vonage as the job's one engine, as a chain's attempts are recorded."""
    outcome: dict[str, Any] = {"engine": VONAGE_ENGINE, "started_at": job.received_at, "ended_at": now}
    outcome["outcome"] = "completed" if transcript.status == "completed" else "failed"
    if transcript.failure:
        outcome["reason"] = transcript.failure
    job.attempts, job.engine = [outcome], VONAGE_ENGINE


def _transcript(services: RecordedCallServices, name: str, url: str, status: str, *, final: bool) -> Transcript:
    if status != TRANSCRIBED:
        return Transcript(name, "failed", "", failure=f"Vonage reported the transcription {status!r}")
    try:
        data = services.recordings.download(url)
    except TapedeckError as err:
        if err.status >= 500 and not final:
            raise  # Vonage may hand it over on the next run
        log.warning("Vonage transcript not fetched", extra={"job": name, "error": str(err)})
        return Transcript(name, "failed", "", failure=f"the transcript could not be fetched: {err}")
    return read_vonage_transcript(name, data)
