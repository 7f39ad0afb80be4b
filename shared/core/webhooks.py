"""Parsing Vonage's voice webhooks into plain values: pure, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.core.call_record import check_conversation_uuid
from shared.core.errors import BadRequest

__all__ = ["CallEvent", "InboundCall", "parse_call_event", "parse_inbound_call"]

_FIELD_LIMIT = 256
_DETAIL_LIMIT = 1024
# Event fields kept in call.json beside status, timestamp and uuid (webhook reference, and the
# Java and .NET SDKs' models: `sip_code`, `sub_state`, `disconnected_by`).
_EVENT_DETAILS = (
    "detail",
    "duration",
    "start_time",
    "end_time",
    "rate",
    "price",
    "network",
    "reason",
    "disconnected_by",
    "sip_code",
    "sub_state",
)


def _text(params: Mapping[str, Any], name: str, *, required: bool = False) -> str:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise BadRequest(f"{name} is required")
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or len(value) > _FIELD_LIMIT:
        raise BadRequest(f"{name} must be a string of at most {_FIELD_LIMIT} characters")
    return value


@dataclass(frozen=True)
class InboundCall:
    """The answer webhook of a call: who called whom, and the call's ids."""

    conversation_uuid: str
    uuid: str
    from_: str
    to: str


def parse_inbound_call(params: Mapping[str, Any]) -> InboundCall:
    # Withheld and anonymous callers arrive with an empty or non-numeric `from`.
    return InboundCall(
        conversation_uuid=check_conversation_uuid(params.get("conversation_uuid")),
        uuid=_text(params, "uuid", required=True),
        from_=_text(params, "from"),
        to=_text(params, "to", required=True),
    )


@dataclass(frozen=True)
class CallEvent:
    """One event webhook: `status` is Vonage's, or `transfer`, `error` or the payload's `type`."""

    conversation_uuid: str
    status: str
    timestamp: str
    uuid: str
    from_: str
    to: str
    direction: str
    details: dict[str, str | int | float]


def _details(params: Mapping[str, Any]) -> dict[str, str | int | float]:
    """The documented extra fields that are plain values; objects (such as `headers: {}`) are left out."""
    details: dict[str, str | int | float] = {}
    for name in _EVENT_DETAILS:
        value = params.get(name)
        if value is None or value == "" or not isinstance(value, str | int | float):
            continue
        if len(str(value)) > _DETAIL_LIMIT:
            raise BadRequest(f"{name} is over {_DETAIL_LIMIT} characters")
        details[name] = value
    return details


def parse_call_event(params: Mapping[str, Any]) -> CallEvent:
    """Any event Vonage sends; `conversation_uuid` is "" when it names no conversation.

    A `transfer` has no `status` and no `conversation_uuid`: it is kept under the conversation it
    moves the leg to, noting the one it came from. An error report has `reason` and no `status`.
    A status tapedeck has never seen is kept as it is.
    """
    kind = _text(params, "type")
    status = _text(params, "status") or kind or ("error" if _text(params, "reason") else "unknown")
    details = _details(params)
    if kind == "transfer" and not params.get("conversation_uuid"):
        conversation = check_conversation_uuid(params.get("conversation_uuid_to"))
        if params.get("conversation_uuid_from"):
            details["from_conversation"] = check_conversation_uuid(params.get("conversation_uuid_from"))
    elif params.get("conversation_uuid") in (None, ""):
        conversation = ""
    else:
        conversation = check_conversation_uuid(params.get("conversation_uuid"))
    return CallEvent(
        conversation_uuid=conversation,
        status=status,
        timestamp=_text(params, "timestamp"),
        # `human` and `machine` events carry call_uuid instead of uuid.
        uuid=_text(params, "uuid") or _text(params, "call_uuid"),
        from_=_text(params, "from"),
        to=_text(params, "to"),
        direction=_text(params, "direction"),
        details=details,
    )
