"""Recorded two-party (or more) calls: one channel per party, transcribed into a dialogue and delivered."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from shared.config.routes import Route
from shared.core.call_record import call_key
from shared.core.errors import TapedeckError
from shared.core.pager import fit_sms
from shared.core.ports import TaskQueue, Transcript, TranscriptionJob
from shared.core.tasks import Retry, Task
from shared.core.transcripts import (
    TranscriptModel,
    build_turns,
    format_channel_text,
    format_dialogue,
    format_webvtt,
    parse_transcript,
)
from shared.core.transcripts import transcript_document as model_document
from shared.flows.delivery import HttpClient, attempt_record, deliver_once, take_attempt
from shared.flows.documents import claim_once, read_json, update_json
from shared.flows.jobs import RecordingWebhook, new_job, run_claimed, set_job, store_recording
from shared.flows.notify import audio_link, text_once
from shared.flows.voicemail import VoicemailServices

__all__ = ["FLOW", "deliver_result", "finish_conversation", "receive_conversation"]

log = logging.getLogger(__name__)

FLOW = "conversation"
# How many dialogue lines the SMS summary starts with, before it is cut to fit.
SUMMARY_LINES = 3


class ConversationServices(VoicemailServices, Protocol):
    @property
    def http(self) -> HttpClient: ...
    @property
    def queue(self) -> TaskQueue: ...


def receive_conversation(
    services: ConversationServices, hook: RecordingWebhook, route: Route, now: float
) -> TranscriptionJob | None:
    """Store the call's recording once per recording_uuid and say what to transcribe.

    Returns None for a duplicate delivery, or for an empty recording (reported at once).
    """
    job_doc = new_job(FLOW, hook, route.recipients, route.language, now)
    job_doc.update(labels=list(route.channel_labels()), channels=route.channels, result_webhook=route.result_webhook)
    return run_claimed(services.store, job_doc, lambda: _store_conversation(services, hook, route, job_doc, now))


def _store_conversation(
    services: ConversationServices, hook: RecordingWebhook, route: Route, job_doc: dict[str, Any], now: float
) -> TranscriptionJob | None:
    store, name = services.store, job_doc["name"]
    if not hook.recording_url or hook.size == 0:
        set_job(store, name, state="no-recording")
        failed = Transcript(name, "failed", "", failure="Vonage delivered an empty recording")
        finish_conversation(services, job_doc, failed, now)
        return None
    audio_key, media_format, data = store_recording(store, services.recordings, hook, "conversation", FLOW, name)
    set_job(store, name, state="transcribing", audio_key=audio_key)
    return TranscriptionJob(name, audio_key, media_format, route.language, channels=_channels_in(data, media_format))


def _channels_in(data: bytes, media_format: str) -> int:
    """The recording's own channel count: what the engine is told, whatever the route said."""
    from shared.core.audio import probe_audio

    try:
        return probe_audio(data, media_format).channels
    except TapedeckError:
        return 1  # the engine reports the failure to decode


def finish_conversation(
    services: ConversationServices, job: Mapping[str, Any], transcript: Transcript, now: float
) -> None:
    """Write transcript.json, .txt and .vtt beside the audio, then deliver the result once."""
    store = services.store
    labels, expected = job.get("labels", []), int(job.get("channels", 2))
    if transcript.status == "completed":
        model = parse_transcript(transcript.document or {}, labels, expected)
    else:
        failure = f"transcription failed: {transcript.failure or 'no reason given'}"
        model = TranscriptModel(engine="none", channels=(), notes=(failure,))
    turns = build_turns(model)
    document = {
        "status": transcript.status,
        "conversation_uuid": job["conversation_uuid"],
        "recording_uuid": job["recording_uuid"],
        **model_document(model, turns),
    }
    prefix = call_key(job["conversation_uuid"], "")
    dialogue = format_dialogue(turns)
    text = f"{dialogue}\n\n{format_channel_text(model)}\n" if turns else f"{format_channel_text(model)}\n"
    store.write(f"{prefix}transcript.json", json.dumps(document, indent=2).encode(), "application/json")
    store.write(f"{prefix}transcript.txt", text.encode(), "text/plain; charset=utf-8")
    store.write(f"{prefix}transcript.vtt", format_webvtt(turns).encode(), "text/vtt; charset=utf-8")
    if transcript.document:
        store.write(f"{prefix}transcript.engine.json", json.dumps(transcript.document).encode(), "application/json")
    set_job(store, job["name"], state="transcribed", transcript_status=transcript.status)
    link = audio_link(services.settings, store, job.get("audio_key"), now)
    _send_summary(services, job, dialogue, link, failed=transcript.status != "completed")
    _post_result(services, job, document, link)


