"""Audio for simulated callers: a WAV file turned into 20 ms frames of 16-bit mono PCM."""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from pathlib import Path

from shared.core.wav import parse_wav

__all__ = ["FRAME_SECONDS", "frame_bytes", "frames", "load_pcm"]

FRAME_SECONDS = 0.02


def frame_bytes(sample_rate: int) -> int:
    return int(sample_rate * FRAME_SECONDS) * 2


def _resample(samples: array[int], source_rate: int, target_rate: int) -> array[int]:
    if source_rate == target_rate or not samples:
        return samples
    count = int(len(samples) * target_rate / source_rate)
    step = source_rate / target_rate
    out = array("h", bytes(2 * count))
    last = len(samples) - 1
    for i in range(count):
        position = i * step
        left = int(position)
        right = min(left + 1, last)
        fraction = position - left
        out[i] = int(samples[left] + (samples[right] - samples[left]) * fraction)
    return out


def load_pcm(path: Path, sample_rate: int) -> bytes:
    """The file's audio as little-endian 16-bit mono PCM at `sample_rate`."""
    audio = parse_wav(Path(path).read_bytes())
    samples = array("h")
    samples.frombytes(audio.pcm[: len(audio.pcm) - len(audio.pcm) % 2])
    if audio.channels > 1:
        channels = audio.channels
        samples = array("h", (sum(samples[i : i + channels]) // channels for i in range(0, len(samples), channels)))
    return _resample(samples, audio.sample_rate, sample_rate).tobytes()


def frames(pcm: bytes, size: int) -> Iterator[bytes]:
    """`pcm` cut into frames of `size` bytes; the last may be shorter."""
    for start in range(0, len(pcm), size):
        yield pcm[start : start + size]
