"""A live voicemail's beep, and when its message ends: pure, frame by frame.

The recorder plays the beep itself, as 20 ms frames of 16-bit PCM sent back over the socket
(Vonage plays what a websocket sends, one frame per message). The message then ends on `#`, on
the route's silence limit, or at its maximum length, whichever comes first.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["BEEP_HZ", "BEEP_SECONDS", "SPEECH_DBFS", "MessageEnd", "beep_frames", "level_dbfs"]

BEEP_HZ = 1000
BEEP_SECONDS = 0.4
_FRAME_SECONDS = 0.02
# Rises and falls over 10 ms, so the beep starts and stops without a click.
_FADE_SECONDS = 0.01
# A frame is speech when its level is above this (dBFS). Telephone line noise sits near -60 to
# -50 dBFS and speech near -30 to -10, so -45 keeps the two apart.
SPEECH_DBFS = -45.0


def beep_frames(rate: int, hz: int = BEEP_HZ, seconds: float = BEEP_SECONDS, level: float = 0.3) -> list[bytes]:
    """A sine tone as 20 ms frames of 16-bit little-endian mono PCM at `rate`."""
    count = round(seconds * rate)
    t = np.arange(count) / rate
    fade = np.minimum(1.0, np.minimum(t, seconds - t) / _FADE_SECONDS)
    pcm = np.rint(level * 32767 * fade * np.sin(2 * math.pi * hz * t)).astype("<i2").tobytes()
    size = round(rate * _FRAME_SECONDS) * 2
    padded = pcm + b"\0" * (-len(pcm) % size)
    return [padded[i : i + size] for i in range(0, len(padded), size)]


def level_dbfs(frame: bytes) -> float:
    """The frame's RMS level in dB below full scale; -inf for digital silence."""
    count = len(frame) // 2
    if not count:
        return -math.inf
    samples = np.frombuffer(frame, "<i2", count).astype(np.float64)
    # A dot product: one pass, no array of squares.
    rms = math.sqrt(float(samples @ samples) / count)
    return 20 * math.log10(rms / 32768) if rms else -math.inf


class MessageEnd:
    """Decides when a message is over: `#`, `silence` seconds without speech, or `max_seconds`."""

    def __init__(self, rate: int, silence: float, max_seconds: float) -> None:
        self.rate = rate
        # Counted in samples, so 250 frames of 20 ms are exactly 5 s.
        self._silence = round(silence * rate)
        self._longest = round(max_seconds * rate)
        self._heard = 0
        self._quiet = 0
        self.reason: str | None = None

    @property
    def heard(self) -> float:
        """Seconds of the message so far."""
        return self._heard / self.rate

    def audio(self, frame: bytes) -> str | None:
        """Take the next frame; the reason the message ends, once it does."""
        if self.reason:
            return self.reason
        samples = len(frame) // 2
        self._heard += samples
        self._quiet = self._quiet + samples if level_dbfs(frame) < SPEECH_DBFS else 0
        if self._heard >= self._longest:
            self.reason = "max length"
        elif self._quiet >= self._silence:
            self.reason = "silence"
        return self.reason

    def key(self, digit: str) -> str | None:
        """A key the caller pressed; `#` ends the message."""
        if not self.reason and digit == "#":
            self.reason = "key"
        return self.reason
