"""What call.json keeps of a call whose websocket was connected again: each reconnect, and the
one recording its sessions were stitched into. Plain typed documents with one to_json/from_json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from shared.core.payloads import FlatRecord

__all__ = ["Reconnect", "SilentGap", "StitchedRecording"]


@dataclass
class Reconnect(FlatRecord):
    """The call's websocket connected again: `leg` is the new connect, asked for when leg - 1's
    `disconnected` event (timed `disconnected_at` by Vonage) was answered at `answered_at`."""

    leg: int
    disconnected_at: str
    answered_at: str


@dataclass
class SilentGap(FlatRecord):
    """A stretch of the call's timeline, in seconds from its start, that no session recorded."""

    start: float
    end: float


@dataclass
class StitchedRecording:
    """The call's sessions as one recording on one timeline: each session's `offsets` (seconds,
    by session), and silence where no session recorded (`gaps`)."""

    object_key: str
    sample_rate: int
    size: int
    duration: float
    offsets: dict[str, float]
    gaps: list[SilentGap]
    stitched_at: str

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Self:
        return cls(
            doc["object"],
            doc["sample_rate"],
            doc["bytes"],
            doc["duration"],
            dict(doc["offsets"]),
            [SilentGap.from_json(g) for g in doc["gaps"]],
            doc["stitched_at"],
        )

    def to_json(self) -> dict[str, object]:
        return {
            "object": self.object_key,
            "sample_rate": self.sample_rate,
            "bytes": self.size,
            "duration": self.duration,
            "offsets": dict(self.offsets),
            "gaps": [g.to_json() for g in self.gaps],
            "stitched_at": self.stitched_at,
        }
