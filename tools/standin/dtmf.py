"""Keypresses a simulated caller makes during a call."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DtmfPress"]


@dataclass(frozen=True)
class DtmfPress:
    """A keypress sent `at` seconds into the streamed audio."""

    digit: str
    at: float
    duration: int = 260

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
