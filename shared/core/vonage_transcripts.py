"""Vonage's own transcription of a recording: its webhook's fields and its transcript file. Pure.

With `transcription` on a record action, Vonage posts a second webhook once the recording is
transcribed (`status: "transcribed"`, `transcription_url`, no numbers), and serves the transcript as
JSON under /v1/files/ behind the application's JWT, like the recording. The file's shape is known
only from third-party code: `{"ver", "request_id", "channels": [{"duration", "transcript":
[{"sentence", "raw_sentence", "duration", "timestamp", "words": [{"word", "start_time", "end_time",
"confidence"}]}]}]}`, one entry per recorded channel.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.core.errors import BadRequest
from shared.core.identifiers import RECORDING_ID, is_shaped
from shared.core.payloads import split_url
from shared.core.ports import Transcript
from shared.core.transcript_parsers import is_vonage_transcript

__all__ = [
    "TRANSCRIBED",
    "TranscriptionWebhook",
    "is_transcription_webhook",
    "read_transcription_webhook",
    "read_vonage_transcript",
]

# The status of a transcription webhook whose file is ready; no other value has been seen.
TRANSCRIBED = "transcribed"
# Larger than any transcript of Vonage's longest recording (7,200 s), far below memory limits.
MAX_TRANSCRIPT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class TranscriptionWebhook:
    recording_uuid: str
    transcription_url: str
    status: str


def is_transcription_webhook(params: Mapping[str, Any]) -> bool:
    """Whether a webhook to the record eventUrl is the transcription's rather than the recording's."""
    return "transcription_url" in params or params.get("status") == TRANSCRIBED


def read_transcription_webhook(params: Mapping[str, Any]) -> TranscriptionWebhook:
    """The transcription webhook's own fields (the numbers come from its sealed URL)."""
    recording_uuid = params.get("recording_uuid")
    if not is_shaped(recording_uuid, RECORDING_ID):
        raise BadRequest("recording_uuid is missing or malformed")
    url, status = params.get("transcription_url", ""), params.get("status", "")
    if not isinstance(url, str) or not isinstance(status, str) or len(status) > 40:
        raise BadRequest("transcription_url and status must be strings")
    if url:
        split_url(url, "transcription_url")
    elif status == TRANSCRIBED:
        raise BadRequest("a transcribed recording's webhook needs its transcription_url")
    return TranscriptionWebhook(recording_uuid, url, status)


def _sentences(channel: object) -> list[str]:
    entries = channel.get("transcript") if isinstance(channel, Mapping) else None
    texts = (entry.get("sentence") for entry in entries or () if isinstance(entry, Mapping))
    return [" ".join(text.split()) for text in texts if isinstance(text, str) and text.strip()]


def read_vonage_transcript(job_name: str, data: bytes) -> Transcript:
    """Vonage's transcript file as a finished job: its sentences, a line per channel, and the file
    itself as the engine's document; anything unreadable is a failed transcript, never an error."""
    if len(data) > MAX_TRANSCRIPT_BYTES:
        return Transcript(job_name, "failed", "", failure="malformed transcript: larger than tapedeck reads")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as err:
        return Transcript(job_name, "failed", "", failure=f"malformed transcript: not JSON ({err})")
    if not is_vonage_transcript(document):
        return Transcript(job_name, "failed", "", failure="malformed transcript: not Vonage's channels and sentences")
    lines = [" ".join(_sentences(channel)) for channel in document["channels"]]
    return Transcript(job_name, "completed", "\n".join(line for line in lines if line), document=document)
