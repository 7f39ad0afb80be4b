"""A streamed call's live transcript: final segments kept as they come, the transcript at the end.

While the call goes on, each final segment (and each gap the engine could not hear) is a line
of `calls/<id>/live.jsonl`, rewritten whole as segments arrive, since a Cloud Storage object
cannot be appended to; the words of the utterance under way are in `live.interim.json`,
rewritten at most every two seconds, for a page watching the call. When the stream ends, the
segments become `transcript.json`, `.txt` and `.vtt` beside the audio, in the same model as the
batch path's. A second stream of the same call keeps its own files, named after its session as
its audio is.

A route's `live_webhook` hears every segment, interim ones too, and every gap, through a
`LiveListener` handed each one in the order the engine gave them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from shared.core.call_record import call_key
from shared.core.live_events import live_model, live_transcript, redact_segment, segment_event, segment_json
from shared.core.ports import (
    BlobStore,
    LiveListener,
    LiveSegment,
    LiveTranscription,
    SpeechHints,
    StreamingTranscriber,
)
from shared.core.redaction import RedactedSpan
from shared.core.transcripts import NOTHING, Turn, build_turns, format_dialogue, format_webvtt
from shared.flows.redactions import RedactionPolicy, redacted_model_document, store_unredacted

__all__ = ["CLOSE_TIMEOUT", "LiveTranscript", "live_interim_key", "live_lines_key", "write_transcript"]

log = logging.getLogger(__name__)

# How long the end of a stream waits for the engine's last words.
CLOSE_TIMEOUT = 10.0
# How often the words of the utterance under way are stored, at most.
INTERIM_EVERY = 2.0


def _line(segment: LiveSegment) -> str:
    return json.dumps(segment_json(segment))


class LiveTranscript:
    """One stream's live transcript, kept in `store` under the call."""

    def __init__(
        self,
        store: BlobStore,
        conversation_uuid: str,
        audio_key: str,
        session: str = "",
        listener: LiveListener | None = None,
        offset: float = 0.0,
        *,
        policy: RedactionPolicy | None = None,
    ) -> None:
        self.store = store
        # What the route hides: in each segment as it is heard, and in the whole transcript at the end.
        self.policy = policy or RedactionPolicy()
        # Where the hidden words were said, once the stream is over, for the audio's redacted copy.
        self.spans: tuple[RedactedSpan, ...] = ()
        self.conversation_uuid = conversation_uuid
        self.session = session
        self.listener = listener
        # Where the session starts on the call's timeline, for the live webhook's events.
        self.offset = offset
        # transcript.json's document once the stream is over.
        self.document: dict[str, Any] | None = None
        self._sequence = 0
        # audio.wav → live.jsonl, transcript.*; audio-<session>.wav → live-<session>.jsonl, transcript-<session>.*
        suffix = _suffix(audio_key.rsplit("/", 1)[-1])
        self.live_key = live_lines_key(audio_key)
        # The words of the utterance under way, rewritten every few seconds; gone at the end.
        self.interim_key = live_interim_key(audio_key)
        self._interim_at = float("-inf")
        self.transcript_prefix = call_key(conversation_uuid, f"transcript{suffix}")
        self.finals: list[LiveSegment] = []
        # The final segments as heard, before redaction (only a route that redacts keeps them apart).
        self._heard: list[LiveSegment] = []
        self._lock = threading.Lock()
        self._stream: LiveTranscription | None = None

    def start(self, transcriber: StreamingTranscriber, rate: int, hints: SpeechHints | None = None) -> bool:
        """Open the engine's stream, told the route's `hints`; False when it is at its limit (the
        call is only recorded)."""
        self._stream = transcriber.open(rate, self.on_segment, hints)
        if self._stream is None:
            log.info("live transcription at its limit: recorded only", extra={"call": self.conversation_uuid})
        return self._stream is not None

    def feed(self, frame: bytes) -> None:
        if self._stream is not None:
            self._stream.feed(frame)

    def on_segment(self, segment: LiveSegment) -> None:
        """Hand every segment to the listener; keep a final segment or a gap. A route that redacts
        has each segment redacted on its own before anyone sees it."""
        if self.policy.kinds:
            with self._lock:
                if segment.final and (segment.words or segment.gap):
                    self._heard.append(segment)
            segment = redact_segment(segment, self.policy.kinds)
        if self.listener is not None and (segment.words or segment.gap):
            with self._lock:
                # Numbered and handed over under one lock: gaps are reported from the feeder's side.
                self._sequence += 1
                event = segment_event(self.conversation_uuid, self.session, self._sequence, segment, self.offset)
                self.listener.send(event)
        if not segment.final and segment.words:
            self._note_interim(segment)
        if not (segment.final and (segment.words or segment.gap)):
            return
        with self._lock:
            self.finals.append(segment)
            text = "".join(_line(s) + "\n" for s in self.finals)
            self.store.write(self.live_key, text.encode(), "application/x-ndjson")

    def _note_interim(self, segment: LiveSegment) -> None:
        """Keep the words of the utterance under way, for a page watching the call, at most every
        INTERIM_EVERY seconds (Cloud Storage takes about one update a second of one object)."""
        now = time.monotonic()
        with self._lock:
            if now - self._interim_at < INTERIM_EVERY:
                return
            self._interim_at = now
            document = {"start": segment.start, "end": segment.end, "text": segment.text}
            self.store.write(self.interim_key, json.dumps(document).encode(), "application/json")

    def finish(self, timeout: float = CLOSE_TIMEOUT) -> str | None:
        """Wait for the last words, write the transcript files, and return the words heard; None
        when the engine missed some of the audio."""
        if self._stream is None:
            return None
        stream, self._stream = self._stream, None
        stream.close(timeout)
        with self._lock:
            finals = sorted(self._heard if self.policy.kinds else self.finals, key=lambda s: s.start)
            self._interim_at = float("inf")
        self.store.delete(self.interim_key)
        document, turns = live_transcript(self.conversation_uuid, finals)
        words = [w.text for segment in finals for w in segment.words]
        if self.policy.kinds:
            document, turns, finals, words = self._redact(document, turns, finals)
        self.document = document
        write_transcript(self.store, self.transcript_prefix, document, turns)
        log.info("live transcript stored", extra={"call": self.conversation_uuid, "words": len(words)})
        return None if any(s.gap for s in finals) else " ".join(words)

    def _redact(
        self, document: dict[str, Any], turns: list[Turn], finals: list[LiveSegment]
    ) -> tuple[dict[str, Any], list[Turn], list[LiveSegment], list[str]]:
        """The whole transcript redacted, which finds what a pause split across segments too; the
        words as heard kept apart if the route keeps them, and live.jsonl rewritten to match. The
        words are the transcript's: a number split across segments is one marker, as it is there."""
        if self.policy.keep_unredacted:
            store_unredacted(self.store, self.transcript_prefix, document, format_dialogue(turns) or NOTHING)
        head = {"status": "completed", "conversation_uuid": self.conversation_uuid}
        redacted = redacted_model_document(live_model(finals), self.policy.kinds, head)
        self.spans = redacted.spans
        hidden = [redact_segment(segment, self.policy.kinds, redacted.spans) for segment in finals]
        text = "".join(_line(s) + "\n" for s in hidden)
        self.store.write(self.live_key, text.encode(), "application/x-ndjson")
        model = redacted.model or live_model(hidden)
        words = [word.text for channel in model.channels for word in channel.words]
        return redacted.document, build_turns(model), hidden, words


