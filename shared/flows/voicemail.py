"""The voicemail pager: record a message, transcribe it, page the mailbox's owners by SMS."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from shared.config.routes import Route
from shared.config.settings import Settings
from shared.core import ncco
from shared.core.call_record import Flow, call_key, check_conversation_uuid
from shared.core.errors import TapedeckError
from shared.core.job_record import Job, JobState
from shared.core.pager import build_pager_text
from shared.core.ports import Transcript, TranscriptionJob
from shared.flows.calls import note_transcript
from shared.flows.jobs import (
    RecordingWebhook,
    claim_job,
    new_job,
    read_sealed_numbers,
    recording_event_url,
    run_claimed,
    set_job,
    store_recording,
)
from shared.flows.needs import HasMessenger, HasRecordings, HasSettings, HasStore
from shared.flows.notify import audio_link, text_once
from shared.flows.redactions import engine_job, redact_document, store_redacted_audio, store_unredacted

__all__ = [
    "FLOW",
    "NO_MESSAGE",
    "LiveMessage",
    "VoicemailServices",
    "finish_voicemail",
    "page_live_message",
    "receive_voicemail",
    "voicemail_fallback",
]

log = logging.getLogger(__name__)

FLOW = Flow.VOICEMAIL
# Below this peak amplitude (of 32767) a recording is treated as silence: no words to transcribe.
SILENCE_PEAK = 200
NO_MESSAGE = "Caller left no message"
FAILED = "Transcription failed"


class VoicemailServices(HasSettings, HasStore, HasMessenger, HasRecordings, Protocol):
    pass


def _is_silent(data: bytes, media_format: str) -> bool:
    from shared.core.audio import decode_audio

    try:
        _, channels = decode_audio(data, media_format)
    except TapedeckError:
        return False  # let the engine try, and report a failure if it cannot
    import numpy as np

    return all(
        not pcm or int(np.abs(np.frombuffer(pcm, "<i2").astype(np.int32)).max()) < SILENCE_PEAK for pcm in channels
    )


def receive_voicemail(
    services: VoicemailServices, hook: RecordingWebhook, route: Route, now: float
) -> TranscriptionJob | None:
    """Store a voicemail recording once per recording_uuid and say what to transcribe.

    Returns None when there is nothing more to do: a duplicate delivery, or no message to
    transcribe (the owners are paged at once).
    """
    job_doc = new_job(services.settings, FLOW, hook, route, now)
    return run_claimed(services.store, job_doc, lambda: _store_message(services, hook, route, job_doc, now))


def _store_message(
    services: VoicemailServices, hook: RecordingWebhook, route: Route, job_doc: Job, now: float
) -> TranscriptionJob | None:
    if hook.empty:
        _no_message(services, job_doc, None, now)
        return None
    store, name = services.store, job_doc.name
    audio_key, media_format, data = store_recording(
        store, services.recordings, hook, stem="message", flow=FLOW, job=name, now=now
    )
    if _is_silent(data, media_format):
        _no_message(services, job_doc, audio_key, now)
        return None
    set_job(store, name, lambda job: job.move(JobState.TRANSCRIBING, audio_key=audio_key))
    return engine_job(name, audio_key, media_format, route)


def _no_message(services: VoicemailServices, job_doc: Job, audio_key: str | None, now: float) -> None:
    """Nothing to transcribe (no recording, or only silence): the owners are paged at once."""
    set_job(services.store, job_doc.name, lambda job: job.move(JobState.NO_MESSAGE, audio_key=audio_key))
    _page(services, job_doc, NO_MESSAGE, audio_key=audio_key, now=now)


def finish_voicemail(services: VoicemailServices, job: Job, transcript: Transcript, now: float) -> None:
    """Store the transcript beside the audio, redacted as the route asks, and page the owners."""
    store = services.store
    prefix = call_key(job.conversation_uuid, "transcript")
    document, text, audio_key = transcript.document or {"text": transcript.text}, transcript.text, job.audio_key
    if transcript.language:
        document = {**document, "language": transcript.language}  # the one the engine identified
    route = services.settings.routes.for_number(job.called)
    if route.redact and transcript.status == "completed":
        if route.keep_unredacted:
            store_unredacted(store, prefix, document, text)
        redacted = redact_document(transcript.document, text, route.redact, {"status": transcript.status})
        document, text = redacted.document, redacted.text
        if job.audio_key:
            audio_key = store_redacted_audio(store, job.audio_key, redacted.spans, keep=route.keep_unredacted)
    store.write(f"{prefix}.json", json.dumps(document, indent=2).encode(), "application/json")
    store.write(f"{prefix}.txt", (text + "\n").encode(), "text/plain; charset=utf-8")
    note_transcript(store, job.conversation_uuid, text, now)
    if transcript.status != "completed":
        message = FAILED
    elif not text.strip():
        message = NO_MESSAGE
    else:
        message = text
    set_job(
        store, transcript.job_name, lambda done: done.move(JobState.TRANSCRIBED, transcript_status=transcript.status)
    )
    _page(services, job, message, audio_key=audio_key, now=now)


def _page(services: VoicemailServices, job: Job, message: str, audio_key: str | None, now: float) -> None:
    """Send the page to each recipient exactly once, however often this runs."""
    settings, store = services.settings, services.store
    text = build_pager_text(job.caller, message, audio_link(settings, store, audio_key, now))
    sent = text_once(store, services.messenger, settings.vonage.sms_from, job, text, now)
    set_job(store, job.name, lambda paged: paged.move(JobState.PAGED, paged=sent))
    log.info("paged", extra={"job": job.name, "recipients": sent})


def voicemail_fallback(settings: Settings, params: Mapping[str, Any]) -> list[ncco.Action] | None:
    """Vonage's synchronous connect event of a live voicemail. If the recorder could not be
    reached, the message is recorded instead, through the recording webhook and the batch path;
    otherwise (the recorder closed the socket) Vonage goes on to the thanks."""
    if params.get("status") not in ("failed", "unanswered"):
        return None
    conversation_uuid = check_conversation_uuid(params.get("conversation_uuid"))
    caller, called = read_sealed_numbers(settings, conversation_uuid, params)
    route = settings.routes.for_number(called)
    log.warning("recorder unreachable: recording the message instead", extra={"call": conversation_uuid})
    recording_url = recording_event_url(settings, conversation_uuid, caller, called)
    return ncco.voicemail_record(language=route.language, max_seconds=route.max_seconds, recording_url=recording_url)


@dataclass(frozen=True)
class LiveMessage:
    """A message taken on the call's stream: where its audio is, and its words if heard live
    (None when the live engine could not hear all of it)."""

    conversation_uuid: str
    session: str
    caller: str
    called: str
    audio_key: str
    media_format: str
    text: str | None


def page_live_message(services: VoicemailServices, message: LiveMessage, now: float) -> TranscriptionJob | None:
    """Page the owners at once from the live words, exactly once per message; without them, say
    what the batch path must transcribe."""
    route = services.settings.routes.for_number(message.called)
    hook = RecordingWebhook(message.conversation_uuid, f"live-{message.session}", "", 0, message.caller, message.called)
    job = new_job(services.settings, FLOW, hook, route, now)
    if not claim_job(services.store, job):
        return None
    store, name, audio_key = services.store, job.name, message.audio_key
    if message.text is None:
        set_job(store, name, lambda held: held.move(JobState.TRANSCRIBING, audio_key=audio_key))
        return engine_job(name, audio_key, message.media_format, route)
    set_job(store, name, lambda held: held.move(JobState.TRANSCRIBED, audio_key=audio_key, transcript_status="live"))
    _page(services, job, message.text.strip() or NO_MESSAGE, audio_key=audio_key, now=now)
    return None
