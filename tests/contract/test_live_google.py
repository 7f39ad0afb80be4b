"""Live transcription on Google Speech-to-Text, against a real gRPC server on loopback.

The stand-in speaks google.cloud.speech.v1 StreamingRecognize and the real client talks to it.
It hears words in the audio itself: every 100 ms of a stream is one unit whose samples all
hold a number, 0 for silence and n for the word "wN". Each word is an interim result as soon
as its unit is complete, and the words so far become a final result at the next silent unit,
so the words and times the test expects follow from the audio it feeds.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import grpc
import pytest
from google.cloud import speech_v1 as speech
from google.cloud.speech_v1.services.speech.transports import SpeechGrpcTransport

from shared.adapters.google_streaming_transcriber import GoogleStreamingTranscriber
from shared.config.settings import Settings
from shared.core.ports import LiveSegment, SpeechHints
from tests.live import check_streams_past_the_limit_wait_for_one_to_close
from tests.servers import ROOT as _ROOT
from tests.speech_standin import SpeechStandIn, frames

ROOT = str(_ROOT)


def expected_words(units: list[int]) -> list[tuple[str, float, float]]:
    return [(f"w{n}", i / 10, (i + 1) / 10) for i, n in enumerate(units) if n]


def heard(segments: list[LiveSegment]) -> list[tuple[str, float, float]]:
    return [(w.text, round(w.start, 3), round(w.end, 3)) for s in segments if s.final for w in s.words]


@pytest.fixture
def standin() -> Iterator[SpeechStandIn]:
    server = SpeechStandIn()
    yield server
    server.stop()


def transcribe(
    engine: GoogleStreamingTranscriber,
    units: list[int],
    rate: int = 16000,
    pause: float = 0.0,
    hints: SpeechHints | None = None,
) -> list[LiveSegment]:
    segments: list[LiveSegment] = []
    stream = engine.open(rate, segments.append, hints)
    assert stream is not None
    for frame in frames(units, rate):
        stream.feed(frame)
        if pause:
            time.sleep(pause)
    stream.close(timeout=10)
    return segments


# Three utterances: "w1 w2", "w3 w4 w5", "w6", with pauses between.
SPEECH = [0, 1, 2, 0, 0, 3, 4, 5, 0, 6, 0]


def test_words_come_back_in_order_with_their_times_interim_then_final(standin: SpeechStandIn) -> None:
    segments = transcribe(GoogleStreamingTranscriber(client=standin.client()), SPEECH)
    assert heard(segments) == expected_words(SPEECH)
    finals = [s for s in segments if s.final]
    assert [s.text for s in finals] == ["w1 w2", "w3 w4 w5", "w6"]
    assert [(s.start, s.end) for s in finals] == [(0.1, 0.3), (0.5, 0.8), (0.9, 1.0)]
    first_final = segments.index(finals[0])
    assert [s.text for s in segments[:first_final] if not s.final] == ["w1", "w1 w2"]
    assert not any(s.gap for s in segments)
    assert len(standin.calls) == 1


@pytest.mark.parametrize(("rate", "model", "enhanced"), [(8000, "phone_call", True), (16000, "latest_long", False)])
def test_the_stream_rate_and_a_telephony_model_reach_the_server(
    standin: SpeechStandIn, rate: int, model: str, enhanced: bool
) -> None:
    segments = transcribe(GoogleStreamingTranscriber(client=standin.client()), SPEECH, rate=rate)
    assert heard(segments) == expected_words(SPEECH)
    (call,) = standin.calls
    assert (call.rate, call.model, call.enhanced) == (rate, model, enhanced)
    assert call.word_times and call.interim


def test_the_routes_language_and_vocabulary_reach_every_stream_of_a_call(standin: SpeechStandIn) -> None:
    hints = SpeechHints("en-GB", ("Tapedeck", "Kubernetes", "Sam O'Neil"))
    units = [n % 5 for n in range(1, 31)]
    engine = GoogleStreamingTranscriber(client=standin.client(), restart_after=1.0)
    segments = transcribe(engine, units, pause=0.001, hints=hints)
    assert heard(segments) == expected_words(units)
    # A restart opens its new stream with the same config.
    assert len(standin.calls) >= 2
    for call in standin.calls:
        assert call.language == "en-GB"
        assert call.contexts == [(["Tapedeck", "Kubernetes", "Sam O'Neil"], 10.0)]


def test_a_stream_without_hints_has_the_engines_language_and_no_phrases(standin: SpeechStandIn) -> None:
    transcribe(GoogleStreamingTranscriber(client=standin.client(), language="fr-FR"), SPEECH)
    (call,) = standin.calls
    assert (call.language, call.contexts) == ("fr-FR", [])


def test_a_call_past_the_stream_limit_restarts_with_no_word_lost_or_repeated(standin: SpeechStandIn) -> None:
    # 2 s per Google stream; 6.3 s of speech whose utterances straddle each restart.
    standin.finalize_at_end = False
    units = [n % 7 for n in range(1, 64)]
    segments = transcribe(GoogleStreamingTranscriber(client=standin.client(), restart_after=2.0), units, pause=0.001)
    assert heard(segments) == expected_words(units)
    assert len(standin.calls) >= 3
    # Each new stream began with the audio after the last final result, sent again.
    taken = 0
    for before, after in zip(standin.calls, standin.calls[1:], strict=False):
        restart = taken + len(before.units)
        bridged = next(i for i in range(restart, taken - 1, -1) if units[i - 1] == 0 or i == taken)
        assert after.units[: restart - bridged] == units[bridged:restart]
        assert restart - bridged > 0, "the words cut off by the restart were sent again"
        taken = bridged
    assert not any(s.gap for s in segments)


def test_a_restart_after_the_server_finalised_the_last_words_repeats_nothing(standin: SpeechStandIn) -> None:
    units = [n % 5 for n in range(1, 41)]
    segments = transcribe(GoogleStreamingTranscriber(client=standin.client(), restart_after=1.0), units, pause=0.001)
    assert heard(segments) == expected_words(units)
    assert len(standin.calls) >= 3


def test_silence_through_a_hold_is_still_sent(standin: SpeechStandIn) -> None:
    units = [0, 1, 2, 0, *[0] * 50, 3, 0]
    segments = transcribe(GoogleStreamingTranscriber(client=standin.client()), units)
    assert heard(segments) == expected_words(units)
    assert standin.calls[0].units == units
    assert standin.calls[0].audio_bytes == len(units) * 3200


def test_a_hold_longer_than_a_stream_restarts_on_silence_alone(standin: SpeechStandIn) -> None:
    # Streams of 1 s, and 4 s of hold between the words: whole streams hear only silence.
    units = [1, 0, *[0] * 40, 2, 0]
    segments = transcribe(GoogleStreamingTranscriber(client=standin.client(), restart_after=1.0), units)
    assert heard(segments) == expected_words(units)
    assert len(standin.calls) >= 4
    # All the silence went to Google, a bridge of at most half a stream sent again each time.
    sent = sum(len(call.units) for call in standin.calls)
    assert len(units) <= sent <= len(units) + 5 * len(standin.calls)
    assert not any(s.gap for s in segments)


def test_a_stalled_server_leaves_gaps_and_never_blocks_the_feeder() -> None:
    server = SpeechStandIn(stall=True)
    try:
        engine = GoogleStreamingTranscriber(client=server.client(), backlog=0.5)
        segments: list[LiveSegment] = []
        stream = engine.open(16000, segments.append)
        assert stream is not None
        audio = frames([1] * 600, 16000)  # one minute
        started = time.monotonic()
        for frame in audio:
            stream.feed(frame)
        assert time.monotonic() - started < 1.0
        started = time.monotonic()
        stream.close(timeout=1.0)
        assert time.monotonic() - started < 1.5
    finally:
        server.stop()
    gaps = [s for s in segments if s.gap]
    assert gaps
    assert gaps[-1].end == pytest.approx(60.0)
    assert sum(g.end - g.start for g in gaps) > 55


def test_close_returns_within_its_timeout_when_the_server_hangs() -> None:
    server = SpeechStandIn(hang=True)
    try:
        segments: list[LiveSegment] = []
        stream = GoogleStreamingTranscriber(client=server.client()).open(8000, segments.append)
        assert stream is not None
        for frame in frames(SPEECH, 8000):
            stream.feed(frame)
        started = time.monotonic()
        stream.close(timeout=1.0)
        assert time.monotonic() - started < 1.5
    finally:
        server.stop()
    assert [(s.gap, s.start, s.end) for s in segments] == [(True, 0, 1.1)]


def test_a_failed_stream_is_reopened_once_with_the_audio_not_yet_final() -> None:
    server = SpeechStandIn(fail_first=6)
    try:
        segments = transcribe(GoogleStreamingTranscriber(client=server.client()), SPEECH, pause=0.002)
    finally:
        server.stop()
    assert heard(segments) == expected_words(SPEECH)
    assert len(server.calls) == 2
    assert not any(s.gap for s in segments)


def test_a_server_that_keeps_failing_leaves_the_rest_as_a_gap() -> None:
    # Nothing listens on the port: every stream fails with UNAVAILABLE.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = speech.SpeechClient(transport=SpeechGrpcTransport(channel=grpc.insecure_channel(f"127.0.0.1:{port}")))
    segments = transcribe(GoogleStreamingTranscriber(client=client), SPEECH)
    assert [(s.gap, s.start, s.end) for s in segments] == [(True, 0, 1.1)]


def test_streams_past_the_limit_are_refused_until_one_closes(standin: SpeechStandIn) -> None:
    engine = GoogleStreamingTranscriber(limit=1, client=standin.client())
    check_streams_past_the_limit_wait_for_one_to_close(engine, timeout=5)


def test_live_transcriber_google_builds_the_google_engine() -> None:
    from appengine.main import _live_engine

    engine = _live_engine(Settings.from_env({"LIVE_TRANSCRIBER": "google", "LIVE_STREAMS_MAX": "20"}))
    assert isinstance(engine, GoogleStreamingTranscriber)
    assert engine.limit == 20
    assert engine.restart_after == 240.0


_GEVENT_SCRIPT = textwrap.dedent(
    """
    from gevent import monkey

    monkey.patch_all()

    import json, sys
    import gevent
    from shared.adapters.google_streaming_transcriber import GoogleStreamingTranscriber, cooperate_with_gevent

    cooperate_with_gevent()
    cooperate_with_gevent()  # twice is harmless
    import grpc
    from google.cloud import speech_v1 as speech
    from google.cloud.speech_v1.services.speech.transports import SpeechGrpcTransport
    from tests.contract.test_live_google import SPEECH, frames, heard

    channel = grpc.insecure_channel("127.0.0.1:" + sys.argv[1])
    engine = GoogleStreamingTranscriber(client=speech.SpeechClient(transport=SpeechGrpcTransport(channel=channel)))

    def call():
        segments = []
        stream = engine.open(16000, segments.append)
        for frame in frames(SPEECH, 16000):
            stream.feed(frame)
            gevent.sleep(0.002)
        stream.close(timeout=10)
        return heard(segments)

    calls = [gevent.spawn(call) for _ in range(3)]
    gevent.joinall(calls, timeout=20)
    print(json.dumps([c.value for c in calls]))
    """
)


@pytest.mark.slow
def test_streams_in_a_gevent_process_do_not_deadlock(standin: SpeechStandIn) -> None:
    pytest.importorskip("gevent")
    done = subprocess.run(
        [sys.executable, "-c", _GEVENT_SCRIPT, str(standin.port)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert done.returncode == 0, done.stderr
    expected = [list(w) for w in expected_words(SPEECH)]
    assert json.loads(done.stdout.splitlines()[-1]) == [expected] * 3
