"""Erasing calls everywhere they left a trace: the retention sweep, forgetting a number, and the
recordings browser's delete share one erasure (shared/core/erasure.py lists the traces).

Every step deletes what is there and passes over what is not, so an erasure that dies half way
is finished by running it again. A call's record is erased after everything it names and its
index entry last of all, so a second run still finds the call and what is left of it.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.config.settings import Settings, engines_in_use
from shared.core.call_index import INDEX_PREFIX, CallSummary, index_key, indexed_call
from shared.core.call_record import CALL_DOCUMENT, CallRecord, call_ended, call_key, new_call
from shared.core.erasure import (
    FORGET_PREFIX,
    FORGOTTEN_PREFIX,
    count_document,
    expired,
    forget_record_key,
    forget_request_key,
    number_digest,
    trace_kind,
)
from shared.core.errors import BadRequest, Conflict, NotFound
from shared.core.operations import PROBLEMS_PREFIX, RETRIES_PREFIX, Event
from shared.core.ports import BlobStore, StorageConflict, Transcript, TranscriptionJob
from shared.core.prompt_transaction import PromptTransaction
from shared.core.tasks import FAILED_TASKS_PREFIX
from shared.core.times import instant, iso
from shared.flows.calls import update_call
from shared.flows.documents import (
    UNREADABLE,
    document_as,
    document_of,
    encode_document,
    keep_place,
    next_batch,
    read_json,
)
from shared.flows.jobs import JOB_PREFIX, call_job_names, job_key
from shared.flows.links import erase_link
from shared.flows.needs import HasEngines, HasMessenger, HasSettings, HasStore
from shared.flows.pin_calls import PREFIX as PROMPTS_PREFIX
from shared.flows.recording_outcomes import pending_key

__all__ = [
    "DiscardLater",
    "EraseServices",
    "ForgetReport",
    "ForgetRequest",
    "RetentionReport",
    "check_deletable",
    "check_forgettable",
    "delete_call",
    "erase_call",
    "forget_number",
    "forget_requests",
    "forgotten_records",
    "request_forget",
    "run_discards",
    "run_forget",
    "run_forget_requests",
    "run_retention",
    "set_legal_hold",
]

log = logging.getLogger(__name__)

RETENTION_CURSOR_KEY = "sweep/retention.json"
DISCARD_PREFIX = "sweep/discard/"
# A call not yet over is not erased by forgetting its number until this long after it began: its
# later webhooks would write it again. Past that, a call whose end never came is erased.
IN_PROGRESS_LIMIT = 86400.0
# Vonage's statuses of a call still going on.
_GOING_ON = frozenset({"started", "ringing", "answered"})
# Where the traces that name calls only in their content are: few, and read whole.
_NAMING_PREFIXES = (PROBLEMS_PREFIX, RETRIES_PREFIX, FAILED_TASKS_PREFIX)


class EraseServices(HasSettings, HasStore, HasMessenger, HasEngines, Protocol):
    """What an erasure reaches: the store, the engine that holds copies of recordings, and the
    messenger that keeps copies of pages."""


def _discard(services: EraseServices, name: str) -> int:
    """Discard a job's copies from every engine this deployment may have given it to (once each)."""
    engines = (services.transcriber_for(engine) for engine in engines_in_use(services.settings))
    return sum(engine.discard(name) for engine in {id(engine): engine for engine in engines}.values())


def erase_call(
    services: EraseServices, conversation_uuid: str, *, deleted: dict[str, str] | None = None
) -> Counter[str]:
    """Erase every trace of one call; returns what was removed, by kind. With `deleted` (who
    deleted it, and when: the browser's delete) call.json stays as a record of that and nothing else."""
    store = services.store
    folder = call_key(conversation_uuid, "")
    record_key = call_key(conversation_uuid, CALL_DOCUMENT)
    blob = store.read(record_key)
    record = document_as(blob, CallRecord.from_json, lambda found: found.conversation_uuid == conversation_uuid)
    objects = store.list(folder)
    counts: Counter[str] = Counter()
    for name in _job_names(record, objects):
        counts["engine copies"] += _discard(services, name)
        counts["jobs"] += _delete(store, job_key(name))
    for info in objects:
        kind, name = trace_kind(info.key), _stem(info.key)
        if kind == "link marks":
            counts["links"] += erase_link(store, name)
        elif kind == "pages":
            counts["outbox messages"] += services.messenger.forget(name)
    counts["problems"] += _delete(store, pending_key(conversation_uuid))
    counts["problems"] += _delete_naming(store, [conversation_uuid])
    for info in objects:
        if info.key != record_key:
            store.delete(info.key)
            counts[trace_kind(info.key)] += 1
    created_at = record.created_at if record is not None else _created_at(blob)
    if deleted is not None:
        _leave_tombstone(store, conversation_uuid, created_at, deleted, blob)
    elif blob is not None:
        store.delete(record_key)
        counts["call records"] += 1
    counts["index entries"] += _delete_summaries(store, conversation_uuid, created_at)
    return counts


