"""A recording's waveform as peaks: the lowest and highest sample in each of `points` buckets. Pure.

The shape is BBC audiowaveform's JSON (version 2): `channels`, `sample_rate`,
`samples_per_pixel`, `bits`, `length` and `data` = [min0, max0, min1, max1, ...] per channel in
turn, so any reader of that format can draw it. Computed once per recording and stored beside it.
"""

from __future__ import annotations

import numpy as np

from shared.core.audio import decode_audio

__all__ = ["POINTS", "waveform_peaks"]

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
