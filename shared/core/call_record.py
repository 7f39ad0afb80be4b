"""call.json: the record of one conversation, as pure functions over a dict."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.core.errors import BadRequest
from shared.core.identifiers import CONVERSATION_ID, is_shaped

__all__ = [
    "CALL_DOCUMENT",
    "call_key",
    "check_conversation_uuid",
    "new_call",
    "record_dtmf",
    "record_recording",
    "record_status",
    "record_stream_start",
]

CALL_DOCUMENT = "call.json"
# Kinds of event that say something about the call without being a state it is in.
_NOT_A_STATE = ("transfer", "error")

CallRecord = dict[str, Any]


def check_conversation_uuid(value: object) -> str:
    """The conversation uuid if it is a safe identifier, else BadRequest.

    Conversation ids become storage prefixes, so only path-safe ids are accepted.
    """
    if not is_shaped(value, CONVERSATION_ID):
        raise BadRequest("conversation_uuid is missing or malformed")
    return value


def call_key(conversation_uuid: str, name: str) -> str:
    """The storage key of one object of a call: `calls/<conversation_uuid>/<name>`."""
    return f"calls/{check_conversation_uuid(conversation_uuid)}/{name}"


def new_call(conversation_uuid: str) -> CallRecord:
    return {
        "conversation_uuid": conversation_uuid,
        "uuids": [],
        "from": None,
        "to": None,
        "flow": None,
        "direction": None,
        "status": None,
        "events": [],
        "recordings": [],
        "dtmf": [],
    }


def _note_parties(call: CallRecord, uuid: str | None, from_: str | None, to: str | None) -> None:
    if uuid and uuid not in call["uuids"]:
        call["uuids"].append(uuid)
    if from_ and not call["from"]:
        call["from"] = from_
    if to and not call["to"]:
        call["to"] = to


def record_status(
    call: CallRecord,
    *,
    status: str,
    timestamp: str,
    uuid: str | None = None,
    from_: str | None = None,
    to: str | None = None,
    direction: str | None = None,
    details: dict[str, Any] | None = None,
) -> bool:
    """Add one status event unless it is already there; return whether anything changed."""
    event = {"status": status, "timestamp": timestamp, "uuid": uuid, **(details or {})}
    if any(e["status"] == status and e["timestamp"] == timestamp and e.get("uuid") == uuid for e in call["events"]):
        return False
    _note_parties(call, uuid, from_, to)
    if direction and not call["direction"]:
        call["direction"] = direction
    call["events"].append(event)
    # Vonage may deliver out of order, so events are kept in timestamp order; the sort is stable,
    # so events with equal timestamps (Vonage's `started` and `ringing` often share one) keep the
    # order they arrived in.
    call["events"].sort(key=lambda e: _instant(e.get("timestamp")))
    states = [e["status"] for e in call["events"] if e["status"] not in _NOT_A_STATE]
    call["status"] = states[-1] if states else call["status"]
    return True


def _instant(timestamp: object) -> tuple[int, float]:
    """A sort key for an ISO 8601 timestamp (`...34.796Z` and `...04Z` alike); unreadable ones go last."""
    try:
        return 0, datetime.fromisoformat(str(timestamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 1, 0.0


def record_stream_start(
    call: CallRecord,
    *,
    session: str,
    object_key: str,
    sample_rate: int,
    started_at: str,
    uuid: str | None,
    from_: str | None,
    to: str | None,
) -> None:
    """Note a websocket stream that has begun writing `object_key`."""
    _note_parties(call, uuid, from_, to)
    call["flow"] = call["flow"] or "stream"
    call["recordings"].append(
        {
            "session": session,
            "object": object_key,
            "state": "streaming",
            "sample_rate": sample_rate,
            "bytes": 0,
            "duration": 0.0,
            "started_at": started_at,
            "ended_at": None,
            "end_reason": None,
        }
    )


def record_recording(call: CallRecord, session: str, **fields: Any) -> None:
    """Update the entry of one recording session (state, bytes, duration, end)."""
    for entry in call["recordings"]:
        if entry["session"] == session:
            entry.update(fields)
            return
    call["recordings"].append({"session": session, **fields})


def record_dtmf(call: CallRecord, *, session: str, digit: str, duration: int | None, at: float) -> None:
    """Add a keypress heard `at` seconds into the recording of `session`."""
    call["dtmf"].append({"digit": digit, "duration": duration, "at": round(at, 3), "session": session})
