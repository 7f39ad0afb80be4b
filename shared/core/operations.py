"""What operators see: the structured log lines that say how each piece of work ended, and the
problems kept for the recordings browser's Problems page. Pure.

Each outcome is one JSON log line whose `event` field is one of EVENTS, with stable fields beside
it (`call`, `state`, `duration`, ...); the deploy makes log-based metrics and alert policies from
them (tools/monitoring.py). Each outcome an operator may need to act on is also kept as a problem,
`problems/<kind>/<id>.json`, until it is dismissed or a retry settles it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared.core.errors import NotFound
from shared.core.payloads import FieldReaders, StoredDocument

__all__ = [
    "PROBLEMS_PREFIX",
    "RETRIES_PREFIX",
    "Event",
    "Problem",
    "ProblemKind",
    "problem_key",
    "retry_key",
    "webhook_kind",
]

PROBLEMS_PREFIX = "problems/"
# A retry asked for on the Problems page waits here for the sweep, which runs it.
RETRIES_PREFIX = "sweep/retries/"
_IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,299}", re.ASCII)


class Event(StrEnum):
    """The `event` field of an outcome's log line."""

    # A recording's state became final: `state`, `duration`, `gaps`, `missing_seconds`.
    RECORDING_FINAL = "recording.final"
    # A page (SMS) was sent to one recipient, or could not be.
    PAGE_SENT = "page.sent"
    PAGE_FAILED = "page.failed"
    # A signed delivery (result, live, recording webhook or PIN callback) arrived, will be tried
    # again, or was given up on.
    DELIVERY_DELIVERED = "delivery.delivered"
    DELIVERY_RETRYING = "delivery.retrying"
    DELIVERY_FAILED = "delivery.failed"
    # A task failed on its last attempt: the queue runs it no more.
    TASK_EXHAUSTED = "task.exhausted"
    # One run of the sweep: what it looked at and what it settled.
    SWEEP_RUN = "sweep.run"
    RETENTION_RUN = "retention.run"
    FORGET_RUN = "forget.run"


class ProblemKind(StrEnum):
    RECORDING = "recording"
    PAGE = "page"
    DELIVERY = "delivery"
    TASK = "task"


def webhook_kind(name: str) -> str:
    """Which webhook a call's delivery record is for, by its name."""
    for prefix, kind in (("recording-", "recording"), ("live-", "live")):
        if name.startswith(prefix):
            return kind
    return "result"


def problem_key(kind: ProblemKind, ident: str) -> str:
    """Where one problem is kept; NotFound for an id no problem could have."""
    if not _IDENT.fullmatch(ident):
        raise NotFound("no such problem")
    return f"{PROBLEMS_PREFIX}{kind}/{ident}.json"


def retry_key(kind: ProblemKind, ident: str) -> str:
    problem_key(kind, ident)
    return f"{RETRIES_PREFIX}{kind}/{ident}.json"


# A problem's fields in the order they are written; `retry_requested` only once an operator asks.
_REQUIRED = ("kind", "ident", "at", "summary")
_OPTIONAL = ("call", "retryable", "detail", "retried", "retry_requested")
_READ: FieldReaders = {
    "kind": ProblemKind,
    "retryable": bool,
    "detail": lambda detail: dict(detail or {}),
    "retried": lambda retried: int(retried or 0),
}


@dataclass
class Problem(StoredDocument, fields=_REQUIRED, later=_OPTIONAL, read=_READ):
    """One outcome an operator may need to act on. `detail` holds what a retry needs; `retryable`
    says whether one makes sense; `retry_requested` is set when an operator asked for one, and
    `retried` counts those that ran."""

    kind: ProblemKind
    ident: str
    at: float
    summary: str
    call: str | None = None
    retryable: bool = False
    detail: dict[str, Any] = field(default_factory=dict)
    retry_requested: float | None = None
    retried: int = 0

    @property
    def key(self) -> str:
        return problem_key(self.kind, self.ident)

    def omitted_while_none(self) -> tuple[str, ...]:
        return ("retry_requested",)
