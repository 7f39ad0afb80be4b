"""A result's signed delivery to a route's webhook: claimed once, then attempted by the queue.

A conversation's transcript (`result_webhook`) and a live transcript's final copy
(`live_webhook`) are both results: a record under `calls/<id>/deliveries/<name>.json` claims the
delivery once, whatever number of requests reach the same result, and a `deliver-result` task
makes one attempt per run, its outcome kept in the record, until it is delivered or out of attempts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from shared.core.call_record import call_key
from shared.core.deliveries import DeliveryRecord, DeliveryRequest, DeliveryState
from shared.core.errors import Conflict
from shared.core.operations import Event, Problem, ProblemKind, webhook_kind
from shared.core.tasks import Retry, Task
from shared.flows.delivery import deliver_once
from shared.flows.documents import claim_once, read_document, update_document
from shared.flows.needs import HasHttp, HasQueue, HasSettings, HasStore
from shared.flows.problems import clear_problem, note_problem

__all__ = ["ResultServices", "claim_result", "deliver_result", "delivery_key", "delivery_name", "reopen_result"]

log = logging.getLogger(__name__)


class ResultServices(HasSettings, HasStore, HasHttp, HasQueue, Protocol):
    pass


def delivery_key(conversation_uuid: str, name: str) -> str:
    return call_key(conversation_uuid, f"deliveries/{name}.json")


def delivery_name(conversation_uuid: str, name: str) -> str:
    """A result delivery's id among problems: the call's, then the delivery's."""
    return f"{conversation_uuid}-{name}"


def claim_result(
    services: ResultServices, conversation_uuid: str, name: str, url: str, payload: Mapping[str, object]
) -> None:
    """Claim the delivery of `payload` to `url` once per (call, `name`) and queue its first attempt."""
    claim = DeliveryRecord(url, DeliveryState.SENDING, payload=dict(payload), attempts=0)
    key = delivery_key(conversation_uuid, name)
    if not claim_once(services.store, key, claim.to_json()):
        existing = read_document(services.store, key, DeliveryRecord)
        if existing is None or existing.state != DeliveryState.SENDING:
            log.info("result already delivered", extra={"call": conversation_uuid, "delivery": name})
            return
        # Claimed, and perhaps never queued (the claiming request died in between): queue it again;
        # a task of the same name already queued makes this a no-op.
    keys = {"conversation_uuid": conversation_uuid, "recording_uuid": name}
    services.queue.enqueue(Task("deliver-result", name, keys))


def deliver_result(
    services: ResultServices,
    conversation_uuid: str,
    name: str,
    *,
    attempt: int,
    final: bool,
    now: float,
) -> str:
    """One attempt at a claimed result, its outcome kept in the claim; Retry while attempts are left."""
    key = delivery_key(conversation_uuid, name)
    if read_document(services.store, key, DeliveryRecord) is None:
        return "nothing to deliver"
    taken = False

    def take(record: DeliveryRecord) -> None:
        nonlocal taken
        taken = record.take_attempt(attempt)

    claim = update_document(services.store, key, DeliveryRecord, take, _no_claim)
    if not taken:
        return f"nothing to send (result {claim.state})"
    settings = services.settings
    request = DeliveryRequest(claim.url, claim.payload or {})
    outcome = deliver_once(
        services.http, settings.delivery, settings.delivery.secret, request, attempt=attempt, now=now
    )
    state = DeliveryState.RETRYING

    def note(record: DeliveryRecord) -> None:
        nonlocal state
        state = record.note(outcome, final=final, now=now)

    update_document(services.store, key, DeliveryRecord, note, _no_claim)
    fields = {"call": conversation_uuid, "delivery": name, "webhook": webhook_kind(name), "attempt": attempt}
    fields |= {"http": outcome.status, "error": outcome.error}
    if state == DeliveryState.RETRYING:
        log.warning("result webhook will be tried again", extra={"event": Event.DELIVERY_RETRYING, **fields})
        raise Retry(f"result webhook not delivered yet: {outcome.error}")
    ident = delivery_name(conversation_uuid, name)
    if state == DeliveryState.FAILED:
        log.error("result webhook not delivered", extra={"event": Event.DELIVERY_FAILED, **fields})
        summary = f"{webhook_kind(name)} webhook to {claim.url}: {outcome.error} (attempt {attempt})"
        detail = {"conversation_uuid": conversation_uuid, "name": name}
        problem = Problem(ProblemKind.DELIVERY, ident, now, summary, conversation_uuid, True, detail)
        note_problem(services.store, problem)
    else:
        log.info("result webhook delivered", extra={"event": Event.DELIVERY_DELIVERED, **fields})
        if claim.last is not None:
            # Delivered after a failure, perhaps a retry asked for on the Problems page.
            clear_problem(services.store, ProblemKind.DELIVERY, ident)
    return str(state)


def reopen_result(services: ResultServices, conversation_uuid: str, name: str, rerun: int) -> bool:
    """Send a failed result again, from a first attempt, on a task of its own; False when the
    delivery did not fail (it is gone, or delivered since)."""
    key = delivery_key(conversation_uuid, name)
    if read_document(services.store, key, DeliveryRecord) is None:
        return False
    reopened = False

    def reopen(record: DeliveryRecord) -> None:
        nonlocal reopened
        reopened = record.reopen()

    update_document(services.store, key, DeliveryRecord, reopen, _no_claim)
    if reopened:
        keys = {"conversation_uuid": conversation_uuid, "recording_uuid": name}
        services.queue.enqueue(Task("deliver-result", name, keys, rerun=rerun))
    return reopened


def _no_claim() -> DeliveryRecord:
    raise Conflict("the result's delivery record disappeared")
