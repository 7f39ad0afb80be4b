"""What the bench's client and its instrumented recorder agree on: the frame layout and a delay histogram."""

from __future__ import annotations

import math
import struct
import threading
from array import array
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any

__all__ = [
    "DECODER_NICE_ENV",
    "FRAMES_PER_MINUTE",
    "FRAME_BYTES",
    "FRAME_SECONDS",
    "FSYNC_ENV",
    "STAMP",
    "STATS_DIR_ENV",
    "TIMED_PATH",
    "DelayHistogram",
    "SparseHistogram",
    "merge_histograms",
    "percentile_ms",
    "subtract_histogram",
]

FRAME_SECONDS = 0.02
FRAME_BYTES = 640  # 20 ms of 16 kHz 16-bit mono PCM
FRAMES_PER_MINUTE = int(60 / FRAME_SECONDS)
# Each frame starts with the moment the client sent it (time.time() clock, same machine).
STAMP = struct.Struct("<d")
# The instrumented app serves the recorder's stream handler, timed, on this path beside /socket.
TIMED_PATH = "/bench/socket"
# The instrumented app writes one `<pid>.json` of frame delays per worker into this folder, and
# one `<pid>.stall.json` of how late its event loop woke a sleeper.
STATS_DIR_ENV = "BENCH_STATS_DIR"
# What the instrumented app changes in the production recorder, to compare in one run: "loop"
# puts the storage's fsync back on the event loop; a number is the live decoders' niceness.
FSYNC_ENV = "BENCH_FSYNC"
DECODER_NICE_ENV = "BENCH_DECODER_NICE"

_BIN_MS = 0.1
# 0.1 ms bins up to 5 s, allocated once so counting frames does not grow the server's memory.
_BINS = 50_000


class DelayHistogram:
    """Delays in 0.1 ms bins; anything past 5 s counts as overflow."""

    def __init__(self, lock: AbstractContextManager[Any] | None = None) -> None:
        self._counts = array("q", bytes(8 * _BINS))
        # Threads (a gthread worker) share it under a lock; greenlets switch only when they wait.
        self._lock = lock if lock is not None else threading.Lock()
        self.count = 0
        self.overflow = 0
        self.max_ms = 0.0

    def add(self, seconds: float) -> None:
        ms = max(seconds * 1000.0, 0.0)
        index = int(ms / _BIN_MS)
        with self._lock:
            self.count += 1
            self.max_ms = max(self.max_ms, ms)
            if index < _BINS:
                self._counts[index] += 1
            else:
                self.overflow += 1

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            bins = {str(i): c for i, c in enumerate(self._counts) if c}
            return {"count": self.count, "overflow": self.overflow, "max_ms": self.max_ms, "bins": bins}


class SparseHistogram:
    """Delays in 0.1 ms bins, only the bins used: cheap to write out every second."""

    def __init__(self) -> None:
        self.bins: dict[int, int] = {}
        self.count = 0
        self.max_ms = 0.0

    def add(self, seconds: float) -> None:
        ms = max(seconds * 1000.0, 0.0)
        index = min(int(ms / _BIN_MS), _BINS)
        self.bins[index] = self.bins.get(index, 0) + 1
        self.count += 1
        self.max_ms = max(self.max_ms, ms)

    def to_dict(self) -> dict[str, Any]:
        """The shape of `DelayHistogram.to_dict()`."""
        bins = {str(i): c for i, c in self.bins.items() if i < _BINS}
        return {"count": self.count, "overflow": self.bins.get(_BINS, 0), "max_ms": self.max_ms, "bins": bins}


def merge_histograms(histograms: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One histogram summing several `DelayHistogram.to_dict()` results."""
    merged: dict[str, Any] = {"count": 0, "overflow": 0, "max_ms": 0.0, "bins": {}}
    for histogram in histograms:
        merged["count"] += histogram["count"]
        merged["overflow"] += histogram["overflow"]
        merged["max_ms"] = max(merged["max_ms"], histogram["max_ms"])
        for index, count in histogram["bins"].items():
            merged["bins"][index] = merged["bins"].get(index, 0) + count
    return merged


def subtract_histogram(total: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """`total` without the frames already counted in `before` (its max is kept as is)."""
    bins = {i: c - before["bins"].get(i, 0) for i, c in total["bins"].items()}
    return {
        "count": total["count"] - before["count"],
        "overflow": total["overflow"] - before["overflow"],
        "max_ms": total["max_ms"],
        "bins": {i: c for i, c in bins.items() if c},
    }


def percentile_ms(histogram: dict[str, Any], fraction: float) -> float | None:
    """The upper edge of the bin holding the `fraction` quantile; inf when it lies past 5 s."""
    if not histogram["count"]:
        return None
    rank = math.ceil(fraction * histogram["count"])
    seen = 0
    for index in sorted(int(i) for i in histogram["bins"]):
        seen += histogram["bins"][str(index)]
        if seen >= rank:
            return round((index + 1) * _BIN_MS, 1)
    return math.inf
