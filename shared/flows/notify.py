"""Telling people about a recording: a short link to its audio, and SMS sent once per recipient."""

from __future__ import annotations

import json
import logging

from shared.config.settings import Settings
from shared.core.call_record import call_key
from shared.core.errors import TapedeckError
from shared.core.job_record import Job
from shared.core.operations import Event, Problem, ProblemKind
from shared.core.ports import BlobStore, Messenger, TextMessage
from shared.flows.documents import claim_once, read_json
from shared.flows.links import create_link
from shared.flows.problems import clear_problem, note_problem

__all__ = ["audio_link", "page_key", "resend_page", "text_once"]

log = logging.getLogger(__name__)


def audio_link(settings: Settings, store: BlobStore, audio_key: str | None, now: float) -> str | None:
    """A new short link to stored audio, or None when there is no audio."""
    if not audio_key:
        return None
    return f"{settings.public_url}/link?id={create_link(store, audio_key, now, settings.storage.link_ttl_days)}"


def page_key(conversation_uuid: str, recording_uuid: str, recipient: str) -> str:
    """The claim of one page: one recording's, to one recipient."""
    return call_key(conversation_uuid, f"pages/{recording_uuid}-{recipient}.json")


def text_once(store: BlobStore, messenger: Messenger, sender: str, job: Job, text: str, now: float) -> list[str]:
    """Send `text` to each of the job's recipients at most once per recording, however often this runs.

    A claim object per recipient is created before sending, so a retried webhook or a second
    worker finds it and skips that recipient. Returns the recipients sent to by this call.
    """
    conversation_uuid, recording_uuid = job.conversation_uuid, job.recording_uuid
    sent = []
    for recipient in job.recipients:
        claim = page_key(conversation_uuid, recording_uuid, recipient)
        if not claim_once(store, claim, {"to": recipient, "state": "sending"}):
            continue
        if _send(store, messenger, sender, (conversation_uuid, recording_uuid, recipient), text, now):
            sent.append(recipient)
    return sent


def resend_page(store: BlobStore, messenger: Messenger, sender: str, detail: dict[str, str], now: float) -> bool:
    """Send a page that failed once more (a retry from the Problems page); False when it is not
    a failed page (it was sent since, or is gone)."""
    conversation_uuid, recording_uuid, recipient = (detail[k] for k in ("conversation_uuid", "recording_uuid", "to"))
    claim = read_json(store, page_key(conversation_uuid, recording_uuid, recipient))
    if claim is None or claim.get("state") != "failed" or not isinstance(claim.get("text"), str):
        return False
    if not _send(store, messenger, sender, (conversation_uuid, recording_uuid, recipient), claim["text"], now):
        return False
    clear_problem(store, ProblemKind.PAGE, f"{conversation_uuid}-{recording_uuid}-{recipient}")
    return True


def _send(
    store: BlobStore, messenger: Messenger, sender: str, page: tuple[str, str, str], text: str, now: float
) -> bool:
    """One attempt at one page, its outcome kept in its claim, logged, and kept as a problem when it failed."""
    conversation_uuid, recording_uuid, recipient = page
    claim = page_key(*page)
    ident = f"{conversation_uuid}-{recording_uuid}-{recipient}"
    fields = {"call": conversation_uuid, "recording": recording_uuid, "to": recipient}
    try:
        message_id = messenger.send(TextMessage(recipient, sender, text), f"{recording_uuid}-{recipient}")
    except TapedeckError as err:
        failed = {"to": recipient, "state": "failed", "error": str(err), "text": text}
        store.write(claim, json.dumps(failed).encode(), "application/json")
        log.error("text not sent", extra={"event": Event.PAGE_FAILED, **fields, "error": str(err)})
        detail = {"conversation_uuid": conversation_uuid, "recording_uuid": recording_uuid, "to": recipient}
        summary = f"page to {recipient}: {err}"
        note_problem(store, Problem(ProblemKind.PAGE, ident, now, summary, conversation_uuid, True, detail))
        return False
    done = {"to": recipient, "state": "sent", "id": message_id, "text": text}
    store.write(claim, json.dumps(done).encode(), "application/json")
    log.info("text sent", extra={"event": Event.PAGE_SENT, **fields})
    return True
