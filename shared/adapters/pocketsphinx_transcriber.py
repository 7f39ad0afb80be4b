"""Transcriber on pocketsphinx: the embedded offline default, finishing each job in-process."""

from __future__ import annotations

import logging
import re
import struct
import threading
from typing import Any

from shared.core.errors import NotFound, TapedeckError
from shared.core.ports import BlobStore, Transcript, TranscriptionJob

__all__ = ["DECODER_OPTIONS", "SAMPLE_RATE", "PocketsphinxTranscriber", "decoded_words"]

log = logging.getLogger(__name__)

# The bundled en-US model is built for 16 kHz and refuses 8 kHz, so every input is resampled to it.
SAMPLE_RATE = 16000
# Measured on the speech fixtures (see tests/contract/test_transcribers.py): capping active HMMs and
# Gaussians (maxhmmpf, topn) cuts decoding time by about half, and the cap lets a wider beam
# (default 1e-48) keep words that 32 kbit/s MP3 otherwise loses, at no extra cost. A cap of 1500
# HMMs per frame decodes about a third faster than 3000 for one more wrong word in 60 across the
# fixtures; 1000 loses more. Frame skipping (ds=2) and no flat-lexicon pass (fwdflat=False) are
# faster again but double the word errors on the voicemail.
DECODER_OPTIONS: dict[str, Any] = {"maxhmmpf": 1500, "topn": 2, "beam": 1e-60}
# pocketsphinx reports times in frames of 10 ms.
_FRAME_SECONDS = 0.01
_VARIANT = re.compile(r"\(\d+\)$")


def _is_filler(word: str) -> bool:
    # <s>, </s>, <sil> and noise classes such as [NOISE] or ++BREATH++ are not speech.
    return word.startswith(("<", "[", "+"))


def decoded_words(decoder: Any, offset: float = 0.0) -> list[dict[str, Any]]:
    """The words of the decoder's utterance, fillers left out, as `{"word", "start", "end",
    "confidence"}` with times in seconds, `offset` seconds after the start of the audio."""
    return [
        {
            "word": _VARIANT.sub("", segment.word),
            "start": round(offset + segment.start_frame * _FRAME_SECONDS, 2),
            "end": round(offset + (segment.end_frame + 1) * _FRAME_SECONDS, 2),
            # A posterior from log arithmetic: it can overshoot 1 by a rounding step.
            "confidence": round(min(1.0, max(0.0, float(segment.prob))), 4),
        }
        # No hypothesis at all (a click taken for speech) gives no segments, not an empty list.
        for segment in decoder.seg() or ()
        if not _is_filler(segment.word)
    ]


class PocketsphinxTranscriber:
    """Speech to text with pocketsphinx's bundled US-English model; one decoder per instance.

    A route's vocabulary is not taken: the decoder hears only words its dictionary spells out in
    phones, and adding one needs a pronunciation tapedeck cannot make (keyword spotting would
    replace the transcript with a search for the phrases, not help it).
    """

    def __init__(self, store: BlobStore, options: dict[str, Any] | None = None) -> None:
        self.store = store
        self._options = dict(DECODER_OPTIONS if options is None else options)
        self._decoder: Any = None
        # process_raw is not thread-safe, and building the decoder twice would waste ~100 MiB.
        self._lock = threading.Lock()

    def start(self, job: TranscriptionJob) -> Transcript:
        blob = self.store.read(job.audio_key)
        if blob is None:
            return _failed(job, f"no audio at {job.audio_key}")
        try:
            from shared.core.audio import decode_audio, resample

            rate, channels = decode_audio(blob.data, job.media_format)
            pcm = [resample(channel, rate, SAMPLE_RATE) for channel in channels]
            decoded = [self._decode(channel) for channel in pcm]
        except (TapedeckError, RuntimeError, ValueError, struct.error) as err:
            log.warning("transcription failed", extra={"job": job.name, "error": str(err)})
            return _failed(job, str(err))
        document = {
            "engine": "pocketsphinx",
            "channels": [{"channel": i, "words": words} for i, words in enumerate(decoded)],
        }
        text = "\n".join(" ".join(word["word"] for word in words) for words in decoded)
        return Transcript(job.name, "completed", text, document)

    def collect(self, job_name: str) -> Transcript:
        raise NotFound(f"{job_name}: the offline engine completes each job in start; there is nothing to collect")

    def discard(self, job_name: str) -> int:
        # the offline engine keeps nothing of a job once it answered.
        return 0

    def _decode(self, pcm: bytes) -> list[dict[str, Any]]:
        """The words said in one channel of 16 kHz mono PCM, fillers left out."""
        with self._lock:
            decoder = self._get_decoder()
            decoder.start_utt()
            # full_utt: normalise over the whole recording, so earlier jobs do not colour this one.
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            return [] if decoder.hyp() is None else decoded_words(decoder)

    def _get_decoder(self) -> Any:
        if self._decoder is None:
            from pocketsphinx import Decoder

            self._decoder = Decoder(samprate=SAMPLE_RATE, **self._options)
        return self._decoder


def _failed(job: TranscriptionJob, reason: str) -> Transcript:
    return Transcript(job.name, "failed", "", failure=reason)
