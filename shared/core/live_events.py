"""What a route's `live_webhook` receives, as plain data. Pure.

While a stream goes on, each segment of its live transcript is one `segment` event (interim
ones may still change, a final one will not) and each stretch the engine could not hear is one
`gap` event, numbered by `sequence` in the order they happened. Once the stream is over, one
`transcript` event carries the whole transcript, the same document as the call's
`transcript.json`.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.core.ports import LiveSegment

__all__ = ["segment_event", "segment_json", "transcript_event"]


def segment_json(segment: LiveSegment) -> dict[str, object]:
    """A segment's times and words, or a gap's stretch: a line of `live.jsonl` as it is stored."""
    if segment.gap:
        return {"gap": True, "start": segment.start, "end": segment.end}
    words = [word.to_json() for word in segment.words]
    return {"start": segment.start, "end": segment.end, "text": segment.text, "words": words}


def segment_event(conversation_uuid: str, session: str, sequence: int, segment: LiveSegment) -> dict[str, object]:
    """One segment or gap as the live webhook receives it."""
    head: dict[str, object] = {
        "event": "gap" if segment.gap else "segment",
        "conversation_uuid": conversation_uuid,
        "session": session,
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
) -> dict[str, object]:
    """The whole transcript once the stream is over; `transcript` is None when the stream was
    only recorded (live transcription was at its limit, or could not start)."""
    return {
        "event": "transcript",
        "conversation_uuid": conversation_uuid,
        "session": session,
        "caller": caller,
        "called": called,
        "status": "completed" if transcript is not None else "not transcribed",
        "transcript": dict(transcript) if transcript is not None else None,
    }
