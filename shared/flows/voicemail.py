"""The voicemail pager: record a message, transcribe it, page the mailbox's owners by SMS."""

from __future__ import annotations

import json
import logging
from typing import Protocol

from shared.config.routes import Route
from shared.config.settings import Settings
from shared.core.call_record import Flow, call_key
from shared.core.errors import TapedeckError
from shared.core.job_record import Job, JobState
from shared.core.pager import build_pager_text
from shared.core.ports import BlobStore, Messenger, Recordings, Transcript, TranscriptionJob
from shared.flows.jobs import RecordingWebhook, new_job, run_claimed, set_job, store_recording
from shared.flows.notify import audio_link, text_once

__all__ = ["FLOW", "NO_MESSAGE", "VoicemailServices", "finish_voicemail", "receive_voicemail"]

log = logging.getLogger(__name__)

FLOW = Flow.VOICEMAIL
# Below this peak amplitude (of 32767) a recording is treated as silence: no words to transcribe.
SILENCE_PEAK = 200
NO_MESSAGE = "Caller left no message"
FAILED = "Transcription failed"


class VoicemailServices(Protocol):
    @property
    def settings(self) -> Settings: ...
    @property
    def store(self) -> BlobStore: ...
    @property
    def messenger(self) -> Messenger: ...
    @property
    def recordings(self) -> Recordings: ...


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
    job_doc = new_job(FLOW, hook, route.recipients, route.language, now)
    return run_claimed(services.store, job_doc, lambda: _store_message(services, hook, route, job_doc, now))


def _store_message(
    services: VoicemailServices, hook: RecordingWebhook, route: Route, job_doc: Job, now: float
) -> TranscriptionJob | None:
    store, name = services.store, job_doc.name
    if not hook.recording_url or hook.size == 0:
        set_job(store, name, lambda job: job.move(JobState.NO_MESSAGE))
        _page(services, job_doc, NO_MESSAGE, audio_key=None, now=now)
        return None
    audio_key, media_format, data = store_recording(
        store, services.recordings, hook, stem="message", flow=FLOW, job=name
    )
    if _is_silent(data, media_format):
        set_job(store, name, lambda job: job.move(JobState.NO_MESSAGE, audio_key=audio_key))
        _page(services, job_doc, NO_MESSAGE, audio_key=audio_key, now=now)
        return None
    set_job(store, name, lambda job: job.move(JobState.TRANSCRIBING, audio_key=audio_key))
    return TranscriptionJob(name, audio_key, media_format, route.language)


def finish_voicemail(services: VoicemailServices, job: Job, transcript: Transcript, now: float) -> None:
    """Store the transcript beside the audio and page the owners."""
    store = services.store
    prefix = call_key(job.conversation_uuid, "")
    document = transcript.document or {"text": transcript.text}
    store.write(f"{prefix}transcript.json", json.dumps(document, indent=2).encode(), "application/json")
    store.write(f"{prefix}transcript.txt", (transcript.text + "\n").encode(), "text/plain; charset=utf-8")
    if transcript.status != "completed":
        message = FAILED
    elif not transcript.text.strip():
        message = NO_MESSAGE
    else:
        message = transcript.text
    set_job(
        store, transcript.job_name, lambda done: done.move(JobState.TRANSCRIBED, transcript_status=transcript.status)
    )
    _page(services, job, message, audio_key=job.audio_key, now=now)


def _page(services: VoicemailServices, job: Job, message: str, audio_key: str | None, now: float) -> None:
    """Send the page to each recipient exactly once, however often this runs."""
    settings, store = services.settings, services.store
    text = build_pager_text(job.caller, message, audio_link(settings, store, audio_key, now))
    sent = text_once(store, services.messenger, settings.vonage.sms_from, job, text)
    set_job(store, job.name, lambda paged: paged.move(JobState.PAGED, paged=sent))
    log.info("paged", extra={"job": job.name, "recipients": sent})
