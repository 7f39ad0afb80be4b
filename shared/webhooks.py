"""Parsing Vonage's voice webhooks into plain values: pure, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.calls import check_conversation_uuid
from shared.errors import BadRequest

__all__ = ["CallEvent", "InboundCall", "parse_call_event", "parse_inbound_call"]

_FIELD_LIMIT = 256
# Event fields kept in call.json beside status, timestamp and uuid.
_EVENT_DETAILS = ("detail", "duration", "start_time", "end_time", "rate", "price", "reason", "disconnected_by")


def _text(params: Mapping[str, Any], name: str, required: bool = False) -> str:
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
    conversation_uuid: str
    status: str
    timestamp: str
    uuid: str
    from_: str
    to: str
    direction: str
    details: dict[str, Any]


def parse_call_event(params: Mapping[str, Any]) -> CallEvent:
    """A status event, or an error report (`reason` without `status`) as status `error`."""
    status = _text(params, "status")
    if not status:
        if not _text(params, "reason"):
            raise BadRequest("status is required")
        status = "error"
    details = {name: params[name] for name in _EVENT_DETAILS if params.get(name) not in (None, "")}
    for name, value in details.items():
        if not isinstance(value, str | int | float) or len(str(value)) > _FIELD_LIMIT:
            raise BadRequest(f"{name} is malformed")
    return CallEvent(
        conversation_uuid=check_conversation_uuid(params.get("conversation_uuid")),
        status=status,
        timestamp=_text(params, "timestamp", required=True),
        # `human` and `machine` events carry call_uuid instead of uuid.
        uuid=_text(params, "uuid") or _text(params, "call_uuid"),
        from_=_text(params, "from"),
        to=_text(params, "to"),
        direction=_text(params, "direction"),
        details=details,
    )
