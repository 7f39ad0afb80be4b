"""Recording who played, downloaded or deleted a call, and reading it back for the call's audit page.

An entry is written before the action it records is done: when it cannot be written the action is
refused (AuditUnavailable, a 503), so that nothing is played or deleted unrecorded.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field, replace

from shared.core.audit import AuditEntry, audit_key, audit_prefix
from shared.core.errors import TapedeckError
from shared.core.ports import BlobStore
from shared.flows.documents import document_as, document_of, encode_document

__all__ = ["AuditLog", "AuditUnavailable", "read_audit", "record_action"]

log = logging.getLogger(__name__)


class AuditUnavailable(TapedeckError):
    """The audit log could not be written, so the action it would record is not done."""

    status = 503
    public = True


# A player opening a recording may ask for its first bytes twice in a moment (Chromium does): the
# same action on the same object by the same person within this many seconds is one action.
SAME_ACTION_SECONDS = 5.0
# A request for a later part of a recording is the same play as the person's last entry for it
# within this many seconds (a player going on, or seeking); past that it is recorded again.
CONTINUED_PLAY_SECONDS = 600.0
# How many of the newest entries in that moment are compared.
_RECENT = 20


def _repeats(store: BlobStore, entry: AuditEntry, within: float) -> bool:
    """Whether the call's log already has this action on this object by this person, in the last
    `within` seconds."""
    since = audit_key(replace(entry, at=entry.at - within), "")
    recent = store.list_after(audit_prefix(entry.call), since, _RECENT)
    for blob in store.read_many([info.key for info in recent]):
        document = document_of(blob) or {}
        same = (document.get("by"), document.get("action"), document.get("object"))
        if same == (entry.by, str(entry.action), entry.object_key):
            return True
    return False


def record_action(store: BlobStore, entry: AuditEntry, *, once_within: float | None = None) -> str | None:
    """Store `entry` as an object of its own and return its key; AuditUnavailable when it cannot be.
    With `once_within` (seconds), None and nothing stored when the same entry was stored that recently.

    Each action is a new object under a fresh name, written only if absent: a store that replays
    the write finds it there and changes nothing, and no entry ever overwrites another."""
    key = audit_key(entry, secrets.token_hex(6))
    try:
        if once_within is not None and _repeats(store, entry, once_within):
            return None
        store.write(key, encode_document(entry.to_json()), "application/json", if_generation_match=0)
    except Exception as err:
        # Whatever the store's failure, the action stays undone: an audit log must not have gaps.
        log.error("audit entry not written", extra={"call": entry.call, "action": str(entry.action)})
        raise AuditUnavailable(f"the {entry.action} could not be recorded in the audit log; try again") from err
    log.info("audited", extra={"call": entry.call, "action": str(entry.action), "by": entry.by})
    return key


@dataclass(frozen=True)
class AuditLog:
    """A call's entries, newest first, at most the newest `limit` of `total`; `unreadable` are
    stored entries that could not be read and are not shown."""

    entries: list[AuditEntry]
    total: int
    unreadable: list[str] = field(default_factory=list)


def read_audit(store: BlobStore, conversation_uuid: str, limit: int = 500) -> AuditLog:
    """The call's audit entries, newest first (names sort by time)."""
    infos = store.list(audit_prefix(conversation_uuid))
    newest = [info.key for info in reversed(infos[-limit:])] if limit > 0 else []
    entries, unreadable = [], []
    for key, blob in zip(newest, store.read_many(newest), strict=True):
        entry = document_as(blob, AuditEntry.from_json, lambda found: found.call == conversation_uuid)
        if entry is None:
            log.warning("unreadable audit entry", extra={"key": key})
            unreadable.append(key.rsplit("/", 1)[-1])
            continue
        entries.append(entry)
    return AuditLog(entries, len(infos), unreadable)
