"""Keypresses a simulated caller makes during a call."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shared.core.dtmf_mask import DTMF_HIGH, DTMF_LOW

__all__ = ["DtmfPress", "with_tones"]

_KEYPAD = "123A456B789C*0#D"


@dataclass(frozen=True)
class DtmfPress:
    """A keypress sent `at` seconds into the streamed audio."""

    digit: str
    at: float
    duration: int = 260
    # Whether the key's tone is in the audio too, as on a line that passes it in band: "before"
    # (the event comes as the key is let go, its tone ending at `at`), "after" (the event comes as
    # the key goes down), or "" (the event alone). Which Vonage does is unconfirmed.
    tone: str = ""

    @classmethod
    def parse_list(cls, text: str) -> list[DtmfPress]:
        """`"5@1.0,#@2.5"`: digit, then the second of audio it is pressed at."""
        presses = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            digit, _, at = item.partition("@")
            if len(digit) != 1 or digit not in "0123456789*#":
                raise ValueError(f"bad DTMF digit in {item!r}")
            presses.append(cls(digit, float(at or 0)))
        return sorted(presses, key=lambda p: p.at)


def with_tones(pcm: bytes, rate: int, presses: list[DtmfPress] | tuple[DtmfPress, ...]) -> bytes:
    """`pcm` (16-bit mono at `rate`) with the tone of each press that has one mixed in."""
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], "<i2").astype(np.int32)
    for press in presses:
        if not press.tone:
            continue
        seconds = press.duration / 1000
        start = round((press.at - seconds if press.tone == "before" else press.at) * rate)
        count = min(round(seconds * rate), len(samples) - max(start, 0))
        if start < 0 or count <= 0:
            continue
        index = _KEYPAD.index(press.digit)
        t = np.arange(count) / rate
        pair = np.sin(2 * math.pi * DTMF_LOW[index // 4] * t) + np.sin(2 * math.pi * DTMF_HIGH[index % 4] * t)
        # A keypad's tone, about 10 dB under full scale, over what the caller says.
        samples[start : start + count] += np.rint(0.15 * 32767 * pair).astype(np.int32)
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()