def write_transcript(store: BlobStore, prefix: str, document: dict[str, Any], turns: list[Turn]) -> None:
    """A transcript's files: `<prefix>.json` (the document), `.txt` (the dialogue) and `.vtt`."""
    store.write(f"{prefix}.json", json.dumps(document, indent=2).encode(), "application/json")
    text = format_dialogue(turns) or NOTHING
    store.write(f"{prefix}.txt", (text + "\n").encode(), "text/plain; charset=utf-8")
    store.write(f"{prefix}.vtt", format_webvtt(turns).encode(), "text/vtt; charset=utf-8")


def live_lines_key(audio_key: str) -> str:
    """Where a stream's final segments are kept, by its audio's key: audio.wav → live.jsonl,
    audio-<session>.wav → live-<session>.jsonl."""
    folder, name = audio_key.rsplit("/", 1)
    return f"{folder}/live{_suffix(name)}.jsonl"


def live_interim_key(audio_key: str) -> str:
    """Where the words of a stream's utterance under way are kept: live.interim.json, live-<session>.interim.json."""
    folder, name = audio_key.rsplit("/", 1)
    return f"{folder}/live{_suffix(name)}.interim.json"


def _suffix(audio_name: str) -> str:
    return audio_name.removeprefix("audio").removesuffix(".wav")
