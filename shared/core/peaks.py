"""A recording's waveform as peaks: the lowest and highest sample in each of `points` buckets. Pure.

The shape is BBC audiowaveform's JSON (version 2): `channels`, `sample_rate`,
`samples_per_pixel`, `bits`, `length` and `data` = [min0, max0, min1, max1, ...] per channel in
turn, so any reader of that format can draw it. Computed once per recording and stored beside it.
"""

from __future__ import annotations

import numpy as np

from shared.core.audio import decode_audio

__all__ = ["POINTS", "PeakBuilder", "waveform_peaks"]

# Enough for a page's width at any zoom; an hour of 16 kHz audio is 2000 pairs, about 30 KiB.
POINTS = 2000


def waveform_peaks(data: bytes, media_format: str, points: int = POINTS) -> dict[str, object]:
    """Peaks of stored audio (WAV or MP3); BadRequest if it cannot be decoded."""
    rate, channels = decode_audio(data, media_format)
    length = max(len(pcm) // 2 for pcm in channels) if channels else 0
    per_point = max(1, -(-length // points))
    pairs = []
    for pcm in channels:
        samples = np.frombuffer(pcm, "<i2")
        samples = np.pad(samples, (0, per_point * -(-length // per_point) - len(samples)))
        buckets = samples.reshape(-1, per_point)
        pairs.append(np.stack([buckets.min(axis=1), buckets.max(axis=1)], axis=1))
    # (points, channels, 2): each point's min and max for every channel in turn.
    stacked = np.stack(pairs, axis=1) if pairs else np.zeros((0, 0, 2), np.int16)
    return {
        "version": 2,
        "channels": len(channels),
        "sample_rate": rate,
        "samples_per_pixel": per_point,
        "bits": 16,
        "length": int(stacked.shape[0]),
        "duration": round(length / rate, 3) if rate else 0.0,
        "data": stacked.astype(int).ravel().tolist(),
    }


class PeakBuilder:
    """The peaks of a mono recording of `samples` samples, built piece by piece, so a long one is
    never in memory whole; what no piece covers is silence. The same peaks as `waveform_peaks`
    of the whole recording."""

    def __init__(self, samples: int, rate: int, points: int = POINTS) -> None:
        self.samples, self.rate = samples, rate
        self.per_point = max(1, -(-samples // points))
        length = -(-samples // self.per_point)
        self._low = np.full(length, np.iinfo(np.int16).max, np.int32)
        self._high = np.full(length, np.iinfo(np.int16).min, np.int32)
        self._covered = np.zeros(length, np.int64)

    def add(self, offset: int, pcm: bytes) -> None:
        """The 16-bit samples of `pcm`, which start `offset` samples into the recording."""
        samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], "<i2")
        size = self.per_point
        head = min(len(samples), (-offset) % size)
        pieces = [(offset, samples[:head])] if head else []
        whole = (len(samples) - head) // size * size
        if whole:
            first = (offset + head) // size
            buckets = samples[head : head + whole].reshape(-1, size)
            rows = slice(first, first + len(buckets))
            self._low[rows] = np.minimum(self._low[rows], buckets.min(axis=1))
            self._high[rows] = np.maximum(self._high[rows], buckets.max(axis=1))
            self._covered[rows] += size
        if head + whole < len(samples):
            pieces.append((offset + head + whole, samples[head + whole :]))
        for start, piece in pieces:
            index = start // size
            self._low[index] = min(int(self._low[index]), int(piece.min()))
            self._high[index] = max(int(self._high[index]), int(piece.max()))
            self._covered[index] += len(piece)

    def peaks(self) -> dict[str, object]:
        """The peaks in BBC audiowaveform's JSON shape, as `waveform_peaks` gives them."""
        # A bucket short of samples (a gap, or the end's padding) holds silence too.
        short = self._covered < self.per_point
        low = np.where(short, np.minimum(self._low, 0), self._low)
        high = np.where(short, np.maximum(self._high, 0), self._high)
        return {
            "version": 2,
            "channels": 1,
            "sample_rate": self.rate,
            "samples_per_pixel": self.per_point,
            "bits": 16,
            "length": len(low),
            "duration": round(self.samples / self.rate, 3) if self.rate else 0.0,
            "data": np.stack([low, high], axis=1).astype(int).ravel().tolist(),
        }
