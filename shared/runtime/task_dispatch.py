"""Running one task, within the request the queue made for it: each kind is a step of a flow.

Every step is idempotent: Cloud Tasks delivers at least once, so a task that runs twice finds its
work done (a job past `transcribing`, a delivery `delivered` or `failed`) and changes nothing.
A delivery makes one attempt per run; while attempts are left a failure raises Retry (a 503), and
the queue's own backoff decides when the next run comes. A step that fails on the last attempt is
given up here, where it can still be told: one `task.exhausted` log line and a problem, answered
with a 2xx so the queue runs it no more (Cloud Tasks would drop it without a word).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from shared.core.errors import BadRequest
from shared.core.identifiers import CONVERSATION_ID, RECORDING_ID, is_shaped
from shared.core.operations import ProblemKind
from shared.core.ports import TranscriptionJob
from shared.core.tasks import Task
from shared.flows.pin_calls import PromptServices, deliver_callback, settle_after_hang_up
from shared.flows.problems import clear_problem, note_exhausted_task
from shared.flows.recording_outcomes import settle_recordings
from shared.flows.results import deliver_result
from shared.flows.stitching import STITCH_TASK, conversation_of, stitch_recording
from shared.flows.sweep import SweepServices, run_sweep
from shared.flows.transcription import (
    DEADLINE_TASK,
    TRANSCRIBE_TASK,
    RecordedCallServices,
    read_transcription_request,
    run_deadline,
    run_transcription,
    transcribe_task,
)
from shared.flows.vonage_transcription import VONAGE_TRANSCRIPT_TASK, collect_vonage_transcript

__all__ = ["TaskServices", "run_task"]

# More attempts than any chain has engines is no attempt of ours.
MAX_ATTEMPTS = 8


class TaskServices(RecordedCallServices, PromptServices, SweepServices, Protocol):
    pass


def _attempt(task: Task) -> tuple[TranscriptionJob, int]:
    """A transcribe (or deadline) task's job and attempt, named as transcribe_task names them."""
    job, attempt = read_transcription_request(task.payload), task.payload.get("attempt", 0)
    if not isinstance(attempt, int) or isinstance(attempt, bool) or not 0 <= attempt < MAX_ATTEMPTS:
        raise BadRequest("a transcribe task's attempt must be a small whole number")
    if transcribe_task(job, attempt, kind=task.kind).key != task.key:
        raise BadRequest("a transcribe task's key must name its job and attempt")
    return job, attempt


def _ids(task: Task) -> tuple[str, str]:
    conversation_uuid, recording_uuid = task.payload.get("conversation_uuid"), task.payload.get("recording_uuid")
    if not is_shaped(conversation_uuid, CONVERSATION_ID) or not is_shaped(recording_uuid, RECORDING_ID):
        raise BadRequest("a deliver-result task names its conversation and recording")
    return conversation_uuid, recording_uuid


def _conversation(task: Task) -> str:
    conversation_uuid = task.payload.get("conversation_uuid")
    if not is_shaped(conversation_uuid, CONVERSATION_ID):
        raise BadRequest(f"a {task.kind} task names its conversation")
    return conversation_uuid


def run_task(services: TaskServices, task: Task, attempt: int, now: float) -> str:
    """Run `task`'s step; `attempt` counts from 1. Returns what happened; on the last attempt a
    failure is given up (and told) instead of raised."""
    final = attempt >= services.settings.delivery.attempts
    try:
        result = _run(services, task, attempt, final, now)
    except Exception as err:
        if not final:
            raise
        note_exhausted_task(services.store, task, attempt, f"{type(err).__name__}: {err}", now)
        return "given up"
    if task.rerun:
        # The same work run again from the Problems page has now succeeded.
        clear_problem(services.store, ProblemKind.TASK, replace(task, rerun=0).name)
    return result


def _run(services: TaskServices, task: Task, attempt: int, final: bool, now: float) -> str:
    if task.kind == TRANSCRIBE_TASK:
        job, number = _attempt(task)
        return run_transcription(services, job, now, number)
    if task.kind == DEADLINE_TASK:
        job, number = _attempt(task)
        return run_deadline(services, job, now, number)
    if task.kind == VONAGE_TRANSCRIPT_TASK:
        return collect_vonage_transcript(services, task, final=final, now=now)
    if task.kind == "deliver-result":
        return deliver_result(services, *_ids(task), attempt=attempt, final=final, now=now)
    if task.kind == "deliver-callback":
        return deliver_callback(services, task.key, attempt=attempt, final=final, now=now)
    if task.kind == "settle-hangup":
        return settle_after_hang_up(services, task.key, now)
    if task.kind == "settle-recordings":
        return str(settle_recordings(services, _conversation(task), now))
    if task.kind == "sweep":
        return run_sweep(services, now).describe()
    if task.kind == STITCH_TASK:
        return stitch_recording(services.store, conversation_of(task), now)
    raise BadRequest(f"no step runs tasks of kind {task.kind}")
