"""Key presses silenced in a stream's audio: tones found by their frequencies, events by their
span, everything else handed on byte for byte."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.dtmf_mask import DTMF_HIGH, DTMF_LOW, DtmfMask, MaskedSpan
from shared.core.wav import parse_wav
from tests.testbed import DATA

RATE = 16000
SPEECH = parse_wav((DATA / "voicemail_outage.wav").read_bytes()).pcm
KEYS = "123A456B789C*0#D"


def tone(digit: str, seconds: float, rate: int = RATE, level: float = 0.25) -> bytes:
    """The DTMF pair of `digit`, as a keypad sends it."""
    index = KEYS.index(digit)
    low, high = DTMF_LOW[index // 4], DTMF_HIGH[index % 4]
    t = np.arange(round(seconds * rate)) / rate
    wave = level * 32767 * (np.sin(2 * math.pi * low * t) + np.sin(2 * math.pi * high * t)) / 2
    return np.rint(wave).astype("<i2").tobytes()


def heard(pcm: bytes, rate: int = RATE) -> list[float]:
    """Where a fresh mask hears a tone in `pcm`: the start of each span it would silence."""
    mask = DtmfMask(rate)
    mask.feed(pcm)
    mask.flush()
    return [span.start for span in mask.masked]


def run(mask: DtmfMask, pcm: bytes, frame: int = 640) -> bytes:
    out = b"".join(mask.feed(pcm[i : i + frame]) for i in range(0, len(pcm), frame))
    return out + mask.flush()


@pytest.mark.parametrize("digit", list(KEYS))
def test_every_key_is_heard_at_both_rates(digit: str) -> None:
    assert heard(bytes(8000) + tone(digit, 0.1) + bytes(8000)) == [pytest.approx(0.23, abs=0.03)]
    assert heard(bytes(4000) + tone(digit, 0.1, 8000) + bytes(4000), 8000) == [pytest.approx(0.23, abs=0.03)]


def test_speech_is_not_taken_for_a_key() -> None:
    assert heard(SPEECH) == []


def test_a_tone_under_speech_is_silenced_and_the_rest_is_kept_exactly() -> None:
    pcm = bytearray(SPEECH[: 6 * RATE * 2])
    at = 3 * RATE * 2
    keyed = np.frombuffer(tone("5", 0.2), "<i2").astype(np.int32)
    under = np.frombuffer(bytes(pcm[at : at + len(keyed) * 2]), "<i2").astype(np.int32) // 4
    pcm[at : at + len(keyed) * 2] = np.clip(keyed + under, -32768, 32767).astype("<i2").tobytes()
    mask = DtmfMask(RATE)
    out = run(mask, bytes(pcm))
    assert len(out) == len(pcm)
    (span,) = mask.masked
    assert span.start <= 3.0 and span.end >= 3.2 and span.end - span.start < 0.3
    lo, hi = round(span.start * RATE) * 2, round(span.end * RATE) * 2
    assert out[lo:hi] == bytes(hi - lo)
    assert out[:lo] == pcm[:lo] and out[hi:] == pcm[hi:]
    assert heard(out) == []


def test_an_event_silences_its_duration_on_both_sides_even_with_no_tone_in_the_audio() -> None:
    mask = DtmfMask(RATE)
    out = mask.feed(SPEECH[: 2 * RATE * 2])
    mask.key(2.0, 250)
    out += run(mask, SPEECH[2 * RATE * 2 : 4 * RATE * 2])
    assert mask.masked == [MaskedSpan(2.0 - 0.33, 2.0 + 0.33)]
    lo, hi = round(1.67 * RATE) * 2, round(2.33 * RATE) * 2
    assert out[lo:hi] == bytes(hi - lo) and out[:lo] == SPEECH[:lo] and out[hi:] == SPEECH[hi : 4 * RATE * 2]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 2000), min_size=1, max_size=40), st.integers(0, 5))
def test_audio_comes_out_whole_in_order_and_as_late_as_the_hold_whatever_the_frame_sizes(
    sizes: list[int], key: int
) -> None:
    pcm = SPEECH[: sum(sizes)]
    mask, out, offset = DtmfMask(RATE), b"", 0
    for size in sizes:
        out += mask.feed(pcm[offset : offset + size])
        offset += size
        assert len(pcm[:offset]) - len(out) <= round(1.5 * RATE) * 2 + 1
    out += mask.flush()
    assert out == pcm[: len(pcm) - len(pcm) % 2]


def test_a_route_asks_for_masking_and_for_its_digits_kept_out_only_where_the_recorder_takes_the_call() -> None:
    from shared.config.routes import parse_routes
    from shared.core.errors import ConfigError

    route = parse_routes('"447700900000":\n  flow: stream\n  mask_dtmf: true\n  sensitive_dtmf: false\n', "r")
    stream = route.for_number("447700900000")
    assert stream.mask_dtmf and not stream.sensitive_dtmf
    with pytest.raises(ConfigError, match="true or false"):
        parse_routes('"447700900000":\n  flow: stream\n  mask_dtmf: yes please\n', "r")
    with pytest.raises(ConfigError, match="only a stream"):
        parse_routes('"447700900000":\n  flow: voicemail\n  recipients: ["447700900111"]\n  mask_dtmf: true\n', "r")
