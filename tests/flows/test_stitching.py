"""A call recorded in several sessions becomes one recording once it is over, in-process on a local
folder: the audio on one timeline with silence in the gaps, its peaks, its transcript and keys at
their place, queued by the call's end, stitched once however often it is asked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shared.adapters.local_blob_store import LocalBlobStore
from shared.core.call_record import CallRecord, RecordingState
from shared.core.peaks import waveform_peaks
from shared.core.redacted_audio import PAD_SECONDS
from shared.core.tasks import Retry
from shared.core.wav import parse_wav, wav_header
from shared.flows.calls import read_call, update_call
from shared.flows.inbound import record_call_event
from shared.flows.stitching import stitch_recording
from tests.fakes import FakeServices
from tests.flows.sessions import (
    CARD,
    CARD_WORDS,
    FIXTURE,
    KEY,
    LOST,
    SESSIONS,
    record_in_sessions,
    redact_second_session,
    settings,
)

CALL = "CON-5e55-1005"
T0 = 1_796_029_200.0


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "data")


def test_the_sessions_become_one_recording_silent_where_the_call_was_reconnecting(store: LocalBlobStore) -> None:
    recorded = record_in_sessions(store, CALL, T0)
    assert stitch_recording(store, CALL, T0 + 20) == "stitched"

    rate = FIXTURE.sample_rate
    silence = [bytes(round(lost * rate) * 2) for lost in LOST]
    pcm = recorded.pcm[0] + silence[0] + recorded.pcm[1] + silence[1] + recorded.pcm[2]
    stored = store.read(f"calls/{CALL}/recording.wav")
    assert stored is not None and stored.data == wav_header(rate, len(pcm)) + pcm
    # What the call said is where it was said: the fixture's audio, less the stretches lost.
    assert abs(len(pcm) - len(FIXTURE.pcm)) <= 2 * len(SESSIONS)
    call = read_call(store, CALL)
    assert call is not None and call.stitched is not None
    assert call.stitched.offsets == dict(zip(recorded.sessions, (0.0, 4.1, 7.06), strict=True))
    assert [(g.start, g.end) for g in call.stitched.gaps] == [(4.0, 4.1), (7.0, 7.06)]
    assert call.stitched.size == len(pcm) and call.stitched.duration == round(len(pcm) / 2 / rate, 3)
    peaks = json.loads(store.read(f"calls/{CALL}/recording.peaks.json").data)  # type: ignore[union-attr]
    assert peaks == waveform_peaks(stored.data, "wav")
    assert store.list(f"calls/{CALL}/stitch/") == []


def test_the_stitched_transcript_puts_each_sessions_words_at_their_place_and_notes_the_gaps(
    store: LocalBlobStore,
) -> None:
    record_in_sessions(store, CALL, T0)
    stitch_recording(store, CALL, T0 + 20)

    document = json.loads(store.read(f"calls/{CALL}/recording.transcript.json").data)  # type: ignore[union-attr]
    words = {(w["word"], round(w["start"], 3)) for w in document["channels"][0]["words"]}
    assert {("hi", 0.45), ("database", 4.2), ("please", 7.2), ("back", 7.9)} <= words
    assert document["engine"] == "live"
    assert "not recorded: 4.00-4.10 s (the call was reconnecting)" in document["notes"]
    text = store.read(f"calls/{CALL}/recording.transcript.txt")
    assert text is not None and text.data.decode().startswith("[00:00.5] Caller: Hi this is sam")
    call = read_call(store, CALL)
    assert call is not None and (call.first_words or "").startswith("Caller: Hi this is sam")
    # The key, pressed 0.9 s into the second session, is 5.0 s into the call.
    (key,) = call.dtmf
    assert key.digit == KEY[0] and round(call.stitched.offsets[key.session] + key.at, 3) == KEY[1]  # type: ignore[union-attr]


def test_stitching_again_changes_nothing_and_waits_for_the_call_and_its_sessions(store: LocalBlobStore) -> None:
    record_in_sessions(store, CALL, T0, hang_up=False)
    assert stitch_recording(store, CALL, T0 + 20) == "call goes on"
    assert store.read(f"calls/{CALL}/recording.wav") is None

    update_call(store, CALL, lambda call: call.recordings[-1].__setattr__("state", RecordingState.STREAMING), T0)
    record_call_event(FakeServices(settings(), store), completed(), T0 + 11)
    with pytest.raises(Retry):
        stitch_recording(store, CALL, T0 + 20)

    update_call(store, CALL, lambda call: call.recordings[-1].__setattr__("state", RecordingState.COMPLETE), T0)
    assert stitch_recording(store, CALL, T0 + 20) == "stitched"
    first = store.read(f"calls/{CALL}/recording.wav")
    assert stitch_recording(store, CALL, T0 + 30) == "already stitched"
    again = store.read(f"calls/{CALL}/recording.wav")
    assert first is not None and again is not None and again.generation == first.generation
    # The sessions and what was lost between them: as long as the call.
    assert parse_wav(again.data).duration == pytest.approx(FIXTURE.duration, abs=0.01)


def completed() -> dict[str, object]:
    return {
        "status": "completed",
        "uuid": "leg-1",
        "conversation_uuid": CALL,
        "timestamp": "2026-11-30T09:00:10.000Z",
        "direction": "inbound",
    }


def test_the_calls_end_queues_the_stitching_of_a_call_in_several_sessions_only(store: LocalBlobStore) -> None:
    services = FakeServices(settings(), store)
    record_in_sessions(store, CALL, T0, hang_up=False)
    record_call_event(services, completed(), T0 + 11)
    record_call_event(services, completed(), T0 + 12)
    assert list(services.queue.tasks) == [f"stitch-recording-{CALL}-over"]
    assert services.queue.tasks[f"stitch-recording-{CALL}-over"].payload == {"conversation_uuid": CALL}

    single = FakeServices(settings(), store)

    def one_session(call: CallRecord) -> None:
        call.recordings = call.recordings[:1]

    record_in_sessions(store, "CON-single", T0, hang_up=False)
    update_call(store, "CON-single", one_session, T0)
    record_call_event(single, {**completed(), "conversation_uuid": "CON-single"}, T0 + 11)
    assert single.queue.tasks == {}


def samples(store: LocalBlobStore, name: str) -> np.ndarray:
    blob = store.read(f"calls/{CALL}/{name}")
    assert blob is not None, name
    return np.frombuffer(parse_wav(blob.data).pcm, "<i2").astype(np.float64)


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm**2)))


def test_a_call_that_redacts_is_stitched_silent_over_a_card_read_out_after_it_reconnected(
    store: LocalBlobStore,
) -> None:
    recorded = record_in_sessions(store, CALL, T0)
    redact_second_session(store, CALL)
    assert stitch_recording(store, CALL, T0 + 20) == "stitched"

    rate = FIXTURE.sample_rate
    copy, original = samples(store, "recording.redacted.wav"), samples(store, "recording.wav")
    assert len(copy) == len(original)
    # The card, where it was said on the call's timeline (the second session starts 4.1 s in).
    call = read_call(store, CALL)
    assert call is not None and call.stitched is not None
    offset = call.stitched.offsets[recorded.sessions[1]]
    start, end = offset + CARD_WORDS[0].start, offset + CARD_WORDS[-1].end
    said = slice(round(start * rate), round(end * rate))
    assert rms(original[said]) > 500
    assert rms(copy[said]) == 0
    # Everywhere else it is the call as it was heard: the first and last sessions' words, the gaps.
    silenced = np.zeros(len(copy), bool)
    silenced[int((start - PAD_SECONDS) * rate) : int(np.ceil((end + PAD_SECONDS) * rate))] = True
    assert np.array_equal(copy[~silenced], original[~silenced])
    assert rms(copy[: int(4.0 * rate)]) > 500 and rms(copy[int(7.1 * rate) :]) > 500
    # Its waveform is drawn from it, and its transcript has no digit of the card.
    stored = store.read(f"calls/{CALL}/recording.redacted.wav")
    peaks = store.read(f"calls/{CALL}/recording.redacted.peaks.json")
    assert stored is not None and peaks is not None and json.loads(peaks.data) == waveform_peaks(stored.data, "wav")
    text = store.read(f"calls/{CALL}/recording.transcript.txt")
    assert text is not None and "[card]" in text.data.decode() and "four five three nine" not in text.data.decode()
    assert CARD not in text.data.decode()
    assert stitch_recording(store, CALL, T0 + 30) == "already stitched"
    assert store.list(f"calls/{CALL}/stitch/") == []


def test_a_call_stitched_before_its_copy_was_silenced_is_stitched_again(store: LocalBlobStore) -> None:
    record_in_sessions(store, CALL, T0)
    assert stitch_recording(store, CALL, T0 + 20) == "stitched"
    assert store.read(f"calls/{CALL}/recording.redacted.wav") is None

    redact_second_session(store, CALL)
    assert stitch_recording(store, CALL, T0 + 30) == "stitched"
    assert store.read(f"calls/{CALL}/recording.redacted.wav") is not None
