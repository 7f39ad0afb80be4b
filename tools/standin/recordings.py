"""What a record action captures: the caller until an end condition, or every leg until hang-up."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.core.wav import wav_header
from tools.standin.audio import FRAME_SECONDS, frame_bytes
from tools.standin.dtmf import DtmfPress

__all__ = [
    "RECORDING_RATE",
    "encode_recording",
    "lay_out_channels",
    "record_length",
    "recording_layout",
    "records_in_background",
]

log = logging.getLogger(__name__)

RECORDING_RATE = 16000
_MP3_BIT_RATE = 64  # kbit/s
# A 20 ms frame whose loudest sample is below this counts as silence for endOnSilence.
_SILENCE_PEAK = 300
# Any of these makes a record action blocking; without them it records the rest of the call.
_END_CONDITIONS = ("endOnSilence", "endOnKey", "timeOut")


def records_in_background(action: dict[str, Any]) -> bool:
    """Whether a record action runs for the rest of the call while the NCCO moves on."""
    return not any(key in action for key in _END_CONDITIONS)


def record_length(pcm: bytes, rate: int, action: dict[str, Any], dtmf: list[DtmfPress]) -> tuple[int, str]:
    """How many bytes a record action keeps, and why it stopped: timeOut, endOnKey, endOnSilence."""
    length, reason = len(pcm), "hangup"
    limit = int(action.get("timeOut", 7200)) * rate * 2
    if limit < length:
        length, reason = limit, "timeOut"
    key = action.get("endOnKey")
    for press in dtmf:
        at = int(press.at * rate) * 2
        if press.digit == key and at < length:
            length, reason = at, "endOnKey"
            break
    silence = action.get("endOnSilence")
    if silence:
        frame = frame_bytes(rate)
        needed = int(float(silence) / FRAME_SECONDS)
        heard, quiet = False, 0
        for start in range(0, length, frame):
            samples = memoryview(pcm[start : start + frame]).cast("h")
            loud = any(abs(v) >= _SILENCE_PEAK for v in samples)
            heard = heard or loud
            quiet = 0 if loud else quiet + 1
            if heard and quiet >= needed:
                return start + frame, "endOnSilence"
    return length, reason


def recording_layout(action: dict[str, Any]) -> tuple[int, str]:
    """The channel count and file format a record action asks for, with Vonage's defaults."""
    channels = int(action.get("channels", 2)) if action.get("split") == "conversation" else 1
    # Vonage records mp3 unless told otherwise, and wav when there are more than two channels.
    media_format = str(action.get("format") or ("wav" if channels > 2 else "mp3"))
    return channels, media_format


def lay_out_channels(tracks: Sequence[bytes], channels: int) -> npt.NDArray[np.int16]:
    """Mono 16-bit tracks as (frames, channels): track k on channel k, extra tracks mixed into
    the last channel (summed, clipped), shorter tracks padded with silence."""
    if channels < 1:
        raise ValueError(f"a recording has at least one channel, not {channels}")
    samples = [np.frombuffer(track[: len(track) - len(track) % 2], dtype="<i2") for track in tracks]
    length = max((len(s) for s in samples), default=0)
    mix = np.zeros((length, channels), dtype=np.int32)
    for index, track in enumerate(samples):
        mix[: len(track), min(index, channels - 1)] += track
    return np.clip(mix, -32768, 32767).astype("<i2")


def encode_recording(grid: npt.NDArray[np.int16], rate: int, media_format: str) -> tuple[bytes, str]:
    """The recording file for (frames, channels) of samples, and the format actually used."""
    channels = grid.shape[1]
    if media_format == "mp3" and channels > 2:
        # MP3 holds at most two channels; Vonage records wav above two channels.
        log.warning("mp3 asked for more than two channels; recording wav", extra={"channels": channels})
        media_format = "wav"
    pcm = np.ascontiguousarray(grid, dtype="<i2").tobytes()
    if media_format == "wav":
        return wav_header(rate, len(pcm), channels) + pcm, "wav"
    if media_format == "mp3":
        # The encoder is only needed when a call records mp3.
        import lameenc

        encoder = lameenc.Encoder()
        encoder.set_bit_rate(_MP3_BIT_RATE)
        encoder.set_in_sample_rate(rate)
        encoder.set_channels(channels)
        encoder.set_quality(2)
        return bytes(encoder.encode(pcm) + encoder.flush()), "mp3"
    raise ValueError(f"the stand-in records wav or mp3, not {media_format!r}")
