"""Recorded two-party (or more) calls: one channel per party, transcribed into a dialogue and delivered."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Protocol

from shared.config.routes import Route
from shared.core.call_record import Flow, call_key
from shared.core.errors import TapedeckError
from shared.core.job_record import Job, JobState
from shared.core.pager import fit_sms
from shared.core.ports import Transcript, TranscriptionJob
from shared.core.transcripts import (
    TranscriptModel,
    Turn,
    build_turns,
    format_channel_text,
    format_dialogue,
    format_webvtt,
    parse_transcript,
)
from shared.core.transcripts import transcript_document as model_document
from shared.flows.calls import note_transcript
from shared.flows.jobs import RecordingWebhook, new_job, run_claimed, set_job, store_recording
from shared.flows.needs import HasHttp, HasQueue
from shared.flows.notify import audio_link, text_once
from shared.flows.redactions import (
    engine_job,
    redacted_model_document,
    store_redacted_audio,
    store_unredacted,
    unredacted_key,
)
from shared.flows.results import claim_result
from shared.flows.voicemail import VoicemailServices

__all__ = ["FLOW", "finish_conversation", "receive_conversation"]

log = logging.getLogger(__name__)

FLOW = Flow.CONVERSATION
# How many dialogue lines the SMS summary starts with, before it is cut to fit.
SUMMARY_LINES = 3


class ConversationServices(VoicemailServices, HasHttp, HasQueue, Protocol):
    pass


def receive_conversation(
    services: ConversationServices, hook: RecordingWebhook, route: Route, now: float
) -> TranscriptionJob | None:
    """Store the call's recording once per recording_uuid and say what to transcribe.

    Returns None for a duplicate delivery, or for an empty recording (reported at once).
    """
    job_doc = new_job(services.settings, FLOW, hook, route, now)
    job_doc.labels, job_doc.channels = list(route.channel_labels()), route.channels
    job_doc.result_webhook = route.result_webhook
    return run_claimed(services.store, job_doc, lambda: _store_conversation(services, hook, route, job_doc, now))


def _store_conversation(
    services: ConversationServices, hook: RecordingWebhook, route: Route, job_doc: Job, now: float
) -> TranscriptionJob | None:
    if hook.empty:
        set_job(services.store, job_doc.name, lambda job: job.move(JobState.NO_RECORDING))
        failed = Transcript(job_doc.name, "failed", "", failure="Vonage delivered an empty recording")
        finish_conversation(services, job_doc, failed, now)
        return None
    store, name = services.store, job_doc.name
    audio_key, media_format, data = store_recording(
        store, services.recordings, hook, stem="conversation", flow=FLOW, job=name, now=now
    )
    set_job(store, name, lambda job: job.move(JobState.TRANSCRIBING, audio_key=audio_key))
    return engine_job(name, audio_key, media_format, route, _channels_in(data, media_format))


def _channels_in(data: bytes, media_format: str) -> int:
    """The recording's own channel count: what the engine is told, whatever the route said."""
    from shared.core.audio import probe_audio

    try:
        return probe_audio(data, media_format).channels
    except TapedeckError:
        return 1  # the engine reports the failure to decode


def finish_conversation(services: ConversationServices, job: Job, transcript: Transcript, now: float) -> None:
    """Write transcript.json, .txt and .vtt beside the audio, then deliver the result once."""
    store = services.store
    labels, expected = job.labels or [], int(job.channels or 2)
    if transcript.status == "completed":
        model = parse_transcript(transcript.document or {}, labels, expected)
    else:
        failure = f"transcription failed: {transcript.failure or 'no reason given'}"
        model = TranscriptModel(engine="none", channels=(), notes=(failure,))
    head = {"status": transcript.status, "conversation_uuid": job.conversation_uuid}
    head["recording_uuid"] = job.recording_uuid
    # The language heard: the one the engine identified among the route's, or the route's own.
    head["language"] = transcript.language or job.language
    prefix = call_key(job.conversation_uuid, "transcript")
    route, audio_key = services.settings.routes.for_number(job.called), job.audio_key
    turns = build_turns(model)
    document = {**head, **model_document(model, turns)}
    if route.redact:
        if route.keep_unredacted:
            store_unredacted(store, prefix, document, _conversation_text(model, turns))
            if transcript.document:
                store.write(unredacted_key(prefix, "engine.json"), json.dumps(transcript.document).encode())
        redacted = redacted_model_document(model, route.redact, head)
        model, document = redacted.model or model, redacted.document
        turns = build_turns(model)
        if audio_key:
            audio_key = store_redacted_audio(store, audio_key, redacted.spans, keep=route.keep_unredacted)
    elif transcript.document:
        store.write(f"{prefix}.engine.json", json.dumps(transcript.document).encode(), "application/json")
    dialogue = format_dialogue(turns)
    store.write(f"{prefix}.json", json.dumps(document, indent=2).encode(), "application/json")
    store.write(f"{prefix}.txt", _conversation_text(model, turns).encode(), "text/plain; charset=utf-8")
    store.write(f"{prefix}.vtt", format_webvtt(turns).encode(), "text/vtt; charset=utf-8")
    note_transcript(store, job.conversation_uuid, dialogue, now)
    set_job(store, job.name, lambda done: done.move(JobState.TRANSCRIBED, transcript_status=transcript.status))
    link = audio_link(services.settings, store, audio_key, now)
    _send_summary(services, job, dialogue, link, failed=transcript.status != "completed", now=now)
    _post_result(services, job, document, link)


def _conversation_text(model: TranscriptModel, turns: list[Turn]) -> str:
    """transcript.txt: the dialogue, then each channel."""
    dialogue = format_dialogue(turns)
    return f"{dialogue}\n\n{format_channel_text(model)}\n" if turns else f"{format_channel_text(model)}\n"


def _send_summary(
    services: ConversationServices, job: Job, dialogue: str, link: str | None, *, failed: bool, now: float
) -> None:
    if not job.recipients:
        return
    caller = job.caller or "withheld"
    head = f"[Call from {'+' + caller if caller.isdigit() else caller}]"
    if failed:
        body = "Transcription failed."
    else:
        body = "\n".join(dialogue.splitlines()[:SUMMARY_LINES]) or "Nothing was said."
    settings = services.settings
    sent = text_once(services.store, services.messenger, settings.vonage.sms_from, job, fit_sms(head, body, link), now)
    log.info("summary sent", extra={"job": job.name, "recipients": sent})


def _post_result(services: ConversationServices, job: Job, document: Mapping[str, object], link: str | None) -> None:
    """Deliver the transcript to the route's result webhook, once per recording."""
    if not job.result_webhook:
        return
    payload: dict[str, object] = {
        "event": "transcript",
        "conversation_uuid": job.conversation_uuid,
        "recording_uuid": job.recording_uuid,
        "caller": job.caller,
        "called": job.called,
        "audio_url": link,
        "transcript": document,
        # Which engine's transcript this is, the language it heard, and what was tried first.
        "engine": job.engine,
        "language": job.detected_language or job.language,
        "attempts": job.attempts or [],
    }
    claim_result(services, job.conversation_uuid, job.recording_uuid, job.result_webhook, payload)
