"""What a route redacts, stored: the redacted transcript under the usual names, the words as heard
only when the route keeps them, and the recording's copy silenced over the redacted words.

`transcript.unredacted.json` and `.txt` (`transcript-<session>.unredacted.*` for a second stream)
hold the words as heard; the recordings browser shows them to its admins only. The silenced copy
is `<recording>.redacted.wav` beside the recording; the pages' links and the browser play it. A
recording the route does not keep unredacted is deleted once its copy is stored, except a
streamed one (audio.wav), which the recorder's sweep and stitching go on reading.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.config.routes import Route
from shared.core.errors import TapedeckError
from shared.core.ports import BlobStore, TranscriptionJob
from shared.core.redacted_audio import redacted_wav
from shared.core.redaction import Redact, RedactedSpan, redact_model, redact_text
from shared.core.transcripts import TranscriptModel, build_turns, parse_transcript, transcript_document
from shared.flows.jobs import media_format_of

__all__ = [
    "REDACTED_SUFFIX",
    "RedactedTranscript",
    "RedactionPolicy",
    "engine_job",
    "engine_redaction",
    "playable_key",
    "redact_document",
    "redacted_audio_key",
    "redacted_model_document",
    "store_redacted_audio",
    "store_unredacted",
    "unredacted_key",
]

log = logging.getLogger(__name__)

REDACTED_SUFFIX = ".redacted.wav"
_STREAMED = "audio"


@dataclass(frozen=True)
class RedactionPolicy:
    """What a route hides of what callers say, and whether it keeps the words as heard too."""

    kinds: tuple[Redact, ...] = ()
    keep_unredacted: bool = False


@dataclass(frozen=True)
class RedactedTranscript:
    """A transcript with what its route hides hidden: its document, its text, and where in the audio."""

    document: dict[str, Any]
    text: str
    spans: tuple[RedactedSpan, ...]
    model: TranscriptModel | None = None


def engine_redaction(route: Route) -> tuple[str, ...]:
    """What the engine may redact itself: what the route redacts, unless the route keeps the words
    as heard (an engine's redacted transcript has lost them)."""
    return () if route.keep_unredacted else tuple(str(kind) for kind in route.redact)


def engine_job(name: str, audio_key: str, media_format: str, route: Route, channels: int = 1) -> TranscriptionJob:
    """A recording's transcription, with what its route tells the engine."""
    return TranscriptionJob(
        name,
        audio_key,
        media_format,
        route.language,
        channels,
        engine_redaction(route),
        route.vocabulary,
        route.languages,
    )


def _kinds_note(kinds: Collection[Redact]) -> list[str]:
    return sorted(str(kind) for kind in kinds)


def redacted_model_document(
    model: TranscriptModel, kinds: Collection[Redact], head: Mapping[str, object]
) -> RedactedTranscript:
    """A transcript model redacted, as the document the browser and webhooks read: `head`, then
    the model's, then what was redacted and where."""
    redacted, spans = redact_model(model, kinds)
    document = {
        **head,
        **transcript_document(redacted, build_turns(redacted)),
        "redacted": _kinds_note(kinds),
        "redactions": [span.to_json() for span in spans],
    }
    text = "\n".join(" ".join(word.text for word in channel.words) for channel in redacted.channels if channel.words)
    return RedactedTranscript(document, text, spans, redacted)


def redact_document(
    document: Mapping[str, Any] | None, text: str, kinds: Collection[Redact], head: Mapping[str, object]
) -> RedactedTranscript:
    """An engine's transcript redacted: by its timed words when it has them, else its text alone."""
    model = parse_transcript(document, ("Caller",), 1) if document else None
    if model is not None and any(channel.words for channel in model.channels):
        return redacted_model_document(model, kinds, head)
    hidden = redact_text(text, kinds)
    return RedactedTranscript({**head, "text": hidden, "redacted": _kinds_note(kinds), "redactions": []}, hidden, ())


def unredacted_key(prefix: str, extension: str) -> str:
    """`calls/<id>/transcript` → `calls/<id>/transcript.unredacted.json` (or .txt)."""
    return f"{prefix}.unredacted.{extension}"


def store_unredacted(store: BlobStore, prefix: str, document: Mapping[str, Any], text: str) -> None:
    """The words as heard, beside the redacted transcript at `prefix`, for a route that keeps them."""
    store.write(unredacted_key(prefix, "json"), json.dumps(document, indent=2).encode(), "application/json")
    store.write(unredacted_key(prefix, "txt"), (text + "\n").encode(), "text/plain; charset=utf-8")


def redacted_audio_key(audio_key: str) -> str:
    """`calls/<id>/message.mp3` → `calls/<id>/message.redacted.wav`."""
    return f"{audio_key.rsplit('.', 1)[0]}{REDACTED_SUFFIX}"


def store_redacted_audio(store: BlobStore, audio_key: str, spans: Sequence[RedactedSpan], *, keep: bool) -> str:
    """The recording's silenced copy, when any words were redacted; returns the key to link to and
    play. The original is deleted unless the route keeps it or the recorder still reads it."""
    if not spans:
        return audio_key
    blob = store.read(audio_key)
    if blob is None:
        log.warning("no recording to redact", extra={"key": audio_key})
        return audio_key
    try:
        copy = redacted_wav(blob.data, media_format_of(blob.data), spans)
    except TapedeckError as err:
        # The engine heard words in it, so this is rare; the recording is kept as it is, and said so.
        log.error("recording not redacted: undecodable", extra={"key": audio_key, "error": str(err)})
        return audio_key
    key = redacted_audio_key(audio_key)
    store.write(key, copy, "audio/wav")
    if not keep and not audio_key.rsplit("/", 1)[-1].startswith(_STREAMED):
        store.delete(audio_key)
    log.info("recording redacted", extra={"key": key, "spans": len(spans)})
    return key


def playable_key(store: BlobStore, audio_key: str) -> str:
    """The recording to play and link to: its redacted copy when there is one."""
    if audio_key.endswith(REDACTED_SUFFIX):
        return audio_key
    key = redacted_audio_key(audio_key)
    return key if any(info.key == key for info in store.list(key)) else audio_key