def _job_names(record: CallRecord | None, objects: Iterable[Any]) -> list[str]:
    """The call's jobs: from its record, and from its page claims (named by recording) when the
    record cannot be read."""
    if record is not None:
        return call_job_names(record)
    recordings = {_stem(info.key).rsplit("-", 1)[0] for info in objects if trace_kind(info.key) == "pages"}
    return [f"{JOB_PREFIX}{tag}-{rec}" for rec in sorted(recordings) for tag in ("vm", "cv")]


def _stem(key: str) -> str:
    return key.rsplit("/", 1)[-1].removesuffix(".json")


def _delete(store: BlobStore, key: str) -> int:
    if store.read(key) is None:
        return 0
    store.delete(key)
    return 1


def _delete_naming(store: BlobStore, idents: list[str]) -> int:
    """Delete the problems, retry requests and given-up local tasks that name any of `idents`."""
    removed = 0
    for prefix in _NAMING_PREFIXES:
        infos = store.list(prefix)
        for info, blob in zip(infos, store.read_many([i.key for i in infos]), strict=True):
            text = info.key + (blob.data.decode("utf-8", "replace") if blob is not None else "")
            if any(ident in text for ident in idents):
                store.delete(info.key)
                removed += 1
    return removed


def _created_at(blob: Any) -> str | None:
    found = (document_of(blob) or {}).get("created_at")
    return found if isinstance(found, str) else None


def _delete_summaries(store: BlobStore, conversation_uuid: str, created_at: str | None) -> int:
    """Delete the call's index entry: where its date says, or, for a record that cannot say its
    date, wherever a walk through the whole index finds it (this rare case pays for the walk)."""
    if created_at is not None and instant(created_at) is not None:
        return _delete(store, index_key(created_at, conversation_uuid))
    removed = 0
    for info in store.list(INDEX_PREFIX):
        if info.key.endswith(".json") and indexed_call(info.key) == conversation_uuid:
            store.delete(info.key)
            removed += 1
    return removed


def _leave_tombstone(
    store: BlobStore, conversation_uuid: str, created_at: str | None, deleted: dict[str, str], blob: Any
) -> None:
    """call.json as a record of the deletion alone: no numbers, events or recordings. The first
    deletion's who and when are kept."""
    before = document_of(blob) or {}
    kept = before.get("deleted")
    tombstone = new_call(conversation_uuid, created_at)
    tombstone.deleted = kept if isinstance(kept, dict) else deleted
    key = call_key(conversation_uuid, CALL_DOCUMENT)
    # A conflict: written meanwhile, by a writer that then erases it again in its own turn.
    with contextlib.suppress(StorageConflict):
        store.write(
            key,
            encode_document(tombstone.to_json()),
            "application/json",
            if_generation_match=blob.generation if blob is not None else 0,
        )


def check_deletable(store: BlobStore, conversation_uuid: str) -> None:
    """NotFound for a call never stored; Conflict (409) for one under legal hold."""
    blob = store.read(call_key(conversation_uuid, CALL_DOCUMENT))
    if blob is None:
        raise NotFound("no such call")
    record = document_as(blob, CallRecord.from_json, lambda found: found.conversation_uuid == conversation_uuid)
    if record is not None and record.legal_hold is not None:
        raise Conflict("this call is under legal hold: clear the hold to delete it")


def delete_call(services: EraseServices, conversation_uuid: str, by: str, now: float) -> Counter[str]:
    """The browser's delete: erase the call, keeping in call.json only who deleted it and when
    (the first deletion's, when done again). Refused (409) while the call is under legal hold."""
    check_deletable(services.store, conversation_uuid)
    counts = erase_call(services, conversation_uuid, deleted={"at": iso(now), "by": by})
    log.info("call deleted", extra={"call": conversation_uuid, "objects": count_document(counts), "by": by})
    return counts


