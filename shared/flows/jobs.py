"""Transcription jobs of recorded calls: the recording webhook, its seal, and the job document.

A job is one JSON document under `jobs/`, keyed on Vonage's recording_uuid, so a webhook that
Vonage delivers again finds its job already there and starts nothing new.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from shared.config.routes import Route
from shared.config.settings import Settings
from shared.core.call_record import (
    CallRecord,
    Flow,
    StoredRecording,
    call_key,
    check_conversation_uuid,
)
from shared.core.errors import BadRequest, Conflict
from shared.core.identifiers import RECORDING_ID, is_shaped
from shared.core.job_record import Job, JobState
from shared.core.payloads import split_url
from shared.core.ports import BlobStore, Recordings, StorageConflict
from shared.core.tokens import sign_caller, verify_caller
from shared.flows.calls import update_call
from shared.flows.documents import claim_once, document_of, read_document, update_document

__all__ = [
    "AUDIO_CONTENT_TYPES",
    "CLAIM_LEASE",
    "FALLBACK_URL_PARAMS",
    "JOB_PREFIX",
    "RECORDING_URL_PARAMS",
    "RecordingWebhook",
    "call_job_names",
    "claim_job",
    "job_key",
    "job_name",
    "media_format_of",
    "new_job",
    "read_job",
    "read_recording_webhook",
    "read_sealed_numbers",
    "recording_event_url",
    "release_job",
    "run_claimed",
    "set_job",
    "store_recording",
    "voicemail_fallback_url",
]

log = logging.getLogger(__name__)

# Every job this deployment starts is named with this prefix; cloud events for others are ignored.
JOB_PREFIX = "tapedeck-"
# The query parameters tapedeck puts in the record eventUrl; the seal covers them.
RECORDING_URL_PARAMS = ("caller", "to", "sig")
# And in a live voicemail's connect eventUrl.
FALLBACK_URL_PARAMS = ("fallback", *RECORDING_URL_PARAMS)
# A job still `received` this long after its claim was claimed by a request that died (a recording
# download takes far less); a redelivery of the webhook may take it over.
CLAIM_LEASE = 900.0
# Vonage's largest recording (7,200 s of 32-channel WAV) is well under this.
_MAX_RECORDING_BYTES = 2**40
_SIZE = re.compile(r"[0-9]{1,15}", re.ASCII)
T = TypeVar("T")
_FLOW_TAGS = {Flow.VOICEMAIL: "vm", Flow.CONVERSATION: "cv"}
_JOB_NAME = re.compile(rf"{JOB_PREFIX}(?:{'|'.join(_FLOW_TAGS.values())})-{RECORDING_ID.pattern}", re.ASCII)
AUDIO_CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg"}


def job_name(flow: Flow, recording_uuid: str) -> str:
    return f"{JOB_PREFIX}{_FLOW_TAGS[flow]}-{recording_uuid}"


def job_key(name: str) -> str:
    return f"jobs/{name}.json"


def call_job_names(call: CallRecord) -> list[str]:
    """Every job a call may have: its voicemail's or conversation's, and each live voicemail session's."""
    names = [stored.job for stored in (call.voicemail, call.conversation) if stored is not None]
    return names + [job_name(Flow.VOICEMAIL, f"live-{entry.session}") for entry in call.recordings]


def _sealed_numbers(settings: Settings, conversation_uuid: str, caller: str, called: str) -> str:
    """`caller=…&to=…&sig=…`: both numbers, sealed to the conversation."""
    signature = sign_caller(settings.stream.token_secret, conversation_uuid, f"{caller}|{called}")
    return f"caller={quote(caller, safe='')}&to={quote(called, safe='')}&sig={signature}"


def recording_event_url(settings: Settings, conversation_uuid: str, caller: str, called: str) -> str:
    """The record eventUrl: the `recording` function, with the caller's and the called number
    (Vonage's recording webhook carries neither) sealed to this conversation."""
    return f"{settings.public_url}/recording?{_sealed_numbers(settings, conversation_uuid, caller, called)}"


def voicemail_fallback_url(settings: Settings, conversation_uuid: str, caller: str, called: str) -> str:
    """A live voicemail's connect eventUrl: the `event` function, which records the message
    instead if the recorder cannot be reached, with the numbers sealed as in the record eventUrl."""
    sealed = _sealed_numbers(settings, conversation_uuid, caller, called)
    return f"{settings.public_url}/event?fallback=voicemail&{sealed}"


def read_sealed_numbers(settings: Settings, conversation_uuid: str, params: Mapping[str, Any]) -> tuple[str, str]:
    """The caller's and the called number from a sealed URL's query, checked against its seal."""
    caller, called, signature = (params.get(k, "") for k in RECORDING_URL_PARAMS)
    if not all(isinstance(v, str) for v in (caller, called, signature)):
        raise BadRequest("caller, to and sig must be strings")
    # The seal binds both numbers to this conversation: a webhook for another one is refused.
    verify_caller(settings.stream.token_secret, conversation_uuid, f"{caller}|{called}", signature)
    return caller, called


@dataclass(frozen=True)
class RecordingWebhook:
    conversation_uuid: str
    recording_uuid: str
    recording_url: str
    size: int
    caller: str
    called: str

    @property
    def empty(self) -> bool:
        """Vonage delivered no recording: no URL, or none of its bytes."""
        return not self.recording_url or self.size == 0


