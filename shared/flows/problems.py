"""Problems kept for operators: noted where an outcome goes wrong, listed by the Problems page,
dismissed there, or retried by the sweep when an operator asks (shared/flows/sweep.py)."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import replace

from shared.core.errors import TapedeckError
from shared.core.operations import (
    PROBLEMS_PREFIX,
    RETRIES_PREFIX,
    Event,
    Problem,
    ProblemKind,
    problem_key,
    retry_key,
)
from shared.core.ports import BlobStore
from shared.core.tasks import Task
from shared.flows.documents import claim_once, read_document, update_document

__all__ = [
    "clear_problem",
    "dismiss_problem",
    "list_problems",
    "note_exhausted_task",
    "note_problem",
    "request_retry",
    "requested_retries",
]

log = logging.getLogger(__name__)


def note_problem(store: BlobStore, problem: Problem) -> None:
    """Keep `problem`, over any earlier one of the same id (whose count of retries it keeps)."""

    def change(kept: Problem) -> None:
        kept.at, kept.summary, kept.call = problem.at, problem.summary, problem.call
        kept.retryable, kept.detail, kept.retry_requested = problem.retryable, dict(problem.detail), None

    update_document(store, problem.key, Problem, change, lambda: problem)


def note_exhausted_task(store: BlobStore, task: Task, attempts: int, error: str, now: float) -> None:
    """A task failed on its last attempt: its one log line, and a problem whose retry runs it again."""
    base = replace(task, rerun=0, trace=None)
    fields = {"task": task.name, "kind": task.kind, "attempts": attempts, "error": error}
    # Within the handler that failed, the line carries the failure's traceback too.
    failing = sys.exc_info()[1] is not None
    log.error("task given up", extra={"event": Event.TASK_EXHAUSTED, **fields}, exc_info=failing)
    call = task.payload.get("conversation_uuid")
    summary = f"{task.kind} gave up after {attempts} attempt(s): {error}"
    problem = Problem(ProblemKind.TASK, base.name, now, summary, call if isinstance(call, str) else None, True)
    problem.detail = {"task": base.to_json()}
    note_problem(store, problem)


def clear_problem(store: BlobStore, kind: ProblemKind, ident: str) -> None:
    """Forget a problem a retry has settled (nothing happens when there is none)."""
    store.delete(problem_key(kind, ident))
    store.delete(retry_key(kind, ident))


def dismiss_problem(store: BlobStore, kind: ProblemKind, ident: str, by: str) -> None:
    """An operator has seen the problem and wants it off the page."""
    clear_problem(store, kind, ident)
    log.info("problem dismissed", extra={"problem": f"{kind}/{ident}", "by": by})


def list_problems(store: BlobStore, after: str = "", limit: int = 100) -> tuple[list[Problem], str | None]:
    """A page of problems, newest first within it, and where the next page starts (None at the end)."""
    infos = store.list_after(PROBLEMS_PREFIX, after if after.startswith(PROBLEMS_PREFIX) else "", limit)
    found = []
    for info, blob in zip(infos, store.read_many([i.key for i in infos]), strict=True):
        if blob is None:
            continue
        try:
            found.append(Problem.from_json(json.loads(blob.data)))
        except (KeyError, TypeError, ValueError):
            log.warning("unreadable problem", extra={"key": info.key})
    found.sort(key=lambda problem: problem.at, reverse=True)
    return found, (infos[-1].key if len(infos) == limit else None)


def request_retry(store: BlobStore, kind: ProblemKind, ident: str, now: float, by: str) -> Problem | None:
    """Ask the sweep to retry a problem, once however often this is asked; None when the problem
    is gone or no retry makes sense for it."""
    problem = read_document(store, problem_key(kind, ident), Problem)
    if problem is None or not problem.retryable:
        return None

    def mark(kept: Problem) -> None:
        kept.retry_requested = kept.retry_requested or now

    found = problem
    problem = update_document(store, problem.key, Problem, mark, lambda: found)
    claim_once(store, retry_key(kind, ident), {"kind": kind, "ident": ident, "at": now, "by": by})
    log.info("retry requested", extra={"problem": f"{kind}/{ident}", "by": by})
    return problem


def requested_retries(store: BlobStore, limit: int) -> list[Problem]:
    """Up to `limit` problems an operator asked to retry, oldest request first; a request whose
    problem is gone is dropped."""
    found = []
    for info in store.list_after(RETRIES_PREFIX, "", limit):
        kind, _, name = info.key.removeprefix(RETRIES_PREFIX).partition("/")
        ident = name.removesuffix(".json")
        try:
            problem = read_document(store, problem_key(ProblemKind(kind), ident), Problem)
        except (ValueError, TapedeckError):
            problem = None
        if problem is None:
            store.delete(info.key)
            continue
        found.append(problem)
    return sorted(found, key=lambda problem: problem.retry_requested or problem.at)