@dataclass(frozen=True)
class DiscardLater:
    """The engine as a process without its credentials (the recordings browser) sees it: each job
    to discard is noted under `sweep/discard/`, and the next sweep, which has the engine, discards it."""

    store: BlobStore

    def start(self, job: TranscriptionJob) -> Transcript | None:
        raise Conflict("this process does not transcribe")

    def collect(self, job_name: str) -> Transcript:
        raise Conflict("this process does not transcribe")

    def discard(self, job_name: str) -> int:
        self.store.write(f"{DISCARD_PREFIX}{job_name}.json", b"{}", "application/json")
        return 0


def run_discards(services: EraseServices) -> int:
    """Discard the engine's copies of each job noted by DiscardLater; returns how many it removed."""
    removed = 0
    for info in services.store.list_after(DISCARD_PREFIX, "", services.settings.sweep.batch):
        removed += _discard(services, _stem(info.key))
        services.store.delete(info.key)
    return removed


# --- legal hold -----------------------------------------------------------------------------------


def set_legal_hold(store: BlobStore, conversation_uuid: str, hold: bool, by: str, now: float) -> CallRecord:
    """Put the call under legal hold (kept past its retention, and from being forgotten or deleted),
    or clear the hold; the call's record keeps who and when."""

    def change(call: CallRecord) -> None:
        if call.deleted:
            raise Conflict("this call was deleted")
        call.legal_hold = {"at": iso(now), "by": by} if hold else None

    return update_call(store, conversation_uuid, change, now)


# --- retention ------------------------------------------------------------------------------------


@dataclass
class RetentionReport:
    """One retention pass: calls looked at, erased, kept under legal hold; objects erased."""

    looked_at: int = 0
    erased: int = 0
    held: int = 0
    objects: Counter[str] = field(default_factory=Counter)
    more: bool = False

    def describe(self) -> str:
        return (
            f"retention: {self.looked_at} call(s) looked at, {self.erased} erased "
            f"({sum(self.objects.values())} object(s)), {self.held} kept under legal hold"
            + ("; more next run" if self.more else "")
        )


def run_retention(services: EraseServices, now: float) -> RetentionReport:
    """Erase up to SWEEP_BATCH calls past their route's retention, going on from where the last
    pass stopped; calls under legal hold are kept."""
    report = RetentionReport()
    settings, store = services.settings, services.store
    shortest = _shortest_retention(settings)
    if shortest is None:
        return report
    # Index names sort newest first: every call older than the shortest retention lies past this.
    start = index_key(iso(now - shortest * 86400), "").removesuffix(".json")
    batch = next_batch(store, RETENTION_CURSOR_KEY, INDEX_PREFIX, settings.sweep.batch, start)
    for info, blob in zip(batch.infos, store.read_many([i.key for i in batch.infos]), strict=True):
        report.looked_at += 1
        summary = document_as(blob, CallSummary.from_json, lambda _: True)
        conversation_uuid = indexed_call(info.key)
        created = instant(summary.created_at) if summary is not None else None
        days = _retention_days(settings, summary.to if summary is not None else "")
        if created is None or not expired(created, days, now):
            continue
        if _held(store, conversation_uuid):
            report.held += 1
            continue
        report.objects += erase_call(services, conversation_uuid)
        report.erased += 1
    report.more = batch.more
    keep_place(store, RETENTION_CURSOR_KEY, batch, now)
    if report.erased or report.held:
        fields = {"event": Event.RETENTION_RUN, "erased": report.erased, "held": report.held}
        log.info("calls past their retention erased", extra={**fields, "objects": count_document(report.objects)})
    return report


def _retention_days(settings: Settings, called: str) -> int:
    days = settings.routes.for_number(called).retention_days if called else None
    return settings.storage.retention_days if days is None else days


def _shortest_retention(settings: Settings) -> int | None:
    """The shortest retention any call can have, None when every call is kept until deleted."""
    found = [settings.storage.retention_days]
    found += [r.retention_days for r in settings.routes.by_number.values() if r.retention_days is not None]
    kept = [days for days in found if days > 0]
    return min(kept) if kept else None


