"""Settling a call's stream recordings: once the call is over, each recording takes its final
state (shared/core/recording_outcome.py) exactly once, and that is reported: one structured log
line, a problem when it is not `complete`, and the route's `recording_webhook`.

Settling is asked for when the recorder finishes a stream and when Vonage reports the call's end
(each a `settle-recordings` task), and by the sweep. A recording still `streaming` RECORDING_GRACE
seconds after the call ended, its last part as old, is a stream whose recorder died: it is
assembled from its parts first. A call that must wait is kept under `sweep/pending/`, so the
sweep finds it without listing every call.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from shared.config.routes import Route
from shared.core.call_record import CallRecord, RecordingState, StreamEntry, call_ended_at, check_conversation_uuid
from shared.core.operations import Event, Problem, ProblemKind
from shared.core.recording_outcome import (
    NO_AUDIO,
    NO_STREAM,
    UNFINISHED_LIMIT,
    WaitingCall,
    answered,
    missing_stream,
    recording_event,
    settle,
    verdicts,
)
from shared.core.tasks import Task, task_key
from shared.flows.calls import read_call, update_call
from shared.flows.documents import claim_once, read_document, update_document
from shared.flows.notify import audio_link
from shared.flows.problems import clear_problem, note_problem
from shared.flows.results import ResultServices, claim_result, delivery_key
from shared.flows.stream_audio import recover_session, session_parts

__all__ = [
    "PENDING_PREFIX",
    "OutcomeServices",
    "Settlement",
    "follow_call_end",
    "held_problem",
    "hold_call",
    "pending_key",
    "settle_recordings",
    "settle_task",
]

log = logging.getLogger(__name__)

PENDING_PREFIX = "sweep/pending/"
_LEVELS = {
    RecordingState.COMPLETE: logging.INFO,
    RecordingState.RECOVERED: logging.WARNING,
    RecordingState.PARTIAL: logging.WARNING,
    RecordingState.FAILED: logging.ERROR,
}


class OutcomeServices(ResultServices, Protocol):
    pass


class Settlement(StrEnum):
    """What one settling of a call came to."""

    SETTLED = "settled"  # every recording is final: the call waits no more
    WAITING = "waiting"  # the call goes on, or a recording waits out its grace
    NOTHING = "nothing"  # no such call (or it was deleted)


def pending_key(conversation_uuid: str) -> str:
    return f"{PENDING_PREFIX}{check_conversation_uuid(conversation_uuid)}.json"


def settle_task(conversation_uuid: str, why: str) -> Task:
    """A task that settles the call's recordings, named for what asked (a stream's end, a leg's end)."""
    return Task("settle-recordings", task_key(f"{conversation_uuid}-{why}"), {"conversation_uuid": conversation_uuid})


def _records_through_recorder(call: CallRecord, route: Route) -> bool:
    return bool(call.recordings) or route.streams_live


def follow_call_end(services: OutcomeServices, call: CallRecord, leg: str | None) -> None:
    """After an event of `call`: once it is over and its audio goes through the recorder, ask for
    its recordings to be settled (`leg` names the task, one per leg that ends)."""
    route = services.settings.routes.for_number(call.to or "")
    if call_ended_at(call) is not None and _records_through_recorder(call, route):
        services.queue.enqueue(settle_task(call.conversation_uuid, leg or "call"))


@dataclass(frozen=True)
class _Call:
    """A call as settling sees it: its record, when it ended, for how long, and its route."""

    record: CallRecord
    ended: float | None
    over_for: float
    route: Route

    @property
    def expects_stream(self) -> bool:
        """Answered, its audio due through the recorder, and not taken by a voicemail's fallback."""
        record = self.record
        taken = record.voicemail is not None or record.conversation is not None
        return answered(record) and _records_through_recorder(record, self.route) and not taken


def settle_recordings(services: OutcomeServices, conversation_uuid: str, now: float) -> Settlement:
    """Settle every recording of the call that can be, report each, and keep the call waiting
    (under `sweep/pending/`) while any cannot be yet. Idempotent: a recording settles once."""
    store = services.store
    call = read_call(store, conversation_uuid)
    if call is None or call.deleted is not None:
        store.delete(pending_key(conversation_uuid))
        return Settlement.NOTHING
    waiting = read_document(store, pending_key(conversation_uuid), WaitingCall)
    ended = call_ended_at(call)
    if ended is None and (waiting is None or now - waiting.since < UNFINISHED_LIMIT):
        return _wait(services, conversation_uuid, now, waiting)
    grace = services.settings.sweep.grace
    over_for = now - ended if ended is not None else math.inf
    if _recover_dead_streams(services, call, now, over_for, grace):
        call = read_call(store, conversation_uuid) or call
    route = services.settings.routes.for_number(call.to or "")
    state = _Call(call, ended, over_for, route)
    final, settled = _settle(services, state, now, grace)
    for entry in settled:
        _report(services, final, entry, route, now)
    _repair_reports(services, final, route, {entry.session for entry in settled}, now)
    # Without an end from Vonage (waited on past UNFINISHED_LIMIT), no stream is expected any more.
    still_expected = state.expects_stream and not final.recordings and ended is not None
    if still_expected or any(not entry.settled for entry in final.recordings):
        return _wait(services, conversation_uuid, now, waiting)
    store.delete(pending_key(conversation_uuid))
    if waiting is not None and waiting.error:
        # Held by the sweep after an error, and settled since: its problem is over.
        clear_problem(store, ProblemKind.RECORDING, held_problem(conversation_uuid))
    return Settlement.SETTLED


