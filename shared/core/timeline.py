"""A call recorded in several sessions, on one timeline. Pure.

A call's websocket may close before the call does (App Engine closes a socket after an hour, or
its instance stops), and the call goes on in a new session. The sessions are laid end to end,
each after the one before by the time the call spent reconnecting: from when the earlier
session's audio ended (`closed_at`) to when the later one started. That stretch is kept as
silence, so every second of the timeline is a second of the call: a key pressed or a word said
in a later session sits where it happened, and the gaps say what was not heard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.core.call_record import StreamEntry
from shared.core.reconnect_record import SilentGap

__all__ = ["Placement", "Timeline", "lay_out", "seconds_of"]

_SAMPLE_BYTES = 2


def seconds_of(timestamp: str | None) -> float | None:
    """An ISO 8601 timestamp (`...34.796Z`) as seconds since the epoch; None if unreadable."""
    if not timestamp:
        return None
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class Placement:
    """Where one session's audio sits on the call's timeline, in samples from its start."""

    session: str
    object_key: str
    offset: int
    samples: int


@dataclass(frozen=True)
class Timeline:
    """The sessions of one call in order, each at its offset; silence between them."""

    sample_rate: int
    placements: tuple[Placement, ...]

    @property
    def samples(self) -> int:
        last = self.placements[-1] if self.placements else None
        return last.offset + last.samples if last else 0

    @property
    def duration(self) -> float:
        return round(self.samples / self.sample_rate, 3) if self.sample_rate else 0.0

    @property
    def gaps(self) -> list[SilentGap]:
        """The stretches between sessions, in seconds (ms precision), that nothing recorded."""
        found, end = [], 0
        for placement in self.placements:
            if placement.offset > end:
                found.append(SilentGap(round(end / self.sample_rate, 3), round(placement.offset / self.sample_rate, 3)))
            end = placement.offset + placement.samples
        return found

    def offset_of(self, session: str) -> float:
        """Where `session` starts, in seconds from the call's start."""
        for placement in self.placements:
            if placement.session == session:
                return round(placement.offset / self.sample_rate, 3)
        raise KeyError(session)

    def offsets(self) -> dict[str, float]:
        return {p.session: round(p.offset / self.sample_rate, 3) for p in self.placements}


def _start(entry: StreamEntry) -> float:
    return seconds_of(entry.started_at) or 0.0


def _end(entry: StreamEntry) -> float:
    """When the session's audio ended: noted at its close, else its end, else its start plus its audio."""
    return seconds_of(entry.closed_at) or seconds_of(entry.ended_at) or _start(entry) + entry.duration


def lay_out(entries: Sequence[StreamEntry]) -> Timeline:
    """The sessions in the order they started, each after the last by the time between them.

    The time between two sessions is measured from the earlier's end to the later's start, never
    less than nothing: two recorders' clocks may disagree by a little, and a session that seems
    to start before the last one ended follows right after it.
    """
    ordered = sorted(entries, key=lambda e: (_start(e), e.leg or 1))
    rates = {e.sample_rate for e in ordered}
    if len(rates) > 1:
        raise ValueError(f"the sessions were recorded at different rates: {sorted(rates)}")
    rate = int(rates.pop()) if rates else 0
    placements: list[Placement] = []
    previous: StreamEntry | None = None
    for entry in ordered:
        samples = entry.size // _SAMPLE_BYTES
        if previous is None:
            offset = 0
        else:
            last = placements[-1]
            gap = max(0.0, _start(entry) - _end(previous))
            offset = last.offset + last.samples + round(gap * rate)
        placements.append(Placement(entry.session, entry.object_key, offset, samples))
        previous = entry
    return Timeline(rate, tuple(placements))
