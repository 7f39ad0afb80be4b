"""Deferred work as tasks: what a request hands to the queue instead of doing after its answer. Pure.

On Cloud Functions an instance gets CPU only while it handles a request, so a step that must
happen later (transcribe a recording, deliver a result webhook or a callback, settle a hang-up
after its grace, stitch a call's sessions into one recording) is a task: the queue calls the
`tasks` function back with it, in a request of its own. A task's name comes from the work's
identity, so enqueuing the same work twice is refused by the queue (mostly; the handler stays
idempotent, since delivery is at least once).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.core.errors import BadRequest, TapedeckError

__all__ = [
    "ATTEMPT_HEADER",
    "FAILED_TASKS_PREFIX",
    "KINDS",
    "MAX_BACKOFF",
    "QUEUE_KEY_HEADER",
    "TASK_NAME_HEADER",
    "Retry",
    "Task",
    "parse_task",
    "task_key",
]

# What the tasks function runs: each kind is one step of a flow. `settle-recordings` decides the
# final state of a call's recordings; `stitch-recording` lays a call's sessions on one timeline;
# `vonage-transcript` fetches the transcript Vonage made of a recording; `transcribe-deadline`
# gives up on an engine that has not finished in time and runs the route's next one;
# `sweep` is Cloud Scheduler's (or the embedded queue's) periodic run.
KINDS = (
    "transcribe",
    "transcribe-deadline",
    "vonage-transcript",
    "deliver-result",
    "deliver-callback",
    "settle-hangup",
    "settle-recordings",
    "stitch-recording",
    "sweep",
)
# Where the embedded queue keeps the tasks it gave up on (a deployed queue keeps none).
FAILED_TASKS_PREFIX = "tasks-failed/"
# The longest wait between two runs of a task, on Cloud Tasks and on the embedded queue alike.
MAX_BACKOFF = 3600
# Cloud Tasks' own headers: which task, and how many dispatches before this one (0 the first time).
TASK_NAME_HEADER = "X-CloudTasks-TaskName"
ATTEMPT_HEADER = "X-CloudTasks-TaskRetryCount"
# The embedded queue proves itself to the tasks function with this header (Cloud Tasks uses OIDC).
QUEUE_KEY_HEADER = "X-Tapedeck-Queue-Key"
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,199}", re.ASCII)
# A transcribe task carries its route's vocabulary: up to 10,000 characters of phrases
# (shared/core/vocabulary.py), well under Cloud Tasks' own limit of 100 KB a task.
_PAYLOAD_LIMIT = 16384
_RERUNS = 999


def task_key(text: str) -> str:
    """`text` as a task's key when it can be one; otherwise its SHA-256, so that any identity a
    webhook brings (a leg's uuid as Vonage sent it) still names one piece of work."""
    return text if _KEY.fullmatch(text) else hashlib.sha256(text.encode()).hexdigest()


class Retry(TapedeckError):
    """This run of a task did not succeed and the queue should run it again (answered 503)."""

    status = 503
    public = True


@dataclass(frozen=True)
class Task:
    """One step to run later: `kind`, the identity of the work (`key`), and what the step needs."""

    kind: str
    key: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    delay: float = 0.0
    # The Cloud Trace context of the request that enqueued it, so one call's story shows together.
    trace: str | None = None
    # The same work asked for again, from the Problems page, once the queue gave up on it: a
    # name of its own, which the queue has not seen.
    rerun: int = 0

    @property
    def name(self) -> str:
        """Unique per piece of work: `transcribe-<job>`, `deliver-callback-<tid>`, `...-rerun-2`."""
        return f"{self.kind}-{self.key}" + (f"-rerun-{self.rerun}" if self.rerun else "")

    def to_json(self) -> dict[str, Any]:
        doc = {"kind": self.kind, "key": self.key, "payload": dict(self.payload), "trace": self.trace}
        return doc | ({"rerun": self.rerun} if self.rerun else {})


def parse_task(document: Mapping[str, Any]) -> Task:
    """A task from the JSON body the queue delivers; BadRequest for anything else."""
    kind, key, payload, trace = (document.get(k) for k in ("kind", "key", "payload", "trace"))
    rerun = document.get("rerun", 0)
    if kind not in KINDS:
        raise BadRequest(f"kind must be one of {', '.join(KINDS)}")
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise BadRequest("key is missing or malformed")
    if not isinstance(payload, dict) or len(str(payload)) > _PAYLOAD_LIMIT:
        raise BadRequest("payload must be a small JSON object")
    if trace is not None and not isinstance(trace, str):
        raise BadRequest("trace must be a string")
    if not isinstance(rerun, int) or isinstance(rerun, bool) or not 0 <= rerun <= _RERUNS:
        raise BadRequest(f"rerun must be a whole number from 0 to {_RERUNS}")
    return Task(str(kind), key, payload, trace=trace, rerun=rerun)