def _held(store: BlobStore, conversation_uuid: str) -> bool:
    blob = store.read(call_key(conversation_uuid, CALL_DOCUMENT))
    record = document_as(blob, CallRecord.from_json, lambda _: True)
    return record is not None and record.legal_hold is not None


# --- forgetting a number --------------------------------------------------------------------------


@dataclass
class ForgetReport:
    """Where forgetting one number stands: objects erased by kind, calls kept under legal hold or
    not yet over, and whether every call and transaction has been looked at."""

    digest: str
    objects: Counter[str] = field(default_factory=Counter)
    calls: int = 0
    held: int = 0
    in_progress: int = 0
    done: bool = False

    def describe(self) -> str:
        state = "done" if self.done else "under way"
        kept = f"; {self.held} call(s) kept under legal hold" if self.held else ""
        waiting = f"; {self.in_progress} call(s) not over yet, erased once they are" if self.in_progress else ""
        objects = ", ".join(f"{n} {kind}" for kind, n in count_document(self.objects).items()) or "nothing"
        return f"forget {self.digest}: {state}; {self.calls} call(s) erased; removed {objects}{kept}{waiting}"


def request_forget(store: BlobStore, number: str, by: str, now: float) -> str:
    """Ask for every call and PIN prompt transaction of `number` to be erased (the sweep does it,
    a batch a run); returns the request's digest. Asking again while it waits changes nothing."""
    digest = number_digest(number)
    request = {"number": number, "by": by, "asked_at": iso(now), "calls_after": "", "prompts_after": ""}
    with contextlib.suppress(StorageConflict):
        store.write(forget_request_key(digest), encode_document(request), "application/json", if_generation_match=0)
    return digest


def check_forgettable(settings: Settings, number: str) -> None:
    """BadRequest for one of tapedeck's own numbers: forgetting it would erase every call to it."""
    if number in settings.routes.by_number:
        raise BadRequest(f"{number} is one of this deployment's own numbers (a route), not a caller's")


def forget_number(services: EraseServices, number: str, by: str, now: float) -> ForgetReport:
    """Forget `number` at once, batch after batch, resuming a request that stopped half way."""
    check_forgettable(services.settings, number)
    digest = request_forget(services.store, number, by, now)
    total = ForgetReport(digest)
    while True:
        batch = run_forget(services, digest, now)
        total.objects += batch.objects
        total.calls += batch.calls
        total.held, total.in_progress, total.done = batch.held, batch.in_progress, batch.done
        if batch.done or batch.held or batch.in_progress:
            return total


@dataclass(frozen=True)
class ForgetRequest:
    """A request to forget a number, as the browser lists it: the number shown by its last three
    digits only, who asked, when, and how far it has got."""

    digest: str
    ending: str
    by: str
    asked_at: str
    calls: int
    held: int
    in_progress: int


def forget_requests(store: BlobStore) -> list[ForgetRequest]:
    """The requests to forget a number that the sweep has not finished."""
    found = []
    for info in store.list(FORGET_PREFIX):
        request = read_json(store, info.key) or {}
        number = request.get("number")
        if not isinstance(number, str):
            continue
        found.append(
            ForgetRequest(
                _stem(info.key),
                number[-3:],
                str(request.get("by") or ""),
                str(request.get("asked_at") or ""),
                int(request.get("calls") or 0),
                int(request.get("held") or 0),
                int(request.get("in_progress") or 0),
            )
        )
    return found


def forgotten_records(store: BlobStore, limit: int) -> list[dict[str, Any]]:
    """The records of numbers forgotten, one entry per request that erased something."""
    entries = []
    for info in store.list_after(FORGOTTEN_PREFIX, "", limit):
        record = read_json(store, info.key) or {}
        for run in record.get("runs") or []:
            if isinstance(run, dict):
                entries.append({"forget": _stem(info.key), **run})
    return sorted(entries, key=lambda entry: str(entry.get("finished_at")), reverse=True)


def run_forget_requests(services: EraseServices, now: float) -> list[ForgetReport]:
    """One batch of each request to forget a number waiting under `forget/`."""
    return [run_forget(services, _stem(info.key), now) for info in services.store.list(FORGET_PREFIX)]


