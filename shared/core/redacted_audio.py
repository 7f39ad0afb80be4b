"""A recording's redacted copy: silence over the time spans of redacted words. Pure, no I/O.

Each span is widened by `PAD_SECONDS` either side, since an engine's word times are to the
nearest 10 ms or so and a word's first and last sounds fade in and out beyond them. The copy is a
16-bit PCM WAV at the recording's own rate and channels, whatever the recording's format (an MP3
could not be re-encoded without an encoder), and silent, not toned, so it compresses and a
listener hears that something was left out by the gap in the speech.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shared.core.audio import decode_audio
from shared.core.redaction import RedactedSpan
from shared.core.wav import wav_header

__all__ = ["PAD_SECONDS", "redacted_wav", "silenced_samples"]

PAD_SECONDS = 0.1


def silenced_samples(rate: int, length: int, spans: Sequence[RedactedSpan], pad: float = PAD_SECONDS) -> list[slice]:
    """The sample ranges to silence in a channel of `length` samples at `rate`."""
    ranges = []
    for span in spans:
        first = max(0, int((span.start - pad) * rate))
        last = min(length, int(np.ceil((span.end + pad) * rate)))
        if first < last:
            ranges.append(slice(first, last))
    return ranges


def redacted_wav(data: bytes, media_format: str, spans: Sequence[RedactedSpan], pad: float = PAD_SECONDS) -> bytes:
    """The recording as a WAV, each span's channel silent over the span; BadRequest if undecodable."""
    rate, channels = decode_audio(data, media_format)
    columns = [np.frombuffer(pcm, "<i2").copy() for pcm in channels]
    for span in spans:
        if 0 <= span.channel < len(columns):
            for cut in silenced_samples(rate, len(columns[span.channel]), [span], pad):
                columns[span.channel][cut] = 0
    length = min((len(column) for column in columns), default=0)
    pcm = np.stack([column[:length] for column in columns], axis=1).astype("<i2").tobytes() if columns else b""
    return wav_header(rate, len(pcm), max(1, len(columns))) + pcm
