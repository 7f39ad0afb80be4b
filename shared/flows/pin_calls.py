"""PIN prompt calls, the use cases: place the call, answer Vonage's per-transaction webhooks,
and report the outcome to the caller's callback exactly once."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from shared.config.settings import Settings
from shared.core.deliveries import DeliveryRequest, DeliveryState, Encoding
from shared.core.errors import BadRequest, Conflict, NotFound, Unauthorized
from shared.core.identifiers import TRANSACTION_ID, is_shaped
from shared.core.ncco import Action
from shared.core.operations import Event, Problem, ProblemKind
from shared.core.pin_prompt import (
    PinEntry,
    PromptRequest,
    PromptTransaction,
    answer_ncco,
    apply_event,
    apply_input,
    callback_fields,
    new_transaction,
    parse_prompt_request,
    read_dtmf,
    settle_hang_up,
)
from shared.core.ports import BlobStore, OutboundCall, VonageCredentials
from shared.core.signatures import api_key_matches, unverified_claims
from shared.core.tasks import Retry, Task
from shared.core.tokens import sign_caller, verify_caller
from shared.core.webhooks import parse_call_event
from shared.flows.delivery import check_target, deliver_once
from shared.flows.documents import claim_once, read_document, update_document
from shared.flows.needs import HasCalls, HasHttp, HasQueue, HasSettings, HasStore
from shared.flows.problems import clear_problem, note_problem

__all__ = [
    "WEBHOOK_URL_PARAMS",
    "PromptServices",
    "create_prompt_call",
    "deliver_callback",
    "prompt_status",
    "reopen_callback",
    "settle_after_hang_up",
    "transaction_key",
    "webhook",
]

log = logging.getLogger(__name__)

PREFIX = "prompts/"
STEPS = ("answer", "input", "event")
# The query parameters tapedeck puts in each webhook URL of a transaction; the seal covers the first three.
WEBHOOK_URL_PARAMS = ("tid", "step", "sig", "attempt")
_ATTEMPT = re.compile(r"[0-9]{1,2}", re.ASCII)
# What a status lookup shows; the PIN's hash, the texts and the NCCOs stay inside.
_PUBLIC = ("tid", "to", "from", "status", "detail", "attempts", "max_attempts", "created_at", "updated_at")


class PromptServices(HasSettings, HasStore, HasHttp, HasQueue, HasCalls, Protocol):
    pass


def transaction_key(tid: str) -> str:
    if not is_shaped(tid, TRANSACTION_ID):
        raise NotFound("no such transaction")
    return f"{PREFIX}{tid}.json"


def _webhook_url(settings: Settings, tid: str, step: str) -> str:
    signature = sign_caller(settings.stream.token_secret, tid, f"prompt-{step}")
    return f"{settings.public_url}/prompt?tid={tid}&step={step}&sig={signature}"


def create_prompt_call(
    services: PromptServices, fields: Mapping[str, Any], credentials: VonageCredentials, mode: str, now: float
) -> str:
    """Check the request, store the transaction, and have Vonage place the call; returns its tid.

    The tid is returned only once Vonage accepted the call. A refused call leaves nothing behind:
    its caller got the refusal as the answer, and no tid to ask about.
    """
    settings, store = services.settings, services.store
    request = parse_prompt_request(fields)
    services.calls.check_credentials(credentials)
    try:
        check_target(request.callback, allow_private=settings.delivery.allow_private)
    except BadRequest as err:
        raise BadRequest(f"invalid fields: callback ({err})", {"callback": str(err)}) from err
    tid = _claim_transaction(store, request, credentials, mode, now=now, ttl_days=settings.prompt.ttl_days)
    call = OutboundCall(
        request.to, request.from_, _webhook_url(settings, tid, "answer"), _webhook_url(settings, tid, "event")
    )
    try:
        call_uuid = services.calls.create_call(call, credentials)
    except Exception as err:
        log.info("prompt call not placed", extra={"tid": tid, "error": str(err)})
        store.delete(transaction_key(tid))
        raise
    _update(store, tid, lambda d: d.placed(call_uuid))
    log.info("prompt call placed", extra={"tid": tid, "call": call_uuid, "auth": mode})
    return tid


def _claim_transaction(
    store: BlobStore, request: PromptRequest, credentials: VonageCredentials, mode: str, *, now: float, ttl_days: int
) -> str:
    """Store a new transaction under a fresh tid, and return the tid."""
    while True:
        # A random uuid never collides in practice; if one did, the next is as good.
        tid = str(uuid.uuid4())
        doc = new_transaction(tid, request, now, ttl_days)
        doc.place(mode, credentials.application_id or None)
        if claim_once(store, transaction_key(tid), doc.to_json()):
            return tid


def prompt_status(services: PromptServices, tid: str, now: float) -> dict[str, object]:
    transaction = _read(services.store, tid, now)
    doc = transaction.to_json()
    return {**{k: doc.get(k) for k in _PUBLIC}, "callback": transaction.callback.state}


def _read(store: BlobStore, tid: str, now: float) -> PromptTransaction:
    doc = read_document(store, transaction_key(tid), PromptTransaction)
    if doc is None or doc.expires_at <= now:
        raise NotFound("no such transaction")
    return doc


Change = Callable[[PromptTransaction], object]


def _update(store: BlobStore, tid: str, change: Change) -> PromptTransaction:
    def missing() -> PromptTransaction:
        raise NotFound("no such transaction")

    return update_document(store, transaction_key(tid), PromptTransaction, change, missing)


BodyReader = Callable[[str | None], Mapping[str, Any]]


def webhook(services: PromptServices, query: Mapping[str, str], read_body: BodyReader, now: float) -> list[Action]:
    """Vonage's answer, input or event webhook of one transaction; returns the NCCO to answer,
    or no action when there is no new NCCO (an event, the end of the tries, a stale input).

    `read_body(secret)` reads the webhook's fields, checking Vonage's signature with `secret`
    when given: only for transactions placed with the operator's own application, whose
    signature secret tapedeck knows. The URL's seal is checked for every transaction.
    """
    settings, store = services.settings, services.store
    tid, step = query.get("tid", ""), query.get("step", "")
    if step not in STEPS:
        raise BadRequest("step must be answer, input or event")
    verify_caller(settings.stream.token_secret, tid, f"prompt-{step}", query.get("sig", ""))
    doc = _read(store, tid, now)
    operator = doc.auth == "operator"
    params = read_body(settings.vonage.signature_secret if operator else None)
    timeout = settings.prompt.input_timeout
    input_url = _webhook_url(settings, tid, "input")
    if step == "answer":
        return answer_ncco(doc, input_url, timeout)
    if step == "input":
        if not is_shaped(query.get("attempt"), _ATTEMPT):
            raise BadRequest("attempt is missing or malformed")
        attempt = int(query["attempt"])
        digits, timed_out = read_dtmf(params)
        entry = PinEntry(attempt, digits, timed_out)
        reply: list[Action] = []

        def take(d: PromptTransaction) -> None:
            nonlocal reply
            reply = apply_input(d, entry, input_url=input_url, timeout=timeout, now=now)

        _settle(services, tid, take)
        return reply
    # Every shape of event Vonage sends is taken; only the statuses that end a call settle anything.
    event = parse_call_event(params)
    status, timestamp = event.status, event.timestamp
    _settle(services, tid, lambda d: apply_event(d, status, timestamp, now))
    if status == "completed":
        # Checked again after the grace, in a request of its own; by then it re-reads the state.
        services.queue.enqueue(Task("settle-hangup", tid, delay=settings.prompt.hangup_grace))
    return []


def settle_after_hang_up(services: PromptServices, tid: str, now: float) -> str:
    """A call that ended without a result is an error, once a late input webhook had its chance.

    A callback settled earlier but never tried (its request died before queuing it) is queued
    again here; a task of the same name already queued makes that a no-op.
    """
    _settle(services, tid, lambda d: settle_hang_up(d, now))
    callback = _read(services.store, tid, now).callback
    if callback.state == DeliveryState.SENDING and not callback.attempts:
        services.queue.enqueue(Task("deliver-callback", tid))
    return "settled"


def _settle(services: PromptServices, tid: str, change: Change) -> None:
    """Apply `change` atomically; if this update is the one that settled the outcome, send the callback.

    The document's generation precondition makes the settling update happen once, however many
    webhooks race: the loser re-reads, finds the outcome final, and changes nothing.
    """
    before: list[DeliveryState] = []

    def run(doc: PromptTransaction) -> None:
        before[:] = [doc.callback.state]
        change(doc)
        if before == [DeliveryState.WAITING] and doc.callback.state == DeliveryState.DUE:
            doc.callback.state = DeliveryState.SENDING

    doc = _update(services.store, tid, run)
    if before == [DeliveryState.WAITING] and doc.callback.state == DeliveryState.SENDING:
        services.queue.enqueue(Task("deliver-callback", tid))


def deliver_callback(services: PromptServices, tid: str, *, attempt: int, final: bool, now: float) -> str:
    """One attempt at the callback, kept in the document; Retry while attempts are left."""
    settings, store = services.settings, services.store
    taken = False

    def take(d: PromptTransaction) -> None:
        nonlocal taken
        taken = d.final and d.callback.take_attempt(attempt)

    doc = _update(store, tid, take)
    if not taken:
        return f"nothing to send (callback {doc.callback.state})"
    callback = doc.callback
    request = DeliveryRequest(callback.url, callback_fields(doc), callback.method or "POST", Encoding.FORM)
    outcome = deliver_once(
        services.http, settings.delivery, settings.delivery.secret, request, attempt=attempt, now=now
    )
    state = DeliveryState.RETRYING

    def note(d: PromptTransaction) -> None:
        nonlocal state
        state = d.callback.note(outcome, final=final, now=now)

    _update(store, tid, note)
    fields = {"tid": tid, "webhook": "callback", "attempt": attempt, "http": outcome.status, "error": outcome.error}
    if state == DeliveryState.RETRYING:
        log.warning("callback will be tried again", extra={"event": Event.DELIVERY_RETRYING, **fields})
        raise Retry(f"callback not delivered yet: {outcome.error}")
    ident = f"prompt-{tid}"
    if state == DeliveryState.FAILED:
        log.error("callback not delivered", extra={"event": Event.DELIVERY_FAILED, **fields})
        summary = f"PIN prompt callback to {callback.url}: {outcome.error} (attempt {attempt})"
        note_problem(store, Problem(ProblemKind.DELIVERY, ident, now, summary, None, True, {"tid": tid}))
    else:
        log.info("callback delivered", extra={"event": Event.DELIVERY_DELIVERED, **fields})
        if callback.last is not None:
            clear_problem(store, ProblemKind.DELIVERY, ident)
    return str(state)


def reopen_callback(services: PromptServices, tid: str, rerun: int) -> bool:
    """Send a failed callback again, from a first attempt, on a task of its own; False when it did
    not fail (or the transaction is gone)."""
    if read_document(services.store, transaction_key(tid), PromptTransaction) is None:
        return False
    reopened = False

    def reopen(doc: PromptTransaction) -> None:
        nonlocal reopened
        reopened = doc.callback.reopen()

    _update(services.store, tid, reopen)
    if reopened:
        services.queue.enqueue(Task("deliver-callback", tid, rerun=rerun))
    return reopened


def credentials_for(
    settings: Settings, api_key: str, authorization: str, fields: Mapping[str, Any], *, secure: bool
) -> tuple[VonageCredentials, str]:
    """Whose application places the call, and how the request proved it, by the three modes."""
    if api_key:
        if not api_key_matches(api_key, settings.prompt.api_key):
            raise Unauthorized("wrong API key")
        if not (settings.vonage.application_id and settings.vonage.private_key):
            raise Conflict("tapedeck has no Vonage application configured for API-key requests")
        return VonageCredentials(settings.vonage.application_id, settings.vonage.private_key), "operator"
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return VonageCredentials(_application_of(token.strip()), bearer=token.strip()), "bearer"
    app_id, key = fields.get("app_id"), fields.get("private_key")
    if app_id or key:
        if not secure:
            raise BadRequest("app_id and private_key may only be sent over HTTPS")
        if not (isinstance(app_id, str) and isinstance(key, str) and "PRIVATE KEY" in key):
            raise BadRequest("app_id and private_key must both be given", {"private_key": "must be a PEM key"})
        return VonageCredentials(app_id, key.replace("\\n", "\n")), "application-key"
    raise Unauthorized("send an API key header, a Vonage application JWT, or app_id and private_key")


def _application_of(token: str) -> str:
    """The application_id claim of a JWT, unverified: Vonage verifies it when placing the call."""
    return str(unverified_claims(token).get("application_id", ""))
