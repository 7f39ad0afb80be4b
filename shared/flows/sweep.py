"""The sweep: one bounded run that reconciles calls with their recordings, and runs the retries
operators asked for on the Problems page.

Cloud Scheduler runs it deployed (a `sweep` task posted to the tasks function), the embedded
queue every SWEEP_INTERVAL locally, `nox -s sweep` once by hand. Each run first runs up to
SWEEP_BATCH retries, then settles up to SWEEP_BATCH calls waiting under `sweep/pending/`, from
where the last run stopped (`sweep/cursor.json`), so a long backlog is worked through a batch a
run and no run lists every call. Settling is idempotent, so a run that dies, or two that overlap,
change nothing twice. A call that fails to settle is held, and kept as a problem, until an operator
asks for a retry: it does not fail every run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol

from shared.core.errors import Conflict
from shared.core.operations import Event, Problem, ProblemKind, retry_key
from shared.core.recording_outcome import WaitingCall
from shared.core.tasks import parse_task
from shared.flows.documents import document_of, keep_place, next_batch, update_document
from shared.flows.erase import RetentionReport, run_discards, run_forget_requests, run_retention
from shared.flows.needs import HasCalls, HasEngines, HasHttp, HasMessenger, HasQueue, HasSettings, HasStore
from shared.flows.notify import resend_page
from shared.flows.pin_calls import reopen_callback
from shared.flows.problems import clear_problem, requested_retries
from shared.flows.recording_outcomes import (
    PENDING_PREFIX,
    Settlement,
    hold_call,
    pending_key,
    settle_recordings,
)
from shared.flows.results import reopen_result

__all__ = ["CURSOR_KEY", "SweepReport", "SweepServices", "run_sweep"]

log = logging.getLogger(__name__)

CURSOR_KEY = "sweep/cursor.json"


class SweepServices(HasSettings, HasStore, HasMessenger, HasHttp, HasQueue, HasCalls, HasEngines, Protocol):
    """What a sweep reaches: a call's recordings and deliveries, a page's messenger, a callback's
    transaction (PromptServices), and the queue that runs retried work."""


@dataclass
class SweepReport:
    """What one run did: calls looked at, settled, still waiting, held back by an error; retries
    run; and whether waiting calls were left for the next run."""

    looked_at: int = 0
    settled: int = 0
    waiting: int = 0
    held: int = 0
    retried: int = 0
    more: bool = False
    retention: RetentionReport = field(default_factory=RetentionReport)
    forgotten: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = [
            f"{self.looked_at} call(s) looked at: {self.settled} settled, {self.waiting} waiting, "
            f"{self.held} held; {self.retried} retry(ies) run" + ("; more next run" if self.more else ""),
            self.retention.describe(),
            *self.forgotten,
        ]
        return "\n".join(lines)


def run_sweep(services: SweepServices, now: float, *, as_of: float | None = None) -> SweepReport:
    """One run of the sweep; logs one `sweep.run` line. Retention is judged as of `as_of` (now
    unless given): calls past it are erased, and waiting requests to forget a number go on."""
    started = time.monotonic()
    report = SweepReport(retried=_run_retries(services, now))
    report.retention = run_retention(services, now if as_of is None else as_of)
    report.retention.objects["engine copies"] += run_discards(services)
    report.forgotten = [forgetting.describe() for forgetting in run_forget_requests(services, now)]
    store, batch = services.store, services.settings.sweep.batch
    pending = next_batch(store, CURSOR_KEY, PENDING_PREFIX, batch)
    infos = pending.infos
    for info, blob in zip(infos, store.read_many([i.key for i in infos]), strict=True):
        conversation_uuid = info.key.removeprefix(PENDING_PREFIX).removesuffix(".json")
        report.looked_at += 1
        waiting = document_of(blob)
        if waiting is not None and waiting.get("error"):
            report.held += 1
            continue
        outcome = _settle_or_hold(services, conversation_uuid, now)
        report.settled += outcome == Settlement.SETTLED
        report.waiting += outcome == Settlement.WAITING
        report.held += outcome is None
    report.more = pending.more
    keep_place(store, CURSOR_KEY, pending, now)
    fields = {"event": Event.SWEEP_RUN, "seconds": round(time.monotonic() - started, 3), **asdict(report)}
    fields["retention"] = {"erased": report.retention.erased, "held": report.retention.held}
    log.info("sweep ran", extra=fields)
    return report


def _settle_or_hold(services: SweepServices, conversation_uuid: str, now: float) -> Settlement | None:
    """Settle one call; one that fails is held, and kept as a problem an operator can retry."""
    try:
        return settle_recordings(services, conversation_uuid, now)
    except Exception as err:  # one call's fault must not stop the others'
        error = f"{type(err).__name__}: {err}"
        log.exception("a call's recordings could not be settled", extra={"call": conversation_uuid})
        hold_call(services, conversation_uuid, error, now)
        return None


def _run_retries(services: SweepServices, now: float) -> int:
    """Run each retry asked for, once per asking."""
    store, ran = services.store, 0
    for problem in requested_retries(store, services.settings.sweep.batch):
        # The request is taken before the retry runs: a run that dies loses it, never doubles it.
        store.delete(retry_key(problem.kind, problem.ident))

        problem = update_document(store, problem.key, Problem, _count_retry, _gone)
        outcome = _retry(services, problem, now)
        log.info("retry ran", extra={"problem": f"{problem.kind}/{problem.ident}", "outcome": outcome})
        ran += 1
    return ran


def _count_retry(problem: Problem) -> None:
    problem.retried, problem.retry_requested = problem.retried + 1, None


def _gone() -> Problem:
    raise Conflict("the problem was dismissed while its retry ran")


def _retry(services: SweepServices, problem: Problem, now: float) -> str:
    """Run one problem's retry; returns what came of it."""
    detail, rerun = problem.detail, problem.retried
    if problem.kind == ProblemKind.DELIVERY:
        tid = detail.get("tid")
        if isinstance(tid, str):
            reopened = reopen_callback(services, tid, rerun)
        else:
            reopened = reopen_result(services, str(detail["conversation_uuid"]), str(detail["name"]), rerun)
        if not reopened:
            clear_problem(services.store, problem.kind, problem.ident)
        return "queued again" if reopened else "nothing to send again"
    if problem.kind == ProblemKind.PAGE:
        sent = resend_page(services.store, services.messenger, services.settings.vonage.sms_from, detail, now)
        return "sent" if sent else "not sent"
    if problem.kind == ProblemKind.TASK:
        task = replace(parse_task(detail["task"]), rerun=rerun)
        services.queue.enqueue(task)
        return f"queued again as {task.name}"
    conversation_uuid = str(detail["conversation_uuid"])

    def release(waiting: WaitingCall) -> None:
        waiting.error = None

    update_document(services.store, pending_key(conversation_uuid), WaitingCall, release, lambda: WaitingCall(now))
    outcome = _settle_or_hold(services, conversation_uuid, now)
    if outcome is not None:
        clear_problem(services.store, problem.kind, problem.ident)
    return str(outcome or "held again")