def _send_summary(
    services: ConversationServices, job: Mapping[str, Any], dialogue: str, link: str | None, failed: bool
) -> None:
    recipients = job.get("recipients") or []
    if not recipients:
        return
    caller = job.get("caller") or "withheld"
    head = f"[Call from {'+' + caller if caller.isdigit() else caller}]"
    if failed:
        body = "Transcription failed."
    else:
        body = "\n".join(dialogue.splitlines()[:SUMMARY_LINES]) or "Nothing was said."
    settings = services.settings
    sent = text_once(
        services.store,
        services.messenger,
        settings.sms_from,
        job["conversation_uuid"],
        job["recording_uuid"],
        recipients,
        fit_sms(head, body, link),
    )
    log.info("summary sent", extra={"job": job["name"], "recipients": sent})


def _delivery_key(conversation_uuid: str, recording_uuid: str) -> str:
    return call_key(conversation_uuid, f"deliveries/{recording_uuid}.json")


def _post_result(
    services: ConversationServices, job: Mapping[str, Any], document: Mapping[str, Any], link: str | None
) -> None:
    """Claim the result's delivery once per recording and hand it to the queue, which makes the attempts."""
    url = job.get("result_webhook")
    if not url:
        return
    conversation_uuid, recording_uuid = job["conversation_uuid"], job["recording_uuid"]
    payload = {
        "event": "transcript",
        "conversation_uuid": conversation_uuid,
        "recording_uuid": recording_uuid,
        "caller": job.get("caller", ""),
        "called": job.get("called", ""),
        "audio_url": link,
        "transcript": document,
    }
    claim = {"url": url, "state": "sending", "attempts": 0, "payload": payload}
    key = _delivery_key(conversation_uuid, recording_uuid)
    if not claim_once(services.store, key, claim):
        existing = read_json(services.store, key) or {}
        if existing.get("state") != "sending":
            log.info("result already delivered", extra={"job": job["name"]})
            return
        # Claimed, and perhaps never queued (the claiming request died in between): queue it again;
        # a task of the same name already queued makes this a no-op.
    keys = {"conversation_uuid": conversation_uuid, "recording_uuid": recording_uuid}
    services.queue.enqueue(Task("deliver-result", recording_uuid, keys))


def deliver_result(
    services: ConversationServices, conversation_uuid: str, recording_uuid: str, attempt: int, final: bool, now: float
) -> str:
    """One attempt at the result webhook, its outcome kept in the claim; Retry while attempts are left."""
    key = _delivery_key(conversation_uuid, recording_uuid)
    if read_json(services.store, key) is None:
        return "nothing to deliver"
    taken = False

    def take(record: dict[str, Any]) -> None:
        nonlocal taken
        taken = take_attempt(record, attempt)

    claim = update_json(services.store, key, take, dict)
    if not taken:
        return f"nothing to send (result {claim.get('state')})"
    settings = services.settings
    outcome = deliver_once(
        services.http,
        settings.delivery_policy,
        settings.callback_secret,
        claim["url"],
        "POST",
        claim["payload"],
        False,
        attempt=attempt,
        now=now,
    )
    state, fields = attempt_record(outcome, final, now)
    update_json(services.store, key, lambda record: record.update(fields), dict)
    if state == "retrying":
        raise Retry(f"result webhook not delivered yet: {outcome.error}")
    if state == "failed":
        log.error("result not delivered", extra={"call": conversation_uuid, "error": outcome.error})
    return state
