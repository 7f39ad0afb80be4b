"""WAV (RIFF, 16-bit PCM) headers and reading: pure functions over bytes."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from shared.core.errors import BadRequest

__all__ = ["HEADER_BYTES", "WavAudio", "parse_wav", "wav_header"]

HEADER_BYTES = 44
_MAX_DATA = 0xFFFFFFFF - (HEADER_BYTES - 8)


def wav_header(sample_rate: int, data_bytes: int, channels: int = 1) -> bytes:
    """The 44-byte header of a 16-bit PCM WAV holding `data_bytes` of samples."""
    if not 0 <= data_bytes <= _MAX_DATA:
        raise ValueError(f"a WAV holds at most {_MAX_DATA} bytes of audio, not {data_bytes}")
    block_align = channels * 2
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        HEADER_BYTES - 8 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        channels,
        sample_rate,
        sample_rate * block_align,
        block_align,
        16,
        b"data",
        data_bytes,
    )


@dataclass(frozen=True)
class WavAudio:
    """Decoded WAV: format and the raw little-endian sample bytes."""

    sample_rate: int
    channels: int
    sample_width: int
    pcm: bytes

    @property
    def duration(self) -> float:
        return len(self.pcm) / (self.sample_rate * self.channels * self.sample_width)


def parse_wav(data: bytes) -> WavAudio:
    """Read a PCM WAV, walking its chunks; raise BadRequest for anything else."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise BadRequest("not a RIFF/WAVE file")
    offset = 12
    fmt: tuple[int, int, int, int] | None = None
    while offset + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, offset)
        body = offset + 8
        if chunk_id == b"fmt ":
            if size < 16:
                raise BadRequest("WAV fmt chunk is too short")
            audio_format, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            fmt = (audio_format, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise BadRequest("WAV data chunk comes before its fmt chunk")
            audio_format, channels, rate, bits = fmt
            if audio_format != 1 or bits != 16:
                raise BadRequest(f"only 16-bit PCM WAV is supported (format {audio_format}, {bits} bits)")
            return WavAudio(rate, channels, 2, data[body : body + size])
        offset = body + size + (size & 1)
    raise BadRequest("WAV has no data chunk")
