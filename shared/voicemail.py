"""The voicemail pager: record a message, transcribe it, page the mailbox's owners by SMS."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from shared.calls import CALL_DOCUMENT, call_key, check_conversation_uuid, new_call
from shared.documents import read_json, update_json
from shared.errors import BadRequest, PreconditionFailed, TapedeckError
from shared.links import create_link
from shared.pager import build_pager_text
from shared.ports import BlobStore, Messenger, Recordings, TextMessage, Transcriber, Transcript, TranscriptionJob
from shared.settings import Settings
from shared.tokens import sign_caller, verify_caller

__all__ = [
    "JOB_PREFIX",
    "VoicemailServices",
    "complete_transcription",
    "job_name",
    "receive_recording",
    "recording_event_url",
]

log = logging.getLogger(__name__)

JOB_PREFIX = "tapedeck-vm-"
_RECORDING_UUID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
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
    def transcriber(self) -> Transcriber: ...
    @property
    def messenger(self) -> Messenger: ...
    @property
    def recordings(self) -> Recordings: ...


def job_name(recording_uuid: str) -> str:
    return f"{JOB_PREFIX}{recording_uuid}"


def _job_key(name: str) -> str:
    return f"jobs/{name}.json"


def recording_event_url(settings: Settings, conversation_uuid: str, caller: str, called: str) -> str:
    """The record eventUrl: the `recording` function, with the caller's and the called number
    (Vonage's recording webhook carries neither) sealed to this conversation."""
    signature = sign_caller(settings.stream_token_secret, conversation_uuid, f"{caller}|{called}")
    return (
        f"{settings.public_url}/recording?caller={quote(caller, safe='')}&to={quote(called, safe='')}&sig={signature}"
    )


@dataclass(frozen=True)
class RecordingWebhook:
    conversation_uuid: str
    recording_uuid: str
    recording_url: str
    size: int


def parse_recording_webhook(params: Mapping[str, Any]) -> RecordingWebhook:
    recording_uuid = params.get("recording_uuid")
    if not isinstance(recording_uuid, str) or not _RECORDING_UUID.match(recording_uuid):
        raise BadRequest("recording_uuid is missing or malformed")
    url = params.get("recording_url", "")
    if not isinstance(url, str):
        raise BadRequest("recording_url must be a string")
    size = params.get("size", 0)
    try:
        size = int(size or 0)
    except (TypeError, ValueError) as err:
        raise BadRequest("size must be a number") from err
    return RecordingWebhook(check_conversation_uuid(params.get("conversation_uuid")), recording_uuid, url, size)


def _format_of(data: bytes) -> str:
    return "wav" if data[:4] == b"RIFF" else "mp3"


def _is_silent(data: bytes, media_format: str) -> bool:
    from shared.audio import decode_audio

    try:
        _, channels = decode_audio(data, media_format)
    except TapedeckError:
        return False  # let the engine try, and report a failure if it cannot
    import numpy as np

    return all(
        not pcm or int(np.abs(np.frombuffer(pcm, "<i2").astype(np.int32)).max()) < SILENCE_PEAK for pcm in channels
    )


def receive_recording(services: VoicemailServices, params: Mapping[str, Any], now: float) -> TranscriptionJob | None:
    """Store a voicemail recording once per recording_uuid and start its transcription.

    Returns the job to run (the caller may run it in the background), or None when there is
    nothing more to do: a duplicate delivery, or no message to transcribe (already paged).
    """
    hook = parse_recording_webhook(params)
    settings, store = services.settings, services.store
    caller, called, signature = (params.get(k, "") for k in ("caller", "to", "sig"))
    if not all(isinstance(v, str) for v in (caller, called, signature)):
        raise BadRequest("caller, to and sig must be strings")
    # The seal binds both numbers to this conversation: a webhook for another one is refused.
    verify_caller(settings.stream_token_secret, hook.conversation_uuid, f"{caller}|{called}", signature)
    route = settings.routes.for_number(called)
    name = job_name(hook.recording_uuid)
    job_doc = {
        "name": name,
        "conversation_uuid": hook.conversation_uuid,
        "recording_uuid": hook.recording_uuid,
        "caller": caller,
        "recipients": list(route.recipients),
        "language": route.language,
        "state": "received",
        "received_at": now,
    }
    try:
        # Keyed on recording_uuid: Vonage's retries find the job already there and start nothing.
        store.write(_job_key(name), json.dumps(job_doc).encode(), "application/json", if_generation_match=0)
    except PreconditionFailed:
        existing = read_json(store, _job_key(name)) or {}
        if existing.get("state") != "received":
            log.info("duplicate recording webhook", extra={"call": hook.conversation_uuid, "job": name})
            return None
    if not hook.recording_url or hook.size == 0:
        _set_job(store, name, state="no-message")
        _page(services, job_doc, NO_MESSAGE, audio_key=None, now=now)
        return None
    data = services.recordings.download(hook.recording_url)
    media_format = _format_of(data)
    audio_key = call_key(hook.conversation_uuid, f"message.{media_format}")
    store.write(audio_key, data, "audio/wav" if media_format == "wav" else "audio/mpeg")
    update_json(
        store,
        call_key(hook.conversation_uuid, CALL_DOCUMENT),
        lambda doc: doc.update(
            flow="voicemail",
            voicemail={"recording_uuid": hook.recording_uuid, "object": audio_key, "bytes": len(data), "job": name},
        ),
        lambda: new_call(hook.conversation_uuid),
    )
    if _is_silent(data, media_format):
        _set_job(store, name, state="no-message", audio_key=audio_key)
        _page(services, job_doc, NO_MESSAGE, audio_key=audio_key, now=now)
        return None
    _set_job(store, name, state="transcribing", audio_key=audio_key)
    return TranscriptionJob(name, audio_key, media_format, route.language)


def run_transcription(services: VoicemailServices, job: TranscriptionJob, now: float) -> None:
    """Start the engine; an engine that finishes in-process goes straight to completion."""
    transcript = services.transcriber.start(job)
    if transcript is not None:
        complete_transcription(services, transcript, now)


def complete_transcription(services: VoicemailServices, transcript: Transcript, now: float) -> bool:
    """Store the transcript beside the audio and page the owners; False for a job not ours."""
    store = services.store
    job = read_json(store, _job_key(transcript.job_name))
    if job is None:
        log.warning("transcript for an unknown job", extra={"job": transcript.job_name})
        return False
    prefix = call_key(job["conversation_uuid"], "")
    document = transcript.document or {"text": transcript.text}
    store.write(f"{prefix}transcript.json", json.dumps(document, indent=2).encode(), "application/json")
    store.write(f"{prefix}transcript.txt", (transcript.text + "\n").encode(), "text/plain; charset=utf-8")
    if transcript.status != "completed":
        message = FAILED
    elif not transcript.text.strip():
        message = NO_MESSAGE
    else:
        message = transcript.text
    _set_job(store, transcript.job_name, state="transcribed", transcript_status=transcript.status)
    _page(services, job, message, audio_key=job.get("audio_key"), now=now)
    return True


def _set_job(store: BlobStore, name: str, **fields: Any) -> None:
    update_json(store, _job_key(name), lambda doc: doc.update(fields), lambda: {"name": name})


def _page(services: VoicemailServices, job: Mapping[str, Any], message: str, audio_key: str | None, now: float) -> None:
    """Send the page to each recipient exactly once, however often this runs."""
    settings, store = services.settings, services.store
    link = None
    if audio_key:
        link_id = create_link(store, audio_key, now, settings.link_ttl_days)
        link = f"{settings.public_url}/link?id={link_id}"
    text = build_pager_text(job.get("caller", ""), message, link)
    sent = []
    for recipient in job.get("recipients", []):
        claim = call_key(job["conversation_uuid"], f"pages/{job['recording_uuid']}-{recipient}.json")
        try:
            store.write(claim, json.dumps({"to": recipient, "state": "sending"}).encode(), if_generation_match=0)
        except PreconditionFailed:
            continue
        key = f"{job['recording_uuid']}-{recipient}"
        try:
            message_id = services.messenger.send(TextMessage(recipient, settings.sms_from, text), key)
        except TapedeckError as err:
            store.write(claim, json.dumps({"to": recipient, "state": "failed", "error": str(err)}).encode())
            log.error("page not sent", extra={"job": job["name"], "to": recipient, "error": str(err)})
            continue
        store.write(claim, json.dumps({"to": recipient, "state": "sent", "id": message_id, "text": text}).encode())
        sent.append(recipient)
    _set_job(store, job["name"], state="paged", paged=sent)
    log.info("paged", extra={"job": job["name"], "recipients": sent})


def transcribe_in_background(services: VoicemailServices, job: TranscriptionJob, now: float) -> None:
    """Run a job; if the engine breaks, the owners are still paged, with "transcription failed"."""
    try:
        run_transcription(services, job, now)
    except Exception as err:
        log.exception("transcription failed to run", extra={"job": job.name})
        complete_transcription(services, Transcript(job.name, "failed", "", failure=str(err)), now)


def on_transcription_event(services: VoicemailServices, name: str, now: float) -> str:
    """A cloud engine says a job changed state: collect and page, once. Returns what happened."""
    job = read_json(services.store, _job_key(name))
    if job is None:
        return "unknown job"
    if job.get("state") != "transcribing":
        return "already handled"
    complete_transcription(services, services.transcriber.collect(name), now)
    return "completed"
