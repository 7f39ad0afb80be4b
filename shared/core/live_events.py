"""What a route's `live_webhook` receives, as plain data. Pure.

While a stream goes on, each segment of its live transcript is one `segment` event (interim
ones may still change, a final one will not) and each stretch the engine could not hear is one
`gap` event, numbered by `sequence` in the order they happened. Once the stream is over, one
`transcript` event carries the whole transcript, the same document as the call's
`transcript.json`.

Times are seconds from the start of the stream's session; `offset` is where that session starts
on the call's timeline (0 for the first; a call whose socket was reconnected goes on in later
sessions), so `offset + start` places a word in the call.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

from shared.core.ports import LiveSegment
from shared.core.redaction import Redact, RedactedSpan, mask_words, redact_words
from shared.core.transcripts import TranscriptModel, Turn, Word, build_turns, parse_transcript, transcript_document

__all__ = [
    "live_model",
    "live_transcript",
    "redact_segment",
    "segment_event",
    "segment_from_json",
    "segment_json",
    "transcript_event",
]

_LABELS = ("Caller",)


def segment_json(segment: LiveSegment) -> dict[str, object]:
    """A segment's times and words, or a gap's stretch: a line of `live.jsonl` as it is stored."""
    if segment.gap:
        return {"gap": True, "start": segment.start, "end": segment.end}
    words = [word.to_json() for word in segment.words]
    return {"start": segment.start, "end": segment.end, "text": segment.text, "words": words}


def segment_from_json(doc: Mapping[str, Any]) -> LiveSegment:
    """A line of `live.jsonl` back as the segment it was; KeyError, TypeError or ValueError if it is not one."""
    start, end = float(doc["start"]), float(doc["end"])
    if doc.get("gap"):
        return LiveSegment(True, "", start, end, gap=True)
    words = tuple(
        Word(str(w["word"]), float(w["start"]), float(w["end"]), float(w["confidence"])) for w in doc["words"]
    )
    return LiveSegment(True, str(doc["text"]), start, end, words)


def live_model(finals: Sequence[LiveSegment], notes: Sequence[str] = ()) -> TranscriptModel:
    """A stream's final segments (and gaps) as one transcript model, engine `live`, each stretch
    not heard noted."""
    ordered = sorted(finals, key=lambda s: s.start)
    words = [word.to_json() for segment in ordered for word in segment.words]
    model = parse_transcript({"engine": "pocketsphinx", "channels": [{"channel": 0, "words": words}]}, _LABELS, 1)
    gaps = tuple(f"not heard live: {s.start:.2f}-{s.end:.2f} s" for s in ordered if s.gap)
    return replace(model, engine="live", notes=model.notes + gaps + tuple(notes))


def live_transcript(
    conversation_uuid: str, finals: Sequence[LiveSegment], notes: Sequence[str] = ()
) -> tuple[dict[str, Any], list[Turn]]:
    """transcript.json's document from a stream's final segments (and gaps), in time order, with
    its turns: the batch path's model, its engine `live`, each stretch not heard noted."""
    model = live_model(finals, notes)
    turns = build_turns(model)
    document = {"status": "completed", "conversation_uuid": conversation_uuid, **transcript_document(model, turns)}
    return document, turns


def redact_segment(segment: LiveSegment, kinds: Collection[Redact], spans: Sequence[RedactedSpan] = ()) -> LiveSegment:
    """A segment with what `kinds` name hidden, found in its own words, and any word said within
    `spans` (found in the whole transcript) hidden too."""
    if not segment.words:
        return segment
    words = mask_words(redact_words(segment.words, kinds)[0], spans)
    return replace(segment, words=words, text=" ".join(word.text for word in words))


def segment_event(
    conversation_uuid: str, session: str, sequence: int, segment: LiveSegment, offset: float = 0.0
) -> dict[str, object]:
    """One segment or gap as the live webhook receives it."""
    head: dict[str, object] = {
        "event": "gap" if segment.gap else "segment",
        "conversation_uuid": conversation_uuid,
        "session": session,
        "offset": offset,
        "sequence": sequence,
    }
    body = segment_json(segment)
    if not segment.gap:
        head["final"] = segment.final
    body.pop("gap", None)
    return head | body


def transcript_event(
    conversation_uuid: str,
    session: str,
    caller: str,
    called: str,
    transcript: Mapping[str, object] | None,
    offset: float = 0.0,
) -> dict[str, object]:
    """The whole transcript once the stream is over; `transcript` is None when the stream was
    only recorded (live transcription was at its limit, or could not start)."""
    return {
        "event": "transcript",
        "conversation_uuid": conversation_uuid,
        "session": session,
        "offset": offset,
        "caller": caller,
        "called": called,
        "status": "completed" if transcript is not None else "not transcribed",
        "transcript": dict(transcript) if transcript is not None else None,
    }
