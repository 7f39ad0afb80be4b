"""Use cases shared by the flows that record a call (voicemail, conversation): receive the
recording webhook, run its transcription, and finish each job once, by its flow."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from shared.core.call_record import Flow
from shared.core.errors import BadRequest
from shared.core.job_record import JobState
from shared.core.ports import Transcriber, Transcript, TranscriptionJob
from shared.flows.conversation import ConversationServices, finish_conversation, receive_conversation
from shared.flows.jobs import read_job, read_recording_webhook
from shared.flows.voicemail import finish_voicemail, receive_voicemail

__all__ = [
    "RecordedCallServices",
    "complete_transcription",
    "on_transcription_event",
    "receive_recording",
    "run_transcription",
]

log = logging.getLogger(__name__)


class RecordedCallServices(ConversationServices, Protocol):
    @property
    def transcriber(self) -> Transcriber: ...


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


def run_transcription(services: RecordedCallServices, job: TranscriptionJob, now: float) -> str:
    """Run a job in the task's own request; if the engine breaks, the failure is still reported to
    whoever waits for it. A job already past `transcribing` (a task run twice) changes nothing."""
    stored = read_job(services.store, job.name)
    if stored is None or stored.state != JobState.TRANSCRIBING:
        return "already handled" if stored else "unknown job"
    try:
        transcript = services.transcriber.start(job)
    except Exception as err:
        log.exception("transcription failed to run", extra={"job": job.name})
        transcript = Transcript(job.name, "failed", "", failure=str(err))
    if transcript is None:
        return "started"  # a cloud engine: its event calls back in when it is done
    complete_transcription(services, transcript, now)
    return "completed"


def on_transcription_event(services: RecordedCallServices, name: str, now: float) -> str:
    """A cloud engine says a job changed state: collect and finish it, once. Returns what happened."""
    job = read_job(services.store, name)
    if job is None:
        return "unknown job"
    if job.state != JobState.TRANSCRIBING:
        return "already handled"
    complete_transcription(services, services.transcriber.collect(name), now)
    return "completed"
