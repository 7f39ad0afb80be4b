"""A recording's final state by the rules: complete, recovered, partial with its gaps, or failed;
when a call counts as over; and what the recording webhook receives."""

from __future__ import annotations

import pytest

from shared.core.call_record import (
    CallEvent,
    CallRecord,
    Gap,
    RecordingState,
    StreamEntry,
    call_ended_at,
    new_call,
)
from shared.core.recording_outcome import (
    END_TOLERANCE,
    NO_STREAM,
    answered,
    final_state,
    missing_stream,
    recording_event,
    settle,
    verdicts,
)
from shared.core.times import instant, iso

CALL = "CON-5f1c2a7e-0b9d-4c3e-8a61-2d4f6b8c0e13"
START = 1_796_029_200.0  # 2026-11-30 09:00:00 UTC


def entry(session: str, started: float, seconds: float, state: RecordingState = RecordingState.COMPLETE) -> StreamEntry:
    object_key = f"calls/{CALL}/audio-{session}.wav"
    size = int(seconds * 32000)
    return StreamEntry(session, object_key, state, 16000, size, seconds, iso(started), iso(started + seconds), "hangup")


def call_with(*entries: StreamEntry, events: tuple[tuple[str, float, str], ...] = ()) -> CallRecord:
    call = new_call(CALL, iso(START))
    call.uuids, call.from_, call.to = ["leg-caller"], "447700900123", "447700900004"
    call.events = [CallEvent(status, iso(at), leg) for status, at, leg in events]
    call.recordings = list(entries)
    return call


def test_the_call_is_over_when_its_first_leg_ends_and_not_when_the_stream_leg_does() -> None:
    going = call_with(events=(("answered", START, "leg-caller"), ("completed", START + 30, "leg-socket")))
    assert call_ended_at(going) is None and answered(going)
    over = call_with(events=(("answered", START, "leg-caller"), ("completed", START + 42.5, "leg-caller")))
    assert call_ended_at(over) == START + 42.5
    busy = call_with(events=(("busy", START + 3, "leg-caller"),))
    assert call_ended_at(busy) == START + 3 and not answered(busy)
    unknown_leg = call_with(events=(("completed", START + 9, "leg-x"),))
    unknown_leg.uuids = []
    assert call_ended_at(unknown_leg) == START + 9
    # A websocket leg's own `disconnected`, even carrying the caller's uuid, is a socket's end.
    socket_gone = call_with(events=(("answered", START, "leg-caller"),))
    socket_gone.events.append(CallEvent("disconnected", iso(START + 60), "leg-caller", {"leg": 1}))
    assert call_ended_at(socket_gone) is None


def test_audio_that_runs_to_the_end_of_the_call_is_complete_or_recovered_as_it_was_assembled() -> None:
    whole = entry("a", START + 2, 40.0)
    assert final_state(whole, START + 42.0 + END_TOLERANCE) == (RecordingState.COMPLETE, [])
    recovered = entry("a", START + 2, 40.0, RecordingState.RECOVERED)
    assert final_state(recovered, START + 42.5) == (RecordingState.RECOVERED, [])
    # Sent faster than real time (a test's stand-in): the audio "ends" after the call did.
    assert final_state(entry("a", START, 60.0), START + 2) == (RecordingState.COMPLETE, [])
    # Nothing to compare with: as assembled.
    assert final_state(recovered, None) == (RecordingState.RECOVERED, [])


def test_audio_that_stops_before_the_call_did_is_partial_with_its_gap() -> None:
    died = entry("a", START + 2, 8.192, RecordingState.RECOVERED)
    state, gaps = final_state(died, START + 30)
    assert state == RecordingState.PARTIAL
    assert gaps == [Gap(8.192, 19.808, iso(START + 10.192), iso(START + 30))]
    dropped = entry("a", START + 2, 5.0)
    assert final_state(dropped, START + 7 + END_TOLERANCE + 0.5)[0] == RecordingState.PARTIAL


