"""Every change the recorder makes to call.json is keyed by what it records, so applying it twice
(a retried step, a request replayed after its answer was lost) changes nothing the second time."""

from __future__ import annotations

import copy

from shared.core.call_record import (
    CallRecord,
    RecordingState,
    StreamEntry,
    new_call,
    record_dtmf,
    record_stream_start,
    stream_object_key,
)


def start(call: CallRecord, session: str) -> StreamEntry:
    key = stream_object_key(call, session)
    entry = StreamEntry(session, key, RecordingState.STREAMING, 16000, 0, 0.0, "2026-12-07T10:00:00.000Z")
    return record_stream_start(call, entry=entry, uuid="leg-1", from_="447700900123", to="447700900000")


def test_a_stream_noted_twice_keeps_one_entry_and_its_object() -> None:
    call = new_call("CON-1")
    assert start(call, "s1").object_key == "calls/CON-1/audio.wav"
    once = copy.deepcopy(call)
    # Noted again, its entry and object are those it was given: not a second `audio-s1.wav`.
    assert start(call, "s1").object_key == "calls/CON-1/audio.wav"
    assert call == once
    assert start(call, "s2").object_key == "calls/CON-1/audio-s2.wav"
    assert [(r.session, r.object_key) for r in call.recordings] == [
        ("s1", "calls/CON-1/audio.wav"),
        ("s2", "calls/CON-1/audio-s2.wav"),
    ]


def test_a_key_press_noted_twice_is_one_key_press() -> None:
    call = new_call("CON-1")
    assert record_dtmf(call, session="s1", digit="5", duration=100, at=1.0)
    assert not record_dtmf(call, session="s1", digit="5", duration=100, at=1.0)
    # The same key later, or in another stream, is another press.
    assert record_dtmf(call, session="s1", digit="5", duration=100, at=2.0)
    assert record_dtmf(call, session="s2", digit="5", duration=100, at=1.0)
    assert [(k.session, k.digit, k.at) for k in call.dtmf] == [("s1", "5", 1.0), ("s1", "5", 2.0), ("s2", "5", 1.0)]