def _size(value: object) -> int:
    """The webhook's `size`: a number in a JSON body, a string in a GET query."""
    if value is None or value == "":
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_RECORDING_BYTES:
        return value
    if is_shaped(value, _SIZE) and int(value) <= _MAX_RECORDING_BYTES:
        return int(value)
    raise BadRequest("size must be a whole number of bytes")


def read_recording_webhook(settings: Settings, params: Mapping[str, Any]) -> RecordingWebhook:
    """The recording webhook's fields, with the numbers from its sealed eventUrl checked."""
    recording_uuid = params.get("recording_uuid")
    if not is_shaped(recording_uuid, RECORDING_ID):
        raise BadRequest("recording_uuid is missing or malformed")
    url = params.get("recording_url", "")
    if not isinstance(url, str):
        raise BadRequest("recording_url must be a string")
    if url:
        split_url(url, "recording_url")
    size = _size(params.get("size"))
    conversation_uuid = check_conversation_uuid(params.get("conversation_uuid"))
    caller, called = read_sealed_numbers(settings, conversation_uuid, params)
    return RecordingWebhook(conversation_uuid, recording_uuid, url, size, caller, called)


def new_job(settings: Settings, flow: Flow, hook: RecordingWebhook, route: Route, now: float) -> Job:
    """The job of a recording, before anything is done with it, with the engines its route tries."""
    return Job(
        name=job_name(flow, hook.recording_uuid),
        flow=flow,
        conversation_uuid=hook.conversation_uuid,
        recording_uuid=hook.recording_uuid,
        caller=hook.caller,
        called=hook.called,
        recipients=list(route.recipients),
        language=route.language,
        state=JobState.RECEIVED,
        received_at=now,
        engines=list(route.engine_chain(settings.transcription.engine)),
    )


def claim_job(store: BlobStore, job: Job) -> bool:
    """Create the job document: the one gate before any download. False for a duplicate delivery.

    The document is created only if absent, so of any number of concurrent deliveries one gets
    True. A job still `received` after CLAIM_LEASE belongs to a request that died; a redelivery
    takes it over with a write conditioned on the generation it read, so again only one does.
    """
    key = job_key(job.name)
    document = job.to_json()
    if claim_once(store, key, document):
        return True
    blob = store.read(key)
    existing = document_of(blob) or {}
    stale = existing.get("state") == JobState.RECEIVED
    if blob is not None and stale and job.received_at - existing.get("received_at", 0) >= CLAIM_LEASE:
        try:
            store.write(key, json.dumps(document).encode(), "application/json", if_generation_match=blob.generation)
            log.warning("took over a stale job claim", extra={"call": job.conversation_uuid, "job": job.name})
            return True
        except StorageConflict:
            pass
    log.info("duplicate recording webhook", extra={"call": job.conversation_uuid, "job": job.name})
    return False


def release_job(store: BlobStore, name: str) -> None:
    """Forget a claim whose request failed, so that Vonage's retry of the webhook starts afresh."""
    store.delete(job_key(name))


def run_claimed(store: BlobStore, job: Job, work: Callable[[], T]) -> T | None:
    """`work()` if this delivery claims the job (None for a duplicate); a failure releases the claim."""
    if not claim_job(store, job):
        return None
    try:
        return work()
    except BaseException:
        release_job(store, job.name)
        raise


def read_job(store: BlobStore, name: str) -> Job | None:
    """The job, or None for a name this deployment never gives a job (a cloud event's)."""
    if not is_shaped(name, _JOB_NAME):
        return None
    return read_document(store, job_key(name), Job)


def set_job(store: BlobStore, name: str, change: Callable[[Job], object]) -> Job | None:
    """Apply `change` to a claimed job and store it; None (and nothing stored) when the job is gone."""
    if read_document(store, job_key(name), Job) is None:
        log.warning("no job to update", extra={"job": name})
        return None
    return update_document(store, job_key(name), Job, change, _gone)


def _gone() -> Job:
    raise Conflict("the job was released while it was being updated")


def media_format_of(data: bytes) -> str:
    """Vonage records WAV or MP3; the bytes say which."""
    return "wav" if data[:4] == b"RIFF" else "mp3"


def store_recording(
    store: BlobStore, recordings: Recordings, hook: RecordingWebhook, *, stem: str, flow: Flow, job: str, now: float
) -> tuple[str, str, bytes]:
    """Download the recording into `calls/<id>/<stem>.<ext>` and note it in call.json.

    Returns the object's key, its format and its bytes.
    """
    data = recordings.download(hook.recording_url)
    media_format = media_format_of(data)
    audio_key = call_key(hook.conversation_uuid, f"{stem}.{media_format}")
    store.write(audio_key, data, AUDIO_CONTENT_TYPES[media_format])
    entry = StoredRecording(hook.recording_uuid, audio_key, len(data), job)

    def stored(call: CallRecord) -> None:
        call.stored_recording(flow, entry)
        # The sealed numbers, for a call whose webhooks never named them: the list shows them, and
        # forgetting a number finds the call by them.
        call.from_, call.to = call.from_ or hook.caller or None, call.to or hook.called or None

    update_call(store, hook.conversation_uuid, stored, now)
    return audio_key, media_format, data