def run_forget(services: EraseServices, digest: str, now: float) -> ForgetReport:
    """One batch of one request: up to SWEEP_BATCH index entries, then PIN prompt transactions.

    The request keeps the number and where it got to until every call and transaction has been
    looked at. Then the number's record is written (its digest, who asked, when, the objects of
    each kind, never the number) and the request is removed; but when calls were kept (under legal
    hold, or not over yet) the request starts over on a later run, and `held` and `in_progress`
    say how many. The report's objects and calls are this batch's."""
    store, batch = services.store, services.settings.sweep.batch
    key = forget_request_key(digest)
    request = read_json(store, key)
    report = ForgetReport(digest)
    if request is None or not isinstance(request.get("number"), str):
        report.done = True
        return report
    number = request["number"]
    kept = Counter({"held": int(request.get("held") or 0), "in progress": int(request.get("in_progress") or 0)})
    if request.get("calls_after") != "end":
        infos = store.list_after(INDEX_PREFIX, str(request.get("calls_after") or ""), batch)
        for blob in store.read_many([i.key for i in infos]):
            summary = document_as(blob, CallSummary.from_json, lambda _: True)
            if summary is None or number not in (summary.from_, summary.to):
                continue
            state = _forgettable(store, summary.conversation_uuid, now)
            if state != "erase":
                kept[state] += 1
                continue
            report.objects += erase_call(services, summary.conversation_uuid)
            report.calls += 1
        request["calls_after"] = infos[-1].key if len(infos) == batch else "end"
    else:
        infos = store.list_after(PROMPTS_PREFIX, str(request.get("prompts_after") or ""), batch)
        report.objects += _forget_prompts(store, infos, number)
        request["prompts_after"] = infos[-1].key if len(infos) == batch else "end"
    counts = Counter(request.get("objects") or {}) + report.objects
    request |= {"objects": dict(counts), "calls": int(request.get("calls") or 0) + report.calls}
    request |= {"held": kept["held"], "in_progress": kept["in progress"]}
    if request.get("prompts_after") != "end":
        store.write(key, encode_document(request), "application/json")
        return report
    report.held, report.in_progress = kept["held"], kept["in progress"]
    _record_forgotten(store, digest, request, counts, now)
    if report.held or report.in_progress:
        again = {"calls_after": "", "prompts_after": "", "objects": {}, "calls": 0, "held": 0, "in_progress": 0}
        store.write(key, encode_document(request | again), "application/json")
    else:
        report.done = True
        store.delete(key)
    fields = {"event": Event.FORGET_RUN, "forget": digest, "objects": count_document(counts)}
    log.info("number forgotten", extra={**fields, "held": report.held, "in_progress": report.in_progress})
    return report


def _forgettable(store: BlobStore, conversation_uuid: str, now: float) -> str:
    blob = store.read(call_key(conversation_uuid, CALL_DOCUMENT))
    record = document_as(blob, CallRecord.from_json, lambda _: True)
    if record is None:
        return "erase"
    if record.legal_hold is not None:
        return "held"
    created = instant(record.created_at) if record.created_at else None
    going_on = record.status in _GOING_ON or any(entry.state == "streaming" for entry in record.recordings)
    if going_on and not call_ended(record) and created is not None and now - created < IN_PROGRESS_LIMIT:
        return "in progress"
    return "erase"


def _forget_prompts(store: BlobStore, infos: list[Any], number: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for info, blob in zip(infos, store.read_many([i.key for i in infos]), strict=True):
        document = document_of(blob)
        if document is None:
            continue
        try:
            transaction = PromptTransaction.from_json(document)
        except UNREADABLE:
            continue
        if number not in (transaction.to, transaction.from_):
            continue
        store.delete(info.key)
        counts["prompt transactions"] += 1
        counts["problems"] += _delete_naming(store, [transaction.tid])
    return counts


def _record_forgotten(store: BlobStore, digest: str, request: dict[str, Any], counts: Counter[str], now: float) -> None:
    """The number's record: one entry per request that erased something (the first request's
    entry is written even when it found nothing); never the number."""
    key = forget_record_key(digest)
    record = read_json(store, key)
    if record is not None and not sum(counts.values()):
        return
    entry = {
        "by": request.get("by"),
        "asked_at": request.get("asked_at"),
        "finished_at": iso(now),
        "calls": request.get("calls", 0),
        "objects": count_document(counts),
    }
    runs = list((record or {}).get("runs") or [])
    runs.append(entry)
    store.write(key, encode_document({"forget": digest, "runs": runs}), "application/json")
