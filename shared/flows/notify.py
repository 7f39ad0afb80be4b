"""Telling people about a recording: a short link to its audio, and SMS sent once per recipient."""

from __future__ import annotations

import json
import logging

from shared.config.settings import Settings
from shared.core.call_record import call_key
from shared.core.errors import TapedeckError
from shared.core.job_record import Job
from shared.core.ports import BlobStore, Messenger, TextMessage
from shared.flows.documents import claim_once
from shared.flows.links import create_link

__all__ = ["audio_link", "text_once"]

log = logging.getLogger(__name__)


def audio_link(settings: Settings, store: BlobStore, audio_key: str | None, now: float) -> str | None:
    """A new short link to stored audio, or None when there is no audio."""
    if not audio_key:
        return None
    return f"{settings.public_url}/link?id={create_link(store, audio_key, now, settings.storage.link_ttl_days)}"


def text_once(store: BlobStore, messenger: Messenger, sender: str, job: Job, text: str) -> list[str]:
    """Send `text` to each of the job's recipients at most once per recording, however often this runs.

    A claim object per recipient is created before sending, so a retried webhook or a second
    worker finds it and skips that recipient. Returns the recipients sent to by this call.
    """
    conversation_uuid, recording_uuid = job.conversation_uuid, job.recording_uuid
    sent = []
    for recipient in job.recipients:
        claim = call_key(conversation_uuid, f"pages/{recording_uuid}-{recipient}.json")
        if not claim_once(store, claim, {"to": recipient, "state": "sending"}):
            continue
        try:
            message_id = messenger.send(TextMessage(recipient, sender, text), f"{recording_uuid}-{recipient}")
        except TapedeckError as err:
            failed = {"to": recipient, "state": "failed", "error": str(err)}
            store.write(claim, json.dumps(failed).encode(), "application/json")
            log.error("text not sent", extra={"call": conversation_uuid, "to": recipient, "error": str(err)})
            continue
        done = {"to": recipient, "state": "sent", "id": message_id, "text": text}
        store.write(claim, json.dumps(done).encode(), "application/json")
        sent.append(recipient)
    return sent