def test_no_audio_at_all_is_failed() -> None:
    assert final_state(entry("a", START, 0.0), START + 10) == (RecordingState.FAILED, [])
    failed = missing_stream(CALL, START + 12)
    assert (failed.state, failed.size, failed.object_key, failed.end_reason) == (
        RecordingState.FAILED,
        0,
        "",
        NO_STREAM,
    )
    assert failed.session == missing_stream(CALL, START + 99).session != missing_stream("CON-other", START).session


def test_each_stream_of_a_call_should_run_until_the_next_began_and_the_last_until_the_call_ended() -> None:
    first, second = entry("a", START + 2, 20.0), entry("b", START + 23.0, 10.0)
    late = entry("c", START + 60.0, 5.0)
    call = call_with(first, second, late)
    found = {v.session: (v.state, [g.seconds for g in v.gaps]) for v in verdicts(call, START + 65.5)}
    # a → b: 1 s apart, within the tolerance; b → c: 27 s of the call with no stream.
    assert found == {"a": (RecordingState.COMPLETE, []), "b": (RecordingState.PARTIAL, [27.0]), "c": ("complete", [])}


def test_streams_still_going_and_recordings_settled_already_get_no_verdict() -> None:
    going = entry("a", START, 10.0, RecordingState.STREAMING)
    done = entry("b", START + 11, 10.0)
    done.settled_at = iso(START + 30)
    assert verdicts(call_with(going, done), START + 21) == []


def test_settling_makes_a_verdict_final_once() -> None:
    call = call_with(entry("a", START, 0.0))
    settled = settle(call, verdicts(call, START + 5), START + 10)
    assert [(e.state, e.settled_at, e.end_reason) for e in settled] == [("failed", iso(START + 10), "hangup")]
    assert settle(call, verdicts(call, START + 5), START + 20) == []
    assert call.recordings[0].settled_at == iso(START + 10)


def test_a_settled_entry_keeps_its_gaps_in_call_json_and_an_old_entry_still_reads() -> None:
    partial = entry("a", START, 8.0)
    partial.state, partial.settled_at = RecordingState.PARTIAL, iso(START + 40)
    partial.gaps = [Gap(8.0, 22.0, iso(START + 8), iso(START + 30))]
    doc = partial.to_json()
    assert doc["gaps"] == [{"at": 8.0, "seconds": 22.0, "start": iso(START + 8), "end": iso(START + 30)}]
    assert StreamEntry.from_json(doc) == partial
    old = {k: v for k, v in entry("a", START, 8.0).to_json().items() if k not in ("gaps", "settled_at")}
    assert StreamEntry.from_json(old).settled_at is None and "settled_at" not in StreamEntry.from_json(old).to_json()


def test_the_recording_webhook_receives_the_final_state_its_duration_gaps_and_link() -> None:
    partial = entry("a1b2c3d4e5f6", START + 2, 8.192)
    partial.state, partial.end_reason = RecordingState.PARTIAL, "recorder stopped"
    partial.gaps = [Gap(8.192, 19.808, iso(START + 10.192), iso(START + 30))]
    call = call_with(partial, events=(("completed", START + 30, "leg-caller"),))
    link = "https://tapedeck.example/link?id=abcdefghijklmnop"
    assert recording_event(call, partial, link) == {
        "event": "recording",
        "conversation_uuid": CALL,
        "session": "a1b2c3d4e5f6",
        "caller": "447700900123",
        "called": "447700900004",
        "state": "partial",
        "duration": 8.192,
        "gaps": [
            {"at": 8.192, "seconds": 19.808, "start": "2026-11-30T09:00:10.192Z", "end": "2026-11-30T09:00:30.000Z"}
        ],
        "link": link,
        "started_at": "2026-11-30T09:00:02.000Z",
        "ended_at": "2026-11-30T09:00:10.192Z",
        "end_reason": "recorder stopped",
        "call_ended_at": "2026-11-30T09:00:30.000Z",
    }


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2026-11-30T09:00:00.000Z", START), ("2026-11-30T09:00:00+00:00", START), ("2026-11-30T09:00:00", START)],
)
def test_times_read_as_vonage_and_tapedeck_write_them(text: str, seconds: float) -> None:
    assert instant(text) == seconds and iso(seconds) == "2026-11-30T09:00:00.000Z"
    assert instant("yesterday") is None and instant(None) is None
