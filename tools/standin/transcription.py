"""Vonage's transcription of a recording, as the stand-in plays it: the transcript file it serves
under /v1/files/ and the webhook that says where it is.

The file is in the shape third-party Vonage clients read (`ver`, `request_id`, `channels` of
sentences with timed words, times in whole milliseconds); Vonage never published it, see
docs/flows.md ("Vonage as the engine").
Its words are the project's offline engine's, heard in the recording, unless a test hands the
stand-in a fixed file: then the page must show that file's words, whatever the audio says.
"""

from __future__ import annotations

import tempfile
import uuid as uuidlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["SENTENCE_PAUSE", "transcription_webhook", "vonage_transcript_file", "words_heard"]

# A pause this long (seconds) between two words starts a new sentence.
SENTENCE_PAUSE = 0.8


def _sentence(words: Sequence[dict[str, Any]]) -> dict[str, Any]:
    start, end = round(words[0]["start"] * 1000), round(words[-1]["end"] * 1000)
    text = " ".join(word["word"] for word in words)
    timed = [
        {
            "word": word["word"],
            "start_time": round(word["start"] * 1000),
            "end_time": round(word["end"] * 1000),
            "confidence": word["confidence"],
        }
        for word in words
    ]
    return {"sentence": text, "raw_sentence": text, "duration": end - start, "timestamp": start, "words": timed}


def vonage_transcript_file(channels: Sequence[Sequence[dict[str, Any]]], seconds: float) -> dict[str, Any]:
    """Vonage's transcript file of words per channel (`{"word", "start", "end", "confidence"}`,
    seconds): a sentence per run of words without a long pause."""
    entries = []
    for words in channels:
        sentences: list[list[dict[str, Any]]] = []
        for word in words:
            if not sentences or word["start"] - sentences[-1][-1]["end"] >= SENTENCE_PAUSE:
                sentences.append([])
            sentences[-1].append(word)
        entries.append({"transcript": [_sentence(s) for s in sentences], "duration": round(seconds * 1000)})
    return {"ver": "1.0.0", "request_id": str(uuidlib.uuid4()), "channels": entries}


def words_heard(data: bytes, media_format: str) -> list[list[dict[str, Any]]]:
    """The words of each channel of a recording, by the project's offline engine."""
    from shared.adapters.local_blob_store import LocalBlobStore
    from shared.adapters.pocketsphinx_transcriber import PocketsphinxTranscriber
    from shared.core.ports import TranscriptionJob

    with tempfile.TemporaryDirectory() as folder:
        store = LocalBlobStore(Path(folder))
        store.write(f"recording.{media_format}", data)
        job = TranscriptionJob("standin", f"recording.{media_format}", media_format, "en-US")
        transcript = PocketsphinxTranscriber(store).start(job)
    if transcript.status != "completed" or transcript.document is None:
        raise ValueError(f"the offline engine could not transcribe the recording: {transcript.failure}")
    return [list(channel["words"]) for channel in transcript.document["channels"]]


def transcription_webhook(conversation_uuid: str, recording_uuid: str, url: str) -> dict[str, Any]:
    """The transcription webhook, field for field as Vonage's SDK fixture has it (no timestamp)."""
    return {
        "conversation_uuid": conversation_uuid,
        "recording_uuid": recording_uuid,
        "status": "transcribed",
        "transcription_url": url,
        "type": "record",
    }
