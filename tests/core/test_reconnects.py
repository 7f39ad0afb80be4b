"""The pure core of calls that outlive a socket: which closed leg reconnects, when a socket is
rotated, where each session sits on the call's timeline, the stitched peaks, and the NCCO."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared.core.call_record import (
    CallRecord,
    RecordingState,
    SessionClose,
    StreamEntry,
    call_ended,
    new_call,
    note_closing,
    record_reconnect,
    record_status,
)
from shared.core.legs import MAX_LEGS, AfterClose, after_close
from shared.core.live_events import segment_from_json, segment_json
from shared.core.ncco import StreamTarget, stream_reconnect
from shared.core.peaks import PeakBuilder, waveform_peaks
from shared.core.ports import LiveSegment
from shared.core.rotation import Rotation
from shared.core.timeline import lay_out
from shared.core.transcripts import Word
from shared.core.wav import wav_header
from shared.core.webhooks import InboundCall
from shared.flows.calls import iso
from tests.ncco_models import check_ncco

T0 = 1_796_029_200.0
RATE = 16000
SPEECH = (np.sin(np.arange(320) / 3) * 8000).astype("<i2").tobytes()
QUIET = bytes(640)


def session(name: str, start: float, seconds: float, leg: int, closed: float | None = None) -> StreamEntry:
    size = round(seconds * RATE) * 2
    entry = StreamEntry(name, f"calls/CON-1/{name}.wav", RecordingState.COMPLETE, RATE, size, seconds, iso(start))
    entry.leg, entry.ended_at = leg, iso((closed or start + seconds) + 0.5)
    entry.closed_at = iso(closed) if closed is not None else None
    return entry


def test_sessions_follow_each_other_by_the_time_spent_reconnecting() -> None:
    # 10 s, then a reconnect of 80 ms, 5 s, then 120 ms, then 2 s.
    entries = [
        session("b", T0 + 10.08, 5.0, 2, closed=T0 + 15.08),
        session("a", T0, 10.0, 1, closed=T0 + 10.0),
        session("c", T0 + 15.2, 2.0, 3),
    ]
    timeline = lay_out(entries)
    assert [p.session for p in timeline.placements] == ["a", "b", "c"]
    assert timeline.offsets() == {"a": 0.0, "b": 10.08, "c": 15.2}
    assert [(g.start, g.end) for g in timeline.gaps] == [(10.0, 10.08), (15.08, 15.2)]
    assert timeline.duration == 17.2
    # The end of its audio, not the end of its storage work, is where a session's time ends.
    assert timeline.samples == round(17.2 * RATE)


def test_a_session_that_seems_to_start_early_follows_right_after_and_one_not_closed_yet_counts_from_its_start() -> None:
    # Two recorders' clocks 30 ms apart: no overlap, no gap.
    skewed = lay_out([session("a", T0, 4.0, 1, closed=T0 + 4.0), session("b", T0 + 3.97, 1.0, 2)])
    assert skewed.offsets() == {"a": 0.0, "b": 4.0} and skewed.gaps == []
    # A session still streaming (no size, no close yet): the next one is placed by wall time.
    streaming = session("a", T0, 0.0, 1)
    streaming.state, streaming.ended_at = RecordingState.STREAMING, None
    assert lay_out([streaming, session("b", T0 + 6.5, 1.0, 2)]).offset_of("b") == 6.5


def test_sessions_at_different_rates_cannot_share_a_timeline() -> None:
    other = session("b", T0 + 5, 1.0, 2)
    other.sample_rate = 8000
    with pytest.raises(ValueError, match="different rates"):
        lay_out([session("a", T0, 1.0, 1), other])


def call_with(*entries: StreamEntry) -> CallRecord:
    call = new_call("CON-1")
    record_status(call, status="answered", timestamp=iso(T0), uuid="leg-1")
    call.recordings = list(entries)
    return call


def test_a_leg_closed_for_a_handover_reconnects_at_once_and_one_closed_by_the_far_side_is_unsure() -> None:
    rotated = session("a", T0, 10.0, 1)
    rotated.closing = SessionClose.RECONNECT
    assert after_close(call_with(rotated), 1) == AfterClose.RECONNECT
    assert after_close(call_with(session("a", T0, 10.0, 1)), 1) == AfterClose.UNSURE


def test_a_leg_is_not_reconnected_when_its_end_is_the_calls() -> None:
    final = session("a", T0, 4.0, 1)
    final.closing = SessionClose.FINAL
    assert after_close(call_with(final), 1) == AfterClose.CLOSED_FOR_GOOD
    assert after_close(call_with(session("a", T0, 4.0, 1)), 2) == AfterClose.NEVER_RECORDED
    assert after_close(None, 1) == AfterClose.NEVER_RECORDED
    hung_up = call_with(session("a", T0, 4.0, 1))
    record_status(hung_up, status="completed", timestamp=iso(T0 + 5), uuid="leg-1")
    assert after_close(hung_up, 1) == AfterClose.CALL_OVER
    last = session("z", T0, 4.0, MAX_LEGS)
    last.closing = SessionClose.RECONNECT
    assert after_close(call_with(last), MAX_LEGS) == AfterClose.OUT_OF_LEGS


def test_a_websocket_legs_own_events_are_neither_the_calls_status_nor_its_end() -> None:
    call = call_with(session("a", T0, 4.0, 1))
    for status, uuid in (("disconnected", "leg-1"), ("completed", "ws-leg-1")):
        record_status(call, status=status, timestamp=iso(T0 + 4), uuid=uuid, details={"leg": 1})
    # A completed event with another leg's uuid (a websocket leg, reported to the application) is not the call's.
    record_status(call, status="completed", timestamp=iso(T0 + 4.1), uuid="ws-leg-1")
    assert call.status == "completed" and not call_ended(call)
    record_status(call, status="completed", timestamp=iso(T0 + 9), uuid="leg-1")
    assert call_ended(call)


def test_a_reconnect_is_noted_once_by_its_leg_and_a_note_keeps_what_the_session_holds() -> None:
    call = call_with(session("a", T0, 0.0, 1))
    assert record_reconnect(call, leg=2, disconnected_at=iso(T0 + 3), answered_at=iso(T0 + 3.01))
    assert not record_reconnect(call, leg=2, disconnected_at=iso(T0 + 3), answered_at=iso(T0 + 3.5))
    assert [r.to_json() for r in call.reconnects] == [
        {"leg": 2, "disconnected_at": "2026-11-30T09:00:03.000Z", "answered_at": "2026-11-30T09:00:03.010Z"}
    ]
    note_closing(
        call, "a", closing=SessionClose.RECONNECT, closed_at=iso(T0 + 3), reason="rotation", size=96000, duration=3.0
    )
    entry = call.recordings[0]
    assert (entry.closing, entry.closed_at, entry.end_reason, entry.size) == (
        "reconnect",
        iso(T0 + 3),
        "rotation",
        96000,
    )
    again = CallRecord.from_json(json.loads(json.dumps(call.to_json())))
    assert again.to_json() == call.to_json() and again.recordings[0].leg == 1


def test_a_socket_rotates_at_a_quiet_moment_late_in_its_lifetime_or_at_its_end() -> None:
    rotation = Rotation(8.0, RATE, quiet=0.3)
    assert rotation.window == 2.0
    # Quiet early on does not count; quiet in the last quarter does, once 0.3 s of it has passed.
    assert not any(rotation.due(t, QUIET) for t in np.arange(0, 5, 0.02))
    assert not rotation.due(6.0, SPEECH)
    due = [t for t in np.arange(6.02, 7, 0.02) if rotation.due(float(t), QUIET)]
    assert due and due[0] == pytest.approx(6.3, abs=0.021)
    talker = Rotation(8.0, RATE)
    assert not any(talker.due(float(t), SPEECH) for t in np.arange(0, 7.99, 0.02))
    assert talker.due(8.0, SPEECH)
    # An hour-long lifetime waits for a pause in its last five minutes at most.
    assert Rotation(3300.0, RATE).window == 300.0


@pytest.mark.parametrize("points", [7, 2000])
def test_peaks_built_piece_by_piece_are_those_of_the_whole_recording(points: int) -> None:
    rng = np.random.default_rng(5)
    total = 48_007
    whole = np.zeros(total, "<i2")
    builder = PeakBuilder(total, RATE, points)
    for offset, length in ((0, 10_001), (10_900, 20_000), (31_000, 17_007)):
        piece = rng.integers(-20000, 20000, length).astype("<i2")
        if offset == 10_900:
            piece = np.abs(piece) + 1  # every sample above zero: only a gap brings a bucket's low to 0
        whole[offset : offset + length] = piece
        builder.add(offset, piece.tobytes())
    assert builder.peaks() == waveform_peaks(wav_header(RATE, total * 2) + whole.tobytes(), "wav", points)


def test_a_live_line_reads_back_as_the_segment_it_was() -> None:
    said = LiveSegment(True, "hello there", 1.5, 2.25, (Word("hello", 1.5, 1.8, 0.9), Word("there", 1.9, 2.25, 1.0)))
    gap = LiveSegment(True, "", 3.0, 4.0, gap=True)
    for segment in (said, gap):
        assert segment_from_json(json.loads(json.dumps(segment_json(segment)))) == segment


def test_the_reconnect_connect_is_one_vonage_takes() -> None:
    call = InboundCall("CON-1", "leg-1", "447700900123", "447700900000")
    target = StreamTarget("wss://rec.example.test/socket", 16000, "1800000000.abc")
    ncco = stream_reconnect(call, stream=target, event_url="https://fn.example.test/event?leg=3&sig=x", leg=3)
    check_ncco(ncco)
    (connect,) = ncco
    assert connect["eventType"] == "synchronous" and connect["endpoint"][0]["headers"]["leg"] == "3"  # type: ignore[index]
