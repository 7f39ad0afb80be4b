"""A signed delivery to a customer's URL, as state: one attempt's outcome, and the record kept of all of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self

from shared.core.payloads import FlatRecord, JsonObject, unknown_fields

__all__ = ["DeliveryOutcome", "DeliveryRecord", "DeliveryRequest", "DeliveryState", "Encoding", "delivery_state"]


class DeliveryState(StrEnum):
    """A delivery's state. A callback is `waiting` for its outcome, then `due`, then `sending`;
    `retrying` names an attempt's result only: the record stays `sending` while attempts are left."""

    WAITING = "waiting"
    DUE = "due"
    SENDING = "sending"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    FAILED = "failed"


class Encoding(StrEnum):
    """How a POST carries its payload; a GET always carries it as the query string."""

    JSON = "json"
    FORM = "form"


@dataclass(frozen=True)
class DeliveryRequest:
    """One signed request to a customer's URL."""

    url: str
    payload: Mapping[str, object]
    method: str = "POST"
    encoding: Encoding = Encoding.JSON


@dataclass(frozen=True)
class DeliveryOutcome(FlatRecord):
    delivered: bool
    attempts: int
    status: int | None = None
    error: str | None = None
    # Nothing a retry could change: the guard refused the URL.
    permanent: bool = False


def delivery_state(outcome: DeliveryOutcome, *, final: bool) -> DeliveryState:
    """`delivered`, `failed` (the last attempt, or nothing a retry could change) or `retrying`."""
    if outcome.delivered:
        return DeliveryState.DELIVERED
    return DeliveryState.FAILED if final or outcome.permanent else DeliveryState.RETRYING


# The fields of a record before any attempt, in the order they are first written; `attempts` is
# the claim's counter until an attempt's outcome replaces it.
_CLAIMED = ("url", "method", "state", "attempts", "payload")
_LAST = ("trying", "delivered", "status", "error", "permanent", "at")


@dataclass
class DeliveryRecord:
    """What is kept of one delivery: where it goes, its state, and the last attempt's outcome.

    A result webhook's record carries its payload; a prompt callback's carries its method and
    builds its payload from the transaction. Fields not yet written are None, and absent.
    """

    url: str
    state: DeliveryState
    method: str | None = None
    payload: dict[str, object] | None = None
    attempts: int | None = None
    trying: int | None = None
    last: DeliveryOutcome | None = None
    at: float | None = None
    extra: JsonObject = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Self:
        last = DeliveryOutcome.from_json(doc) if "delivered" in doc else None
        return cls(
            url=doc["url"],
            state=DeliveryState(doc["state"]),
            method=doc.get("method"),
            payload=doc.get("payload"),
            attempts=doc.get("attempts"),
            trying=doc.get("trying"),
            last=last,
            at=doc.get("at"),
            extra=unknown_fields(doc, *_CLAIMED, *_LAST),
        )

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {"url": self.url}
        if self.method is not None:
            doc["method"] = self.method
        doc["state"] = self.state
        if self.attempts is not None:
            doc["attempts"] = self.attempts
        if self.payload is not None:
            doc["payload"] = self.payload
        if self.trying is not None:
            doc["trying"] = self.trying
        if self.last is not None:
            doc.update(self.last.to_json())
        if self.at is not None:
            doc["at"] = self.at
        return doc | self.extra

    @property
    def finished(self) -> bool:
        return self.state in (DeliveryState.DELIVERED, DeliveryState.FAILED)

    def take_attempt(self, attempt: int) -> bool:
        """Mark `attempt` as started; False when the delivery is finished, or this attempt (or a
        later one) was already started: a duplicate run of the same task sends nothing."""
        if self.finished or (self.trying or 0) >= attempt:
            return False
        self.trying = attempt
        return True

    def reopen(self) -> bool:
        """Make a failed delivery ready to be tried anew from a first attempt (the last outcome
        stays until the next one); False for one that did not fail."""
        if self.state != DeliveryState.FAILED:
            return False
        self.state, self.trying = DeliveryState.SENDING, None
        return True

    def note(self, outcome: DeliveryOutcome, *, final: bool, now: float) -> DeliveryState:
        """Keep an attempt's outcome; returns its state (the record stays `sending` while retrying)."""
        state = delivery_state(outcome, final=final)
        self.state = DeliveryState.SENDING if state == DeliveryState.RETRYING else state
        self.last, self.attempts, self.at = outcome, outcome.attempts, now
        return state
