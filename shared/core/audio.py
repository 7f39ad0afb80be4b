"""Stored audio to 16-bit PCM: WAV and MP3 decoding, channel splitting and resampling."""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from shared.core.errors import BadRequest
from shared.core.wav import parse_wav

__all__ = ["MEDIA_FORMATS", "AudioInfo", "decode_audio", "probe_audio", "resample", "split_channels"]

MEDIA_FORMATS = ("wav", "mp3")

# Windowed-sinc interpolation: zero crossings kept each side of a tap, and the share of the
# narrower Nyquist band that is passed (the rest is the filter's transition band).
_ZERO_CROSSINGS = 16
_PASSBAND = 0.95
_BLOCK = 16384  # output samples computed per vectorised step, to bound memory on long calls


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    channels: int


def probe_audio(data: bytes, media_format: str) -> AudioInfo:
    """The sample rate and channel count of stored audio, without decoding all of it."""
    if media_format == "wav":
        wav = parse_wav(data)
        return AudioInfo(wav.sample_rate, wav.channels)
    if media_format == "mp3":
        import miniaudio

        try:
            info = miniaudio.mp3_get_info(data)
        except miniaudio.MiniaudioError as err:
            raise BadRequest(f"undecodable MP3: {err}") from err
        return AudioInfo(int(info.sample_rate), int(info.nchannels))
    raise BadRequest(f"unsupported media format {media_format!r}; expected one of {MEDIA_FORMATS}")


def decode_audio(data: bytes, media_format: str) -> tuple[int, list[bytes]]:
    """The sample rate and one 16-bit little-endian PCM buffer per channel; BadRequest if undecodable."""
    if media_format == "wav":
        wav = parse_wav(data)
        return wav.sample_rate, split_channels(wav.pcm, wav.channels)
    if media_format == "mp3":
        # The MP3 decoder (miniaudio bundles dr_mp3 in its wheel) is imported only when an MP3 arrives.
        import miniaudio

        try:
            sound = miniaudio.mp3_read_s16(data)
        except miniaudio.MiniaudioError as err:
            raise BadRequest(f"undecodable MP3: {err}") from err
        pcm = np.asarray(sound.samples, dtype="<i2").tobytes()
        return int(sound.sample_rate), split_channels(pcm, int(sound.nchannels))
    raise BadRequest(f"unsupported media format {media_format!r}; expected one of {MEDIA_FORMATS}")


def split_channels(pcm: bytes, channels: int) -> list[bytes]:
    """Interleaved 16-bit frames to one buffer per channel (a trailing partial frame is dropped)."""
    if channels < 1:
        raise BadRequest(f"audio must have at least one channel, not {channels}")
    samples = _samples(pcm)
    frames = len(samples) // channels
    if channels == 1:
        return [samples[:frames].tobytes()]
    grid = samples[: frames * channels].reshape(frames, channels)
    return [np.ascontiguousarray(grid[:, i]).tobytes() for i in range(channels)]


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Mono 16-bit PCM at `from_rate` re-timed to `to_rate`, band-limited to the lower Nyquist."""
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, not {from_rate} and {to_rate}")
    if from_rate == to_rate:
        return pcm
    x = _samples(pcm).astype(np.float64)
    common = gcd(from_rate, to_rate)
    up, down = to_rate // common, from_rate // common
    n_out = len(x) * up // down
    # Cut-off in cycles per input sample; going down, it must also remove what would alias.
    cutoff = 0.5 * min(1.0, up / down) * _PASSBAND
    half = int(np.ceil(_ZERO_CROSSINGS / (2 * cutoff)))
    taps = np.arange(-half + 1, half + 1)
    padded = np.concatenate([np.zeros(half), x, np.zeros(half + 1)])
    # windows[i + 1] holds the inputs around input sample i (from i - half + 1 to i + half).
    windows = sliding_window_view(padded, 2 * half)
    out = np.empty(n_out, dtype=np.float64)
    # Polyphase: output n sits at input position n * down / up, so its filter depends only on n % up.
    for phase in range(min(up, n_out)):
        base, rest = divmod(phase * down, up)
        distance = rest / up - taps
        window = 0.5 + 0.5 * np.cos(np.pi * distance / half)
        weights = 2 * cutoff * np.sinc(2 * cutoff * distance) * window
        count = len(range(phase, n_out, up))
        for start in range(0, count, _BLOCK):
            stop = min(start + _BLOCK, count)
            first = base + 1 + down * start
            block = windows[first : first + down * (stop - start) : down]
            out[phase + up * start : phase + up * stop : up] = block @ weights
    return np.clip(np.rint(out), -32768, 32767).astype("<i2").tobytes()


def _samples(pcm: bytes) -> npt.NDArray[np.int16]:
    usable = len(pcm) - len(pcm) % 2
    return np.frombuffer(pcm[:usable], dtype="<i2")
