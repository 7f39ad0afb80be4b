"""Live transcription on pocketsphinx: a real child process per stream, fed frame by frame."""

from __future__ import annotations

import os
import struct
import time
import wave
from pathlib import Path

import psutil
import pytest

from shared.adapters.pocketsphinx_streaming_transcriber import DECODER_NICENESS, PocketsphinxStreamingTranscriber
from shared.core.ports import LiveSegment
from tests.live import check_streams_past_the_limit_wait_for_one_to_close
from tests.testbed import DATA

pytestmark = pytest.mark.slow


def frames(path: Path) -> tuple[int, list[bytes]]:
    with wave.open(str(path)) as wav:
        rate, pcm = wav.getframerate(), wav.readframes(wav.getnframes())
    size = rate * 2 // 50
    return rate, [pcm[i : i + size] for i in range(0, len(pcm), size)]


def transcribe(engine: PocketsphinxStreamingTranscriber, path: Path, pause: float = 0.0) -> list[LiveSegment]:
    rate, audio = frames(path)
    segments: list[LiveSegment] = []
    stream = engine.open(rate, segments.append)
    assert stream is not None
    for frame in audio:
        stream.feed(frame)
        if pause:
            time.sleep(pause)
    stream.close(timeout=30)
    return segments


def test_a_voicemail_streams_into_final_segments_with_word_times() -> None:
    segments = transcribe(PocketsphinxStreamingTranscriber(), DATA / "voicemail_outage.wav")
    finals = [s for s in segments if s.final]
    text = " ".join(s.text for s in finals)
    assert "production database" in text
    assert "call me back" in text
    assert any(not s.final for s in segments), "interim segments come while speech goes on"
    words = [w for s in finals for w in s.words]
    assert [w.start for w in words] == sorted(w.start for w in words)
    assert all(0 <= w.start < w.end <= 9.5 for w in words)
    database = next(w for w in words if w.text == "database")
    assert 3.0 < database.start < 5.0
    assert not any(s.gap for s in segments)


def test_a_telephone_rate_stream_is_upsampled_and_keeps_its_keywords() -> None:
    segments = transcribe(PocketsphinxStreamingTranscriber(), DATA / "voicemail_outage_8k.wav")
    words = {w.text for s in segments if s.final for w in s.words}
    assert len(words & {"operation", "operations", "production", "database", "down", "call", "back"}) >= 2


def test_streams_past_the_limit_are_refused_until_one_closes() -> None:
    check_streams_past_the_limit_wait_for_one_to_close(PocketsphinxStreamingTranscriber(limit=1), timeout=30)


def test_an_engine_that_falls_behind_skips_audio_as_a_gap_and_never_blocks_the_feeder() -> None:
    # A backlog of 0.1 s: audio fed all at once overflows it while the child loads its model.
    engine = PocketsphinxStreamingTranscriber(backlog=0.1)
    rate, audio = frames(DATA / "voicemail_outage.wav")
    segments: list[LiveSegment] = []
    stream = engine.open(rate, segments.append)
    assert stream is not None
    started = time.monotonic()
    for frame in audio:
        stream.feed(frame)
    assert time.monotonic() - started < 1.0
    stream.close(timeout=30)
    gaps = [s for s in segments if s.gap]
    assert gaps and gaps[0].start < gaps[0].end <= 9.5
    assert sum(g.end - g.start for g in gaps) > 5


def test_a_child_that_dies_leaves_the_whole_stream_as_a_gap() -> None:
    # `false` exits at once, as a crashed decoder would.
    engine = PocketsphinxStreamingTranscriber(python="false")
    segments = transcribe(engine, DATA / "voicemail_outage.wav", pause=0.001)
    assert [s.gap for s in segments] == [True]
    assert segments[0].end == pytest.approx(9.44, abs=0.03)
    assert segments[0].start == 0


def test_a_stream_of_whole_frames_ends_with_its_last_words_and_no_gap() -> None:
    # Vonage's frames are all whole: the child then reads nothing at all at the end of the audio.
    rate, audio = frames(DATA / "voicemail_outage.wav")
    whole = [frame for frame in audio if len(frame) == rate * 2 // 50]
    assert len(whole) < len(audio)
    segments: list[LiveSegment] = []
    stream = PocketsphinxStreamingTranscriber().open(rate, segments.append)
    assert stream is not None
    for frame in whole:
        stream.feed(frame)
    stream.close(timeout=30)
    assert not any(s.gap for s in segments)
    assert "call me back" in " ".join(s.text for s in segments if s.final)


def test_clicks_taken_for_speech_that_hold_no_words_end_the_stream_cleanly() -> None:
    # A click every 20 ms starts an utterance in which the decoder finds nothing at all.
    clicks = [struct.pack("<d", 1796029200.0 + i * 0.02) + bytes(632) for i in range(60)]
    segments: list[LiveSegment] = []
    stream = PocketsphinxStreamingTranscriber().open(16000, segments.append)
    assert stream is not None
    for frame in clicks:
        stream.feed(frame)
    stream.close(timeout=30)
    # Nothing was missed: the child ended as it should, instead of dying and leaving a gap.
    assert not any(s.gap for s in segments)


def test_decoders_run_below_the_recorder_at_its_niceness() -> None:
    engine = PocketsphinxStreamingTranscriber(limit=1)
    stream = engine.open(16000, lambda segment: None)
    assert stream is not None
    try:
        deadline = time.monotonic() + 10
        niceness = None
        while time.monotonic() < deadline and niceness != os.nice(0) + DECODER_NICENESS:
            children = [p for p in psutil.Process().children() if "pocketsphinx_stream_worker" in " ".join(p.cmdline())]
            niceness = children[0].nice() if children else None
            time.sleep(0.05)
        assert niceness == os.nice(0) + DECODER_NICENESS
    finally:
        stream.close(timeout=30)
