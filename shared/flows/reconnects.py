"""A streamed call's websocket legs: where their events go, and connecting the call again when a
leg's socket closes before the call (see shared/core/legs.py for which closes do).

Each stream connect's eventUrl is the `event` function with the leg's number sealed to the
conversation (`?leg=<n>&sig=…`: Vonage signs a webhook's body, not its query). Its events are
kept in call.json marked with the leg, as the leg's, not the call's. Its `disconnected` event is
answered with an NCCO that connects the call to the recorder again as leg n + 1: the same
headers, a fresh stream token. The reconnect is noted in call.json by its leg, so Vonage
delivering the same event again changes nothing and gets the same connect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from shared.config.settings import Settings
from shared.core import ncco
from shared.core.call_record import LEG_DETAIL, CallRecord, record_reconnect, record_status
from shared.core.errors import BadRequest
from shared.core.legs import AfterClose, after_close
from shared.core.ports import BlobStore
from shared.core.tokens import mint_stream_token, sign_caller, verify_caller
from shared.core.webhooks import CallEvent, InboundCall, parse_call_event, parse_inbound_call
from shared.flows.calls import iso, read_call, update_call

__all__ = [
    "DISCONNECT_GRACE",
    "LEG_URL_PARAMS",
    "answer_stream_event",
    "read_stream_leg",
    "stream_event_url",
    "stream_target",
]

log = logging.getLogger(__name__)

# The query parameters tapedeck puts in a stream connect's eventUrl; the seal covers the leg.
LEG_URL_PARAMS = ("leg", "sig")
# How long a `disconnected` with no note from the recorder waits for the call's `completed`
# (a hang-up) before it reconnects; the recorder's own closes are noted and never wait.
DISCONNECT_GRACE = 1.0
_GRACE_POLL = 0.1
_LEG_DIGITS = 3


def stream_target(settings: Settings, conversation_uuid: str, now: float) -> ncco.StreamTarget:
    """The recorder's socket, at the stream's rate, with a fresh token for this conversation."""
    token = mint_stream_token(settings.stream.token_secret, conversation_uuid, now, settings.stream.token_ttl)
    return ncco.StreamTarget(settings.stream.recorder_url, settings.stream.rate, token)


def _seal(leg: int) -> str:
    return f"leg:{leg}"


def stream_event_url(settings: Settings, conversation_uuid: str, leg: int) -> str:
    """A stream connect's eventUrl: the `event` function, with the leg sealed to this conversation."""
    signature = sign_caller(settings.stream.token_secret, conversation_uuid, _seal(leg))
    return f"{settings.public_url}/event?leg={leg}&sig={signature}"


def read_stream_leg(settings: Settings, conversation_uuid: str, params: Mapping[str, Any]) -> int:
    """The leg of a stream connect's event, checked against its seal."""
    leg, signature = params.get("leg"), params.get("sig")
    if not isinstance(leg, str) or not leg.isascii() or not leg.isdigit() or len(leg) > _LEG_DIGITS:
        raise BadRequest("leg must be a whole number")
    if not isinstance(signature, str):
        raise BadRequest("sig must be a string")
    verify_caller(settings.stream.token_secret, conversation_uuid, _seal(int(leg)), signature)
    return int(leg)


def _keep(call: CallRecord, event: CallEvent, leg: int) -> None:
    record_status(
        call,
        status=event.status,
        timestamp=event.timestamp,
        uuid=event.uuid or None,
        direction=event.direction or None,
        details={**event.details, LEG_DETAIL: leg},
    )


def _settled(store: BlobStore, conversation_uuid: str, leg: int, sleep: Callable[[float], None]) -> AfterClose:
    """What follows the leg's close, after waiting up to DISCONNECT_GRACE while it is unsure."""
    outcome = after_close(read_call(store, conversation_uuid), leg)
    for _ in range(round(DISCONNECT_GRACE / _GRACE_POLL)):
        if outcome != AfterClose.UNSURE:
            break
        sleep(_GRACE_POLL)
        outcome = after_close(read_call(store, conversation_uuid), leg)
    return AfterClose.RECONNECT if outcome == AfterClose.UNSURE else outcome


def _caller(call: CallRecord, headers: object) -> InboundCall:
    """The call as the first connect's headers named it: Vonage echoes them in the leg's events;
    call.json keeps the same, should they be missing."""
    if isinstance(headers, dict) and headers.get("conversation_uuid") == call.conversation_uuid:
        try:
            return parse_inbound_call(headers)
        except BadRequest:
            pass
    return InboundCall(call.conversation_uuid, call.uuids[0] if call.uuids else "", call.from_ or "", call.to or "")


def answer_stream_event(
    settings: Settings,
    store: BlobStore,
    params: Mapping[str, Any],
    now: float,
    sleep: Callable[[float], None] = time.sleep,
) -> list[ncco.Action] | None:
    """Keep an event of a stream connect's leg; for a `disconnected` that the call survives, the
    NCCO that connects the call to the recorder again."""
    event = parse_call_event(params)
    conversation_uuid = event.conversation_uuid
    if not conversation_uuid:
        raise BadRequest("conversation_uuid is missing or malformed")
    leg = read_stream_leg(settings, conversation_uuid, params)
    outcome = _settled(store, conversation_uuid, leg, sleep) if event.status == "disconnected" else None

    def change(call: CallRecord) -> None:
        _keep(call, event, leg)
        if outcome == AfterClose.RECONNECT:
            record_reconnect(call, leg=leg + 1, disconnected_at=event.timestamp, answered_at=iso(now))

    call = update_call(store, conversation_uuid, change, now)
    if event.status in ("failed", "unanswered") and leg > 1:
        log.warning("the call could not reach the recorder again", extra={"call": conversation_uuid, "leg": leg})
    if outcome is None:
        return None
    log.info("websocket leg closed", extra={"call": conversation_uuid, "leg": leg, "then": str(outcome)})
    if outcome != AfterClose.RECONNECT:
        return None
    return ncco.stream_reconnect(
        _caller(call, params.get("headers")),
        stream=stream_target(settings, conversation_uuid, now),
        event_url=stream_event_url(settings, conversation_uuid, leg + 1),
        leg=leg + 1,
    )
