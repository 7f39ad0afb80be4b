"""The recordings browser's audit log: who played, downloaded or deleted a call, and when. Pure.

One small immutable object per action, `audit/<conversation_uuid>/<YYYYMMDDTHHMMSS.mmmZ>-<nonce>.json`:
an entry is only ever created, never rewritten, so two people listening at once never contend for
one document, and a listing of the call's folder is its log in time order. It lives outside
`calls/<id>/` so that deleting a call's objects keeps the record that they were heard and deleted.

An entry names who, when, what and the call, and for a play or a download the object served;
never audio, transcript text or a phone number.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self

from shared.core.call_record import check_conversation_uuid
from shared.core.times import instant, iso

__all__ = ["AUDIT_PREFIX", "AuditAction", "AuditEntry", "audit_key", "audit_prefix"]

AUDIT_PREFIX = "audit/"


class AuditAction(StrEnum):
    PLAY = "play"
    DOWNLOAD = "download"
    DELETE = "delete"
    # A legal hold set on the call, or cleared.
    HOLD = "hold"
    RELEASE = "release"


@dataclass(frozen=True)
class AuditEntry:
    """One action on one call: `by` (the IAP account's email, or the local user) at `at` (seconds)."""

    call: str
    action: AuditAction
    by: str
    at: float
    # The object served, for a play or a download: the call's own audio key.
    object_key: str | None = None

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {"call": self.call, "action": str(self.action), "by": self.by, "at": iso(self.at)}
        if self.object_key is not None:
            doc["object"] = self.object_key
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Self:
        at, by, key = instant(doc["at"]), doc["by"], doc.get("object")
        if at is None or not isinstance(by, str) or not (key is None or isinstance(key, str)):
            raise ValueError("not an audit entry")
        return cls(check_conversation_uuid(doc["call"]), AuditAction(doc["action"]), by, at, key)


def audit_prefix(conversation_uuid: str) -> str:
    """Where one call's entries are: `audit/<conversation_uuid>/`."""
    return f"{AUDIT_PREFIX}{check_conversation_uuid(conversation_uuid)}/"


def audit_key(entry: AuditEntry, nonce: str) -> str:
    """The entry's own object, named by its time so that names sort oldest first, then by `nonce`
    so that two actions in one millisecond are two objects."""
    stamp = iso(entry.at).replace("-", "").replace(":", "")
    return f"{audit_prefix(entry.call)}{stamp}-{nonce}.json"