def _wait(services: OutcomeServices, conversation_uuid: str, now: float, waiting: WaitingCall | None) -> Settlement:
    if waiting is None:
        claim_once(services.store, pending_key(conversation_uuid), WaitingCall(now).to_json())
    return Settlement.WAITING


def held_problem(conversation_uuid: str) -> str:
    """The id of the problem kept for a call the sweep could not settle."""
    return f"{conversation_uuid}-settle"


def hold_call(services: OutcomeServices, conversation_uuid: str, error: str, now: float) -> None:
    """Keep a call the sweep could not settle out of its runs, and as a problem, until an operator
    asks for a retry."""

    def hold(waiting: WaitingCall) -> None:
        waiting.error = error

    update_document(services.store, pending_key(conversation_uuid), WaitingCall, hold, lambda: WaitingCall(now))
    summary = f"recordings could not be settled: {error}"
    detail = {"conversation_uuid": conversation_uuid}
    problem = Problem(ProblemKind.RECORDING, held_problem(conversation_uuid), now, summary, conversation_uuid, True)
    problem.detail = detail
    note_problem(services.store, problem)


def _recover_dead_streams(
    services: OutcomeServices, call: CallRecord, now: float, over_for: float, grace: float
) -> int:
    """Assemble the parts of each stream still `streaming` a grace after the call's end whose last
    part is as old: its recorder is gone. Returns how many were assembled."""
    if over_for < grace:
        return 0
    store, assembled = services.store, 0
    for entry in call.recordings:
        if entry.state != RecordingState.STREAMING:
            continue
        parts = session_parts(store, call.conversation_uuid, entry.session)
        if parts and now - max(part.updated for part in parts) < grace:
            continue
        if recover_session(store, call.conversation_uuid, entry.session, parts, now) is not None:
            assembled += 1
    return assembled


def _settle(services: OutcomeServices, call: _Call, now: float, grace: float) -> tuple[CallRecord, list[StreamEntry]]:
    """Make final what can be, in one conditional update of call.json: the call as it is then, and
    the entries this update settled."""
    missing = call.expects_stream and not call.record.recordings and call.ended is not None
    no_stream = missing and call.over_for >= grace
    if not no_stream and not verdicts(call.record, call.ended):
        return call.record, []
    settled: list[StreamEntry] = []

    def change(record: CallRecord) -> None:
        settled.clear()
        if no_stream and not record.recordings and call.ended is not None:
            record.recordings.append(missing_stream(record.conversation_uuid, call.ended))
        settled.extend(settle(record, verdicts(record, call.ended), now))

    return update_call(services.store, call.record.conversation_uuid, change, now), settled


def _summary(entry: StreamEntry) -> str:
    if entry.state == RecordingState.PARTIAL:
        missing = sum(gap.seconds for gap in entry.gaps)
        return f"partial: {entry.duration:.1f} s recorded, {missing:.1f} s missing"
    if entry.state == RecordingState.RECOVERED:
        return f"recovered after the recorder stopped: {entry.duration:.1f} s"
    return f"failed: {NO_AUDIO if entry.object_key else NO_STREAM}"


def _report(services: OutcomeServices, call: CallRecord, entry: StreamEntry, route: Route, now: float) -> None:
    """One recording's final state, told once: its log line, a problem unless complete, its webhook."""
    conversation_uuid = call.conversation_uuid
    ended = call_ended_at(call)
    fields = {
        "event": Event.RECORDING_FINAL,
        "call": conversation_uuid,
        "session": entry.session,
        "state": str(entry.state),
        "duration": entry.duration,
        "gaps": len(entry.gaps),
        "missing_seconds": round(sum(gap.seconds for gap in entry.gaps), 3),
        "end_reason": entry.end_reason,
        "flow": str(call.flow or ""),
        "call_ended": ended is not None,
    }
    log.log(_LEVELS.get(entry.state, logging.WARNING), f"recording {entry.state}", extra=fields)
    if entry.state != RecordingState.COMPLETE:
        detail = {"conversation_uuid": conversation_uuid, "session": entry.session}
        ident = f"{conversation_uuid}-{entry.session}"
        problem = Problem(ProblemKind.RECORDING, ident, now, _summary(entry), conversation_uuid, False, detail)
        note_problem(services.store, problem)
    if route.recording_webhook:
        _post(services, call, entry, route.recording_webhook, now)


def _post(services: OutcomeServices, call: CallRecord, entry: StreamEntry, url: str, now: float) -> None:
    audio = entry.object_key if entry.state != RecordingState.FAILED and entry.object_key else None
    link = audio_link(services.settings, services.store, audio, now)
    event = recording_event(call, entry, link)
    claim_result(services, call.conversation_uuid, f"recording-{entry.session}", url, event)


def _repair_reports(
    services: OutcomeServices, call: CallRecord, route: Route, just_settled: set[str], now: float
) -> None:
    """A recording settled by a request that died before claiming its webhook gets it now."""
    if not route.recording_webhook:
        return
    for entry in call.recordings:
        if not entry.settled or entry.session in just_settled:
            continue
        if services.store.read(delivery_key(call.conversation_uuid, f"recording-{entry.session}")) is None:
            _post(services, call, entry, route.recording_webhook, now)
