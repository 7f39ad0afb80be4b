"""call.json: the record of one conversation, as pure functions over a dict."""

from __future__ import annotations

import re
from typing import Any

from shared.errors import BadRequest

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
# Conversation ids become storage prefixes, so only path-safe ids are accepted.
_CONVERSATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")

CallRecord = dict[str, Any]


def check_conversation_uuid(value: object) -> str:
    """The conversation uuid if it is a safe identifier, else BadRequest."""
    if not isinstance(value, str) or not _CONVERSATION_ID.match(value):
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
    # Vonage may deliver out of order; the current status is the latest by timestamp.
    call["events"].sort(key=lambda e: e["timestamp"])
    call["status"] = call["events"][-1]["status"]
    return True


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
