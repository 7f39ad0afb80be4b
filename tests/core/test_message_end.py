"""A live voicemail's beep and the end of its message: pure, frame by frame."""

from __future__ import annotations

import numpy as np
import pytest

from shared.core.message_end import BEEP_HZ, MessageEnd, beep_frames, level_dbfs
from shared.core.wav import parse_wav
from tests.testbed import DATA

SPEECH = parse_wav((DATA / "voicemail_outage.wav").read_bytes()).pcm
SILENCE = b"\0" * 640


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
def test_the_beep_is_a_tone_in_whole_frames(rate: int) -> None:
    frames = beep_frames(rate)
    assert {len(f) for f in frames} == {rate // 50 * 2}
    pcm = np.frombuffer(b"".join(frames), "<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(pcm))
    peak = np.fft.rfftfreq(len(pcm), 1 / rate)[int(np.argmax(spectrum))]
    assert abs(peak - BEEP_HZ) < 30
    assert len(frames) == 20  # 0.4 s
    # It fades in and out: no click at either end.
    assert abs(pcm[0]) < 100 and abs(pcm[-1]) < 100 and np.max(np.abs(pcm)) > 9000


def test_levels_tell_speech_from_silence() -> None:
    assert level_dbfs(SILENCE) == float("-inf")
    assert level_dbfs(b"") == float("-inf")
    loudest = max(level_dbfs(SPEECH[i : i + 640]) for i in range(0, len(SPEECH), 640))
    assert -30 < loudest <= 0


def frames_of(pcm: bytes) -> list[bytes]:
    return [pcm[i : i + 640] for i in range(0, len(pcm), 640)]


def feed(end: MessageEnd, frames: list[bytes]) -> tuple[str | None, float]:
    for frame in frames:
        if reason := end.audio(frame):
            return reason, end.heard
    return None, end.heard


def test_silence_after_speech_ends_the_message_at_the_limit() -> None:
    end = MessageEnd(16000, silence=2.0, max_seconds=60)
    reason, at = feed(end, frames_of(SPEECH) + [SILENCE] * 200)
    assert reason == "silence"
    # The fixture's speech stops near 9.2 s; two quiet seconds later it ends.
    assert 10.5 < at < 11.8


def test_a_caller_who_never_speaks_is_ended_by_the_silence_limit() -> None:
    reason, at = feed(MessageEnd(16000, silence=3.0, max_seconds=60), [SILENCE] * 500)
    assert reason == "silence"
    assert at == pytest.approx(3.0)


def test_the_maximum_length_ends_a_message_that_goes_on() -> None:
    reason, at = feed(MessageEnd(16000, silence=30, max_seconds=5), frames_of(SPEECH))
    assert reason == "max length"
    assert at == pytest.approx(5.0)


def test_hash_ends_the_message_and_other_keys_do_not() -> None:
    end = MessageEnd(16000, silence=3, max_seconds=60)
    assert end.key("5") is None
    assert end.key("#") == "key"
    # Once over, it stays over, for the first reason.
    assert end.audio(SILENCE) == "key"
    assert end.key("#") == "key"
