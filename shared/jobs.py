"""Transcription jobs of recorded calls: the recording webhook, its seal, and the job document.

A job is one JSON document under `jobs/`, keyed on Vonage's recording_uuid, so a webhook that
Vonage delivers again finds its job already there and starts nothing new.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from shared.calls import CALL_DOCUMENT, call_key, check_conversation_uuid, new_call
from shared.documents import read_json, update_json
from shared.errors import BadRequest, PreconditionFailed
from shared.ports import BlobStore, Recordings
from shared.settings import Settings
from shared.tokens import sign_caller, verify_caller

__all__ = [
    "AUDIO_CONTENT_TYPES",
    "JOB_PREFIX",
    "RecordingWebhook",
    "claim_job",
    "job_key",
    "job_name",
    "media_format_of",
    "new_job",
    "read_job",
    "read_recording_webhook",
    "recording_event_url",
    "set_job",
    "store_recording",
]

log = logging.getLogger(__name__)

# Every job this deployment starts is named with this prefix; cloud events for others are ignored.
JOB_PREFIX = "tapedeck-"
_RECORDING_UUID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
_FLOW_TAGS = {"voicemail": "vm", "conversation": "cv"}
AUDIO_CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg"}


def job_name(flow: str, recording_uuid: str) -> str:
    return f"{JOB_PREFIX}{_FLOW_TAGS[flow]}-{recording_uuid}"


def job_key(name: str) -> str:
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
    caller: str
    called: str


def read_recording_webhook(settings: Settings, params: Mapping[str, Any]) -> RecordingWebhook:
    """The recording webhook's fields, with the numbers from its sealed eventUrl checked."""
    recording_uuid = params.get("recording_uuid")
    if not isinstance(recording_uuid, str) or not _RECORDING_UUID.match(recording_uuid):
        raise BadRequest("recording_uuid is missing or malformed")
    url = params.get("recording_url", "")
    if not isinstance(url, str):
        raise BadRequest("recording_url must be a string")
    try:
        size = int(params.get("size", 0) or 0)
    except (TypeError, ValueError) as err:
        raise BadRequest("size must be a number") from err
    conversation_uuid = check_conversation_uuid(params.get("conversation_uuid"))
    caller, called, signature = (params.get(k, "") for k in ("caller", "to", "sig"))
    if not all(isinstance(v, str) for v in (caller, called, signature)):
        raise BadRequest("caller, to and sig must be strings")
    # The seal binds both numbers to this conversation: a webhook for another one is refused.
    verify_caller(settings.stream_token_secret, conversation_uuid, f"{caller}|{called}", signature)
    return RecordingWebhook(conversation_uuid, recording_uuid, url, size, caller, called)


def new_job(
    flow: str, hook: RecordingWebhook, recipients: tuple[str, ...], language: str, now: float
) -> dict[str, Any]:
    """The job document of a recording, before anything is done with it."""
    return {
        "name": job_name(flow, hook.recording_uuid),
        "flow": flow,
        "conversation_uuid": hook.conversation_uuid,
        "recording_uuid": hook.recording_uuid,
        "caller": hook.caller,
        "called": hook.called,
        "recipients": list(recipients),
        "language": language,
        "state": "received",
        "received_at": now,
    }


def claim_job(store: BlobStore, job: Mapping[str, Any]) -> bool:
    """Create the job document; False when an earlier delivery of the webhook got past receiving."""
    key = job_key(job["name"])
    try:
        store.write(key, json.dumps(job).encode(), "application/json", if_generation_match=0)
    except PreconditionFailed:
        existing = read_json(store, key) or {}
        if existing.get("state") == "received":
            return True
        log.info("duplicate recording webhook", extra={"call": job["conversation_uuid"], "job": job["name"]})
        return False
    return True


def read_job(store: BlobStore, name: str) -> dict[str, Any] | None:
    return read_json(store, job_key(name))


def set_job(store: BlobStore, name: str, **fields: Any) -> None:
    update_json(store, job_key(name), lambda doc: doc.update(fields), lambda: {"name": name})


def media_format_of(data: bytes) -> str:
    """Vonage records WAV or MP3; the bytes say which."""
    return "wav" if data[:4] == b"RIFF" else "mp3"


def store_recording(
    store: BlobStore, recordings: Recordings, hook: RecordingWebhook, stem: str, flow: str, job: str
) -> tuple[str, str, bytes]:
    """Download the recording into `calls/<id>/<stem>.<ext>` and note it in call.json.

    Returns the object's key, its format and its bytes.
    """
    data = recordings.download(hook.recording_url)
    media_format = media_format_of(data)
    audio_key = call_key(hook.conversation_uuid, f"{stem}.{media_format}")
    store.write(audio_key, data, AUDIO_CONTENT_TYPES[media_format])
    entry = {"recording_uuid": hook.recording_uuid, "object": audio_key, "bytes": len(data), "job": job}
    update_json(
        store,
        call_key(hook.conversation_uuid, CALL_DOCUMENT),
        lambda doc: doc.update({"flow": flow, flow: entry}),
        lambda: new_call(hook.conversation_uuid),
    )
    return audio_key, media_format, data
