"""A stream's socket closing before the call, in-process on a local folder: the `disconnected`
event connects the call again as the next leg when the recorder handed it over, waits a moment
for a hang-up when the far side closed, and never reconnects a call that is over, a socket closed
for good or a leg that never reached the recorder; once, however often Vonage delivers it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from shared.adapters.local_blob_store import LocalBlobStore
from shared.config.settings import Settings, StreamSettings
from shared.core.call_record import CallRecord, SessionClose, note_closing, record_status
from shared.core.errors import Unauthorized
from shared.core.tokens import verify_stream_token
from shared.flows.calls import iso, read_call, update_call
from shared.flows.reconnects import DISCONNECT_GRACE, answer_stream_event, stream_event_url
from shared.flows.stream_audio import StreamRecording
from tests.ncco_models import check_ncco
from tests.testbed import TOKEN_SECRET

CALL = "CON-7ec0-2a11"
CALLER = "447700900123"
NOW = 1_796_029_260.0
SETTINGS = Settings(public_url="https://fn.example.test", stream=StreamSettings(token_secret=TOKEN_SECRET))
HEADERS = {"conversation_uuid": CALL, "uuid": "leg-1", "from": CALLER, "to": "447700900000", "leg": "1"}


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "data")


def streamed(store: LocalBlobStore, leg: int = 1, closing: SessionClose | None = None) -> str:
    """A session of leg `leg`, 2 s of audio, closed; noted as the recorder notes its own closes."""
    if leg == 1:
        update_call(
            store, CALL, lambda call: record_status(call, status="answered", timestamp=iso(NOW - 60), uuid="leg-1"), NOW
        )
    recording = StreamRecording(store, CALL, f"{leg:02d}5e5510{leg:04d}", 16000, 256 * 1024, lambda: NOW - 3)
    recording.start("leg-1", CALLER, "447700900000", leg=leg)
    recording.add_audio(bytes(64000))
    if closing is not None:

        def note(call: CallRecord) -> None:
            note_closing(
                call,
                recording.session,
                closing=closing,
                closed_at=iso(NOW - 1),
                reason="rotation",
                size=64000,
                duration=2.0,
            )

        update_call(store, CALL, note, NOW - 1)
    recording.finish("rotation" if closing else "hangup")
    return recording.session


def disconnected(leg: int = 1, **changes: Any) -> dict[str, Any]:
    """Vonage's `disconnected` for leg `leg`, as posted to the connect's sealed eventUrl."""
    sealed = dict(parse_qsl(urlsplit(stream_event_url(SETTINGS, CALL, leg)).query))
    body = {
        "from": CALLER,
        "to": "wss://rec.example.test/socket",
        "uuid": "ws-leg",
        "conversation_uuid": CALL,
        "status": "disconnected",
        "timestamp": "2026-11-30T09:01:00.000Z",
        "headers": {**HEADERS, "leg": str(leg)},
    }
    return body | sealed | changes


def no_wait(seconds: float) -> None:
    raise AssertionError("a close the recorder noted never waits")


def test_a_socket_the_recorder_handed_over_connects_again_as_the_next_leg_once(store: LocalBlobStore) -> None:
    streamed(store, closing=SessionClose.RECONNECT)
    ncco = answer_stream_event(SETTINGS, store, disconnected(), NOW, sleep=no_wait)

    assert ncco is not None
    check_ncco(ncco)
    (connect,) = ncco
    headers = connect["endpoint"][0]["headers"]  # type: ignore[index]
    assert {k: v for k, v in headers.items() if k != "token"} == {**HEADERS, "leg": "2"}
    verify_stream_token(TOKEN_SECRET, CALL, headers["token"], NOW)
    assert connect["eventUrl"] == [stream_event_url(SETTINGS, CALL, 2)]
    assert connect["eventType"] == "synchronous" and connect["from"] == "447700900000"

    # Vonage delivering the same event again: the same connect, and nothing more noted.
    again = answer_stream_event(SETTINGS, store, disconnected(), NOW + 0.5, sleep=no_wait)
    assert again is not None and again[0]["endpoint"][0]["headers"]["leg"] == "2"  # type: ignore[index]
    call = read_call(store, CALL)
    assert call is not None
    assert [r.to_json() for r in call.reconnects] == [
        {"leg": 2, "disconnected_at": "2026-11-30T09:01:00.000Z", "answered_at": iso(NOW)}
    ]
    kept = [e for e in call.events if e.status == "disconnected"]
    assert len(kept) == 1 and kept[0].details == {"leg": 1}
    # The leg's own event is not the call's state.
    assert call.status == "answered"


def test_without_the_headers_echoed_the_connect_names_the_call_as_call_json_keeps_it(store: LocalBlobStore) -> None:
    streamed(store, closing=SessionClose.RECONNECT)
    ncco = answer_stream_event(SETTINGS, store, disconnected(headers={}), NOW, sleep=no_wait)
    assert ncco is not None
    headers = ncco[0]["endpoint"][0]["headers"]  # type: ignore[index]
    assert (headers["uuid"], headers["from"], headers["to"]) == ("leg-1", CALLER, "447700900000")


def counting_sleep(then: Callable[[int], None] | None = None) -> tuple[list[float], Callable[[float], None]]:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if then is not None:
            then(len(slept))

    return slept, sleep


def test_a_socket_closed_by_the_far_side_waits_a_moment_for_a_hang_up_then_connects_again(
    store: LocalBlobStore,
) -> None:
    streamed(store)
    slept, sleep = counting_sleep()
    ncco = answer_stream_event(SETTINGS, store, disconnected(), NOW, sleep=sleep)
    assert ncco is not None and sum(slept) == pytest.approx(DISCONNECT_GRACE)


def test_a_hang_up_that_arrives_during_the_wait_is_not_reconnected(store: LocalBlobStore) -> None:
    streamed(store)

    def hang_up(count: int) -> None:
        if count == 3:
            update_call(
                store,
                CALL,
                lambda call: record_status(call, status="completed", timestamp=iso(NOW), uuid="leg-1"),
                NOW,
            )

    slept, sleep = counting_sleep(hang_up)
    assert answer_stream_event(SETTINGS, store, disconnected(), NOW, sleep=sleep) is None
    assert len(slept) == 3
    call = read_call(store, CALL)
    assert call is not None and call.reconnects == []


def test_a_socket_closed_for_good_a_call_over_or_a_leg_never_recorded_is_not_reconnected(
    store: LocalBlobStore,
) -> None:
    streamed(store, closing=SessionClose.FINAL)
    assert answer_stream_event(SETTINGS, store, disconnected(), NOW, sleep=no_wait) is None
    # Leg 2 was asked for but its handshake was refused: no session, so no retry of a refusal.
    assert answer_stream_event(SETTINGS, store, disconnected(leg=2), NOW, sleep=no_wait) is None
    update_call(
        store, CALL, lambda call: record_status(call, status="completed", timestamp=iso(NOW), uuid="leg-1"), NOW
    )
    streamed(store, leg=3, closing=SessionClose.RECONNECT)
    assert answer_stream_event(SETTINGS, store, disconnected(leg=3), NOW, sleep=no_wait) is None
    call = read_call(store, CALL)
    assert call is not None and call.reconnects == []


def test_other_events_of_a_leg_are_kept_and_answered_with_nothing(store: LocalBlobStore) -> None:
    streamed(store)
    assert answer_stream_event(SETTINGS, store, disconnected(leg=2, status="failed"), NOW, sleep=no_wait) is None
    call = read_call(store, CALL)
    assert call is not None and [(e.status, e.details) for e in call.events][-1] == ("failed", {"leg": 2})


def test_a_leg_sealed_for_another_is_refused(store: LocalBlobStore) -> None:
    streamed(store, closing=SessionClose.RECONNECT)
    forged = disconnected(sig=dict(parse_qsl(urlsplit(stream_event_url(SETTINGS, CALL, 7)).query))["sig"])
    with pytest.raises(Unauthorized):
        answer_stream_event(SETTINGS, store, forged, NOW, sleep=no_wait)
    other_call = dict(parse_qsl(urlsplit(stream_event_url(SETTINGS, "CON-other", 1)).query))
    with pytest.raises(Unauthorized):
        answer_stream_event(SETTINGS, store, disconnected(1, sig=other_call["sig"]), NOW, sleep=no_wait)


def test_the_event_function_answers_a_handed_over_leg_with_the_connect(
    environment: Callable[..., None], tmp_path: Path
) -> None:
    from tests.testbed import client

    environment(PUBLIC_URL="https://fn.example.test")
    store = LocalBlobStore(tmp_path / "data")
    streamed(store, closing=SessionClose.RECONNECT)
    body = disconnected()
    query = {k: body.pop(k) for k in ("leg", "sig")}
    response = client("event").post("/", query_string=query, json=body)
    assert response.status_code == 200
    ncco = response.get_json()
    check_ncco(ncco)
    assert ncco[0]["endpoint"][0]["headers"]["leg"] == "2"
    body["status"] = "answered"
    body["timestamp"] = iso(time.time())
    assert client("event").post("/", query_string=query, json=body).status_code == 204
