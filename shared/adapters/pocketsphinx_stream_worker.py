"""The child program of live pocketsphinx: one call's audio in, its segments out.

    python -m shared.adapters.pocketsphinx_stream_worker --rate 16000 [--nice 10]

Reads 20 ms frames of 16-bit mono PCM on stdin, exactly as Vonage sends them. pocketsphinx's
Endpointer finds the speech; the decoder hears only that, upsampled to 16 kHz when the call is at
8 kHz. Writes one JSON line per segment on stdout: interim ones while a stretch of speech goes
on, a final one when it ends at a pause, and `{"done": true}` once stdin closes and the last
words are out. Word times are seconds from the start of the stream.

A decoder holds about 91 MiB and never releases the GIL, so it runs here, in a process of its
own, and never in the recorder's event loop; `--nice` lowers its scheduling priority first, so
the recorder wins a busy core.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, BinaryIO, TextIO

from shared.adapters.pocketsphinx_transcriber import DECODER_OPTIONS, SAMPLE_RATE, decoded_words

__all__ = ["main", "run"]

# An interim segment after every this many seconds of speech.
_INTERIM_EVERY = 0.5
# Vonage sends 20 ms frames; the Endpointer takes them as they are.
_FRAME_SECONDS = 0.02


class _Utterances:
    """Feeds speech to the decoder and writes what it hears."""

    def __init__(self, decoder: Any, rate: int, out: TextIO) -> None:
        self.decoder, self.rate, self.out = decoder, rate, out
        self.start: float | None = None
        self.fed = 0.0
        self.reported = 0.0

    def speech(self, pcm: bytes, speech_start: float) -> None:
        if self.start is None:
            self.start = speech_start
            self.decoder.start_utt()
            self.fed = self.reported = 0.0
        if self.rate != SAMPLE_RATE:
            from shared.core.audio import resample

            pcm = resample(pcm, self.rate, SAMPLE_RATE)
        self.decoder.process_raw(pcm)
        self.fed += len(pcm) / (2 * SAMPLE_RATE)
        if self.fed - self.reported >= _INTERIM_EVERY:
            self.reported = self.fed
            hypothesis = self.decoder.hyp()
            if hypothesis is not None and hypothesis.hypstr:
                self._write(final=False, words=decoded_words(self.decoder, self.start))

    def end(self) -> None:
        if self.start is None:
            return
        self.decoder.end_utt()
        self._write(final=True, words=decoded_words(self.decoder, self.start))
        self.start = None

    def _write(self, final: bool, words: list[dict[str, Any]]) -> None:
        if final or words:
            line = {"final": final, "text": " ".join(w["word"] for w in words), "words": words}
            if words:
                line |= {"start": words[0]["start"], "end": words[-1]["end"]}
            self.out.write(json.dumps(line) + "\n")
            self.out.flush()


def run(source: BinaryIO, out: TextIO, rate: int) -> None:
    """Decode the frames read from `source` until it ends; write segments to `out`."""
    from pocketsphinx import Decoder, Endpointer

    endpointer = Endpointer(sample_rate=rate, frame_length=_FRAME_SECONDS)
    utterances = _Utterances(Decoder(samprate=SAMPLE_RATE, **DECODER_OPTIONS), rate, out)
    size = endpointer.frame_bytes
    while True:
        frame = source.read(size)
        if len(frame) < size:
            # The stream ended, perhaps on a short last frame: finish what was being said. The
            # Endpointer takes a last frame only in speech, and never an empty one (Vonage's
            # frames are whole, so the read at the end is usually empty): one silent sample stands in.
            speech = endpointer.end_stream(frame or bytes(2)) if endpointer.in_speech else None
            if speech is not None:
                utterances.speech(speech, endpointer.speech_start)
            break
        was_in_speech = endpointer.in_speech
        speech = endpointer.process(frame)
        if speech is not None:
            utterances.speech(speech, endpointer.speech_start)
            if was_in_speech and not endpointer.in_speech:
                utterances.end()
    utterances.end()
    out.write(json.dumps({"done": True}) + "\n")
    out.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Live pocketsphinx: PCM frames on stdin, segments on stdout.")
    parser.add_argument("--rate", type=int, choices=(8000, 16000), default=16000)
    parser.add_argument("--nice", type=int, default=0, help="added to this process's niceness before decoding")
    args = parser.parse_args(argv)
    if args.nice:
        os.nice(args.nice)
    run(sys.stdin.buffer, sys.stdout, args.rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
