"""Vonage webhooks in the shapes the live platform and Vonage's own SDK fixtures show.

Each payload keeps the field names, their order, their types and their odd corners (nulls, an
empty `headers` object, `call_uuid` for `uuid`, a `transfer` without `status` or
`conversation_uuid`, `size` as query text) of a request captured from the live platform or of a
Vonage SDK fixture; the values are tapedeck's own. The comment on each says which shape it has.
"""

from __future__ import annotations

from typing import Any

CONVERSATION = "CON-5e0b2c4d-8f1a-4c3e-9d7b-2a6f1e3c9b80"
EARLIER_CONVERSATION = "CON-0c9d8e7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f"
LEG = "6f1e2d3c4b5a69788796a5b4c3d2e1f0"
CALLER = "447700900123"
CALLED = "447700900000"


def answer_query() -> list[tuple[str, str]]:
    """The answer webhook's GET query, in the order of a live capture (to, from, conversation_uuid, uuid)."""
    return [("to", CALLED), ("from", CALLER), ("conversation_uuid", CONVERSATION), ("uuid", LEG)]


def _event(status: str, direction: str = "inbound", **extra: Any) -> dict[str, Any]:
    # Live captures of started, ringing, answered, completed: `headers` first, then the call's fields.
    return {
        "headers": {},
        "from": CALLER,
        "to": CALLED,
        "uuid": LEG,
        "conversation_uuid": CONVERSATION,
        "status": status,
        "direction": direction,
        **extra,
    }


def started() -> dict[str, Any]:
    return _event("started", timestamp="2026-11-30T09:15:20.510Z")


def ringing() -> dict[str, Any]:
    # The live capture's `started` and `ringing` carry the very same timestamp.
    return _event("ringing", timestamp="2026-11-30T09:15:20.510Z")


def answered() -> dict[str, Any]:
    # Live capture: `start_time`, `rate` and `network` present but null on an inbound answer.
    return {"start_time": None, "rate": None, **_event("answered", network=None, timestamp="2026-11-30T09:15:21.002Z")}


def transfer() -> dict[str, Any]:
    # Live capture, about 1.7 s after `answered`: no `status`, no `conversation_uuid`.
    return {
        "conversation_uuid_from": EARLIER_CONVERSATION,
        "type": "transfer",
        "uuid": LEG,
        "conversation_uuid_to": CONVERSATION,
        "timestamp": "2026-11-30T09:15:22.713Z",
    }


def completed() -> dict[str, Any]:
    # Live capture: duration, rate and price as strings; .NET SDK fixture: `sip_code`, `disconnected_by`.
    return {
        "headers": {},
        "end_time": "2026-11-30T09:15:49.000Z",
        "uuid": LEG,
        "network": "GB-FIXED",
        "duration": "28",
        "start_time": "2026-11-30T09:15:21.000Z",
        "rate": "0.00450000",
        "price": "0.00210000",
        "from": CALLER,
        "to": CALLED,
        "conversation_uuid": CONVERSATION,
        "status": "completed",
        "direction": "inbound",
        "timestamp": "2026-11-30T09:15:49.112Z",
        "sip_code": 200,
        "disconnected_by": "user",
    }


def machine() -> dict[str, Any]:
    # .NET SDK fixture: `human`/`machine` carry `call_uuid` where every other event has `uuid`.
    return {
        "from": CALLER,
        "to": CALLED,
        "call_uuid": LEG,
        "conversation_uuid": CONVERSATION,
        "status": "machine",
        "direction": "outbound",
        "timestamp": "2026-11-30T09:15:23.000Z",
    }


def error_query() -> list[tuple[str, str]]:
    # Live capture, sent by GET: `reason` without `status`.
    return [
        ("conversation_uuid", CONVERSATION),
        ("reason", "Syntax error in NCCO. Invalid value type or action."),
        ("timestamp", "2026-11-30T09:15:21.300Z"),
    ]


def unknown_status() -> dict[str, Any]:
    # A status tapedeck has never seen, in the shape of any other event.
    return _event("on_hold", timestamp="2026-11-30T09:15:30.000Z")


def recording_query(recording_uuid: str, recording_url: str, size: int) -> list[tuple[str, str]]:
    # Live capture of a recording webhook sent by GET: every field, `size` too, is query text.
    return [
        ("start_time", "2026-11-30T09:15:22Z"),
        ("recording_url", recording_url),
        ("size", str(size)),
        ("recording_uuid", recording_uuid),
        ("end_time", "2026-11-30T09:15:40Z"),
        ("conversation_uuid", CONVERSATION),
        ("timestamp", "2026-11-30T09:15:40.426Z"),
    ]


def recording_body(recording_uuid: str, recording_url: str, size: int) -> dict[str, Any]:
    # .NET SDK fixture: the same fields as a JSON POST, `size` a number.
    return {
        "timestamp": "2026-11-30T09:15:40.426Z",
        "start_time": "2026-11-30T09:15:22.000Z",
        "end_time": "2026-11-30T09:15:40.000Z",
        "recording_url": recording_url,
        "size": size,
        "recording_uuid": recording_uuid,
        "conversation_uuid": CONVERSATION,
    }


def input_query(digits: str, timed_out: bool) -> list[tuple[str, str]]:
    # Live capture of an input webhook sent by GET: `speech` and `dtmf` are compact JSON text.
    flag = "true" if timed_out else "false"
    return [
        ("speech", '{"error":"Speech was not enabled"}'),
        ("dtmf", f'{{"digits":"{digits}","timed_out":{flag}}}'),
        ("from", CALLED),
        ("to", CALLER),
        ("uuid", LEG),
        ("conversation_uuid", CONVERSATION),
        ("timestamp", "2026-11-30T09:16:02.984Z"),
    ]
