"""A PIN prompt call's stored transaction (`prompts/<tid>.json`) and the PIN's salted hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from shared.core.deliveries import DeliveryRecord
from shared.core.ncco import Action
from shared.core.payloads import FieldReaders, FlatRecord, StoredDocument

__all__ = ["FINAL", "PinHash", "PromptStatus", "PromptTransaction", "check_pin", "hash_pin"]

_PBKDF2_ROUNDS = 100_000


class PromptStatus(StrEnum):
    CALLING = "calling"
    ANSWERED = "answered"
    OK = "ok"
    FAILED = "failed"
    ERROR = "error"


FINAL = (PromptStatus.OK, PromptStatus.FAILED, PromptStatus.ERROR)


@dataclass(frozen=True)
class PinHash(FlatRecord):
    """The PIN as a salted PBKDF2 hash, and its length (the digits to wait for); never the PIN."""

    salt: str
    hash: str
    rounds: int
    length: int


def hash_pin(pin: str, salt: bytes | None = None) -> PinHash:
    """The PIN as a salted PBKDF2 hash; the PIN itself is never stored."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, _PBKDF2_ROUNDS)
    return PinHash(salt.hex(), digest.hex(), _PBKDF2_ROUNDS, len(pin))


def check_pin(stored: PinHash, digits: str) -> bool:
    """Whether `digits` is the PIN, compared in constant time."""
    digest = hashlib.pbkdf2_hmac("sha256", digits.encode(), bytes.fromhex(stored.salt), int(stored.rounds))
    return hmac.compare_digest(digest.hex(), stored.hash)


# The fields of a transaction as created, in the order they are first written, then the later ones.
_FIELDS = (
    "tid",
    "to",
    "from",
    "status",
    "detail",
    "attempts",
    "max_attempts",
    "pin",
    "text",
    "bye_text",
    "failed_text",
    "language",
    "style",
    "callback",
    "replies",
    "events",
    "created_at",
    "updated_at",
    "expires_at",
)
_LATER = ("auth", "application_id", "call_uuid", "finished_at", "hung_up_at")
_FROM = {"from": "from_"}
_READ: FieldReaders = {
    "status": PromptStatus,
    "pin": PinHash.from_json,
    "callback": DeliveryRecord.from_json,
    "replies": lambda replies: {k: list(v) for k, v in replies.items()},
    "events": list,
}


@dataclass
class PromptTransaction(StoredDocument, fields=_FIELDS, later=_LATER, renamed=_FROM, read=_READ):
    """One PIN prompt call (`prompts/<tid>.json`). Later fields are None until set, and absent."""

    tid: str
    to: str
    from_: str
    status: PromptStatus
    detail: str
    attempts: int
    max_attempts: int
    pin: PinHash
    text: str
    bye_text: str
    failed_text: str
    language: str
    style: int | None
    callback: DeliveryRecord
    # The NCCO answered to each try, by its number, so a retried webhook gets the same answer.
    replies: dict[str, list[Action]]
    events: list[dict[str, str]]
    created_at: float
    updated_at: float
    expires_at: float
    # How the request proved whose application places the call: operator, bearer, application-key.
    auth: str | None = None
    application_id: str | None = None
    call_uuid: str | None = None
    finished_at: float | None = None
    hung_up_at: float | None = None

    def omitted_while_none(self) -> tuple[str, ...]:
        # `application_id` is written with `auth`, as null for a bearer's call.
        written_null = ("application_id",) if self.auth is not None else ()
        return tuple(name for name in _LATER if name not in written_null)

    def place(self, auth: str, application_id: str | None) -> None:
        """Note how the request proved whose application places the call."""
        self.auth, self.application_id = auth, application_id

    def placed(self, call_uuid: str) -> None:
        """Note the uuid Vonage gave the call once it accepted it."""
        self.call_uuid = call_uuid

    @property
    def final(self) -> bool:
        return self.status in FINAL
