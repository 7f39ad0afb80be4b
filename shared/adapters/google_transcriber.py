"""Transcriber on Google Speech-to-Text v1: a long-running recognition awaited in-process."""

from __future__ import annotations

import importlib
import logging
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from shared.core.errors import NotFound, TapedeckError
from shared.core.ports import BlobStore, Transcript, TranscriptionJob
from shared.core.vocabulary import BOOST

__all__ = ["GoogleTranscriber", "speech_contexts"]

log = logging.getLogger(__name__)

ENGINE = "google"
# Enhanced models such as "phone_call" exist only for some languages and need use_enhanced.
_ENHANCED_MODELS = ("phone_call", "video")


@dataclass(eq=False)
class GoogleTranscriber:
    """Speech to text with Google. The client is built on first use unless one is injected.

    With `bucket` the audio is recognised in place from gs://bucket/key (no size limit for the
    request); without, the bytes read from the store are sent inline (at most 10 MB).
    """

    store: BlobStore
    bucket: str | None
    client: Any = None
    model: str = "default"
    timeout: float = 120.0

    @cached_property
    def _speech_client(self) -> Any:
        return self.client if self.client is not None else _speech().SpeechClient()

    def start(self, job: TranscriptionJob) -> Transcript:
        from google.api_core.exceptions import GoogleAPIError

        from shared.core.audio import probe_audio

        speech = _speech()
        blob = self.store.read(job.audio_key)
        if blob is None:
            return _failed(job, f"no audio at {job.audio_key}")
        try:
            # The rate comes from the file's own header, so it always matches what is sent.
            info = probe_audio(blob.data, job.media_format)
            encoding = speech.RecognitionConfig.AudioEncoding
            config = speech.RecognitionConfig(
                encoding=encoding.MP3 if job.media_format == "mp3" else encoding.LINEAR16,
                sample_rate_hertz=info.sample_rate,
                language_code=job.language,
                enable_automatic_punctuation=True,
                enable_word_time_offsets=True,
                model=self.model,
                use_enhanced=self.model in _ENHANCED_MODELS,
                audio_channel_count=job.channels,
                enable_separate_recognition_per_channel=job.channels > 1,
                speech_contexts=speech_contexts(job.vocabulary),
                # The others a route's speakers may use: Google names the one it heard per result.
                alternative_language_codes=[code for code in job.languages if code != job.language],
            )
            if self.bucket:
                audio = speech.RecognitionAudio(uri=f"gs://{self.bucket}/{job.audio_key}")
            else:
                audio = speech.RecognitionAudio(content=blob.data)
            operation = self._speech_client.long_running_recognize(config=config, audio=audio)
            response = operation.result(timeout=self.timeout)
        except (GoogleAPIError, FutureTimeout, TapedeckError) as err:
            log.warning("transcription failed", extra={"job": job.name, "error": str(err)})
            return _failed(job, str(err) or type(err).__name__)
        results = [_result(result) for result in response.results if result.alternatives]
        document = {"engine": ENGINE, "results": results}
        return Transcript(job.name, "completed", _text(results), document, language=_heard_language(job, results))

    def collect(self, job_name: str) -> Transcript:
        raise NotFound(f"{job_name}: Google jobs complete in start; there is nothing to collect")

    def discard(self, job_name: str) -> int:
        # Google's synchronous recognition keeps no job, and reads the audio in place: nothing is staged.
        return 0


def _speech() -> Any:
    """The google-cloud-speech v1 module, imported on first use."""
    # Through importlib: a typed `from google.cloud import speech_v1` makes mypy resolve the
    # google.cloud namespace as a package, which breaks `from google.cloud import storage`.
    return importlib.import_module("google.cloud.speech_v1")


def speech_contexts(vocabulary: tuple[str, ...]) -> list[Any]:
    """A route's phrases as Google's speech adaptation: one context, boosted (none without phrases)."""
    if not vocabulary:
        return []
    return [_speech().SpeechContext(phrases=list(vocabulary), boost=BOOST)]


def _result(result: Any) -> dict[str, Any]:
    """One recognised stretch of audio as plain data: its best alternative and word timings."""
    best = result.alternatives[0]
    return {
        "channel_tag": int(result.channel_tag),
        "language_code": str(result.language_code),
        "transcript": str(best.transcript).strip(),
        "confidence": float(best.confidence),
        "words": [
            {
                "word": str(word.word),
                "start": word.start_time.total_seconds(),
                "end": word.end_time.total_seconds(),
                "confidence": float(word.confidence),
            }
            for word in best.words
        ],
    }


def _heard_language(job: TranscriptionJob, results: list[dict[str, Any]]) -> str | None:
    """Of a job given languages to choose among, the one most of its results were heard in.
    Google's results give the tag in lower case (`"languageCode": "en-us"` in a captured
    multichannel response), so it is matched without case and given back as the route spelt it."""
    if not job.languages:
        return None
    spelt = {code.lower(): code for code in job.languages}
    heard = [spelt.get(result["language_code"].lower()) for result in results if result["transcript"]]
    counted = Counter(code for code in heard if code)
    return counted.most_common(1)[0][0] if counted else job.language


def _text(results: Iterable[dict[str, Any]]) -> str:
    """Each channel's transcripts joined by spaces, channels (in tag order) one per line."""
    by_channel: dict[int, list[str]] = {}
    for result in results:
        if result["transcript"]:
            by_channel.setdefault(result["channel_tag"], []).append(result["transcript"])
    return "\n".join(" ".join(by_channel[tag]) for tag in sorted(by_channel))


def _failed(job: TranscriptionJob, reason: str) -> Transcript:
    return Transcript(job.name, "failed", "", failure=reason)
