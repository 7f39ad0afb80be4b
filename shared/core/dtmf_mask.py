"""Keys pressed during a streamed call, silenced in its audio: pure, fed frame by frame.

A caller who keys in a card number leaves its digits in the recording as tones, which any DTMF
decoder recovers. `DtmfMask` holds the last `HOLD_SECONDS` of audio back before it is stored, and
replaces with silence:
- every 20 ms window in which a DTMF tone is heard (two of the eight DTMF frequencies carrying
  most of the window's energy, measured with a Goertzel filter at each), and the windows either
  side of it, where the tone starts or stops part-way;
- the span around each `websocket:dtmf` event Vonage sends. Whether Vonage sends the event as
  the key goes down or as it comes up is unconfirmed, so the span covers the key's `duration`
  on both sides of the event, and a margin.

The spans it silenced are kept (`masked`), in seconds of the stream's own audio, for the call's
metadata. Audio outside them is handed on byte for byte.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["DTMF_HIGH", "DTMF_LOW", "HOLD_SECONDS", "DtmfMask", "MaskedSpan", "dtmf_tone"]

DTMF_LOW = (697.0, 770.0, 852.0, 941.0)
DTMF_HIGH = (1209.0, 1336.0, 1477.0, 1633.0)
# How long audio waits before it is stored: an event may come this late after its tone.
HOLD_SECONDS = 1.5
WINDOW_SECONDS = 0.02
# A key event's span on each side: its duration (at most this long, 300 ms when not given) and a margin.
_LONGEST_PRESS = 1.0
_UNKNOWN_PRESS = 0.3
_EVENT_MARGIN = 0.08
# A window is a tone when the strongest low and high frequencies carry this share of its energy,
# each at least `_EACH`, and it is louder than `_QUIETEST` (dBFS).
_SHARE = 0.6
_EACH = 0.12
_QUIETEST = -45.0


@dataclass(frozen=True)
class MaskedSpan:
    """Seconds of the stream's audio replaced by silence."""

    start: float
    end: float

    def to_json(self) -> dict[str, float]:
        return {"start": round(self.start, 3), "end": round(self.end, 3)}


def _filters(rate: int, size: int) -> np.ndarray:
    """One row per DTMF frequency: the complex exponential a window is multiplied with."""
    n = np.arange(size)
    return np.exp(-2j * math.pi * np.outer(np.array(DTMF_LOW + DTMF_HIGH), n) / rate)


def dtmf_tone(samples: np.ndarray, filters: np.ndarray) -> bool:
    """Whether a window of samples (float) holds a DTMF tone pair."""
    energy = float(samples @ samples)
    if not energy or 10 * math.log10(energy / len(samples) / 32768**2) < _QUIETEST:
        return False
    # For a sinusoid at one of the frequencies, its filter's power is its share of the energy times N/2.
    shares = np.abs(filters @ samples) ** 2 * 2 / (len(samples) * energy)
    low, high = float(shares[:4].max()), float(shares[4:].max())
    return low >= _EACH and high >= _EACH and low + high >= _SHARE


class DtmfMask:
    """16-bit mono PCM at `rate` in (`feed`), the same PCM out `HOLD_SECONDS` later with key
    presses silenced; `key` marks an event's span, `flush` hands over everything held."""

    def __init__(self, rate: int, hold: float = HOLD_SECONDS) -> None:
        self.rate = rate
        self._hold = round(hold * rate)
        self._window = round(WINDOW_SECONDS * rate)
        self._filters = _filters(rate, self._window)
        self._held = bytearray()
        # The sample index of the first sample held, and of the first not yet listened to.
        self._start = 0
        self._heard = 0
        # Spans to silence, in samples, not yet all handed over; and every span, for the record.
        self._pending: list[tuple[int, int]] = []
        self.masked: list[MaskedSpan] = []

    @property
    def received(self) -> int:
        """Samples fed so far (whole ones)."""
        return self._start + len(self._held) // 2

    def feed(self, data: bytes) -> bytes:
        """Take audio; return what is now old enough to store, silenced where it must be."""
        self._held += data
        self._listen()
        return self._release(self.received - self._hold)

    def key(self, at: float, duration_ms: int | None) -> None:
        """A key event `at` seconds into the stream's audio: silence its span."""
        press = _UNKNOWN_PRESS if duration_ms is None else min(duration_ms / 1000, _LONGEST_PRESS)
        reach = press + _EVENT_MARGIN
        self._mark(round((at - reach) * self.rate), round((at + reach) * self.rate))

    def flush(self) -> bytes:
        """Everything held (whole samples), silenced where it must be."""
        self._listen()
        return self._release(self.received)

    def _listen(self) -> None:
        window, end = self._window, self.received
        while self._heard + window <= end:
            offset = (self._heard - self._start) * 2
            samples = np.frombuffer(self._held, "<i2", window, offset).astype(np.float64)
            if dtmf_tone(samples, self._filters):
                # The windows either side too: a tone starts and stops part-way through one.
                self._mark(self._heard - window, self._heard + 2 * window)
            self._heard += window

    def _mark(self, start: int, end: int) -> None:
        start = max(start, 0)
        if end <= start:
            return
        if self.masked and start <= round(self.masked[-1].end * self.rate):
            # Overlapping the last span: they are one.
            last = self.masked.pop()
            start = min(start, round(last.start * self.rate))
            end = max(end, round(last.end * self.rate))
        self.masked.append(MaskedSpan(start / self.rate, end / self.rate))
        self._pending.append((start, end))

    def _release(self, upto: int) -> bytes:
        """Hand over the samples before `upto`, each pending span silenced where it falls."""
        count = min(upto, self.received) - self._start
        if count <= 0:
            return b""
        out = bytearray(self._held[: count * 2])
        first, last = self._start, self._start + count
        for start, end in self._pending:
            low, high = max(start, first), min(end, last)
            if low < high:
                out[(low - first) * 2 : (high - first) * 2] = bytes((high - low) * 2)
        del self._held[: count * 2]
        self._start = last
        self._pending = [(start, end) for start, end in self._pending if end > last]
        return bytes(out)
