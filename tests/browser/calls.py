"""Calls made for the recordings browser's tests: stored through tapedeck's own flows, as the
recorder and the transcription store them."""

from __future__ import annotations

import json

from shared.core.call_record import record_status
from shared.core.ports import BlobStore
from shared.core.transcripts import build_turns, parse_transcript, transcript_document
from shared.core.wav import parse_wav
from shared.flows.calls import note_transcript, update_call
from shared.flows.stream_audio import StreamRecording
from tests.testbed import DATA, OUTAGE_WORDS

WORDS = OUTAGE_WORDS
KEY_AT = 5.0


def recorded_stream(store: BlobStore, conversation_uuid: str, now: float, caller: str = "447700900123") -> float:
    """A streamed call of voicemail_outage.wav with `#` pressed at 5 s and its transcript; returns
    the recording's length in seconds."""
    wav = parse_wav((DATA / "voicemail_outage.wav").read_bytes())

    def answered(call):  # type: ignore[no-untyped-def]
        record_status(
            call,
            status="answered",
            timestamp="2026-11-30T09:00:00.000Z",
            uuid="leg-1",
            from_=caller,
            to="447700900000",
            direction="inbound",
            details={},
        )

    update_call(store, conversation_uuid, answered, now)
    recording = StreamRecording(store, conversation_uuid, "a1b2c3d4e5f6", wav.sample_rate, 256 * 1024, lambda: now)
    recording.start("leg-1", caller, "447700900000")
    split = int(KEY_AT * wav.sample_rate) * 2
    recording.add_audio(wav.pcm[:split])
    recording.add_dtmf("#", 200)
    recording.add_audio(wav.pcm[split:])
    recording.finish("hangup")
    words = [{"word": w, "start": s, "end": e, "confidence": 0.9} for w, s, e in WORDS]
    model = parse_transcript({"engine": "pocketsphinx", "channels": [{"channel": 0, "words": words}]}, ("Caller",), 1)
    turns = build_turns(model)
    document = {"status": "completed", "conversation_uuid": conversation_uuid, **transcript_document(model, turns)}
    store.write(f"calls/{conversation_uuid}/transcript.json", json.dumps(document).encode(), "application/json")
    note_transcript(store, conversation_uuid, document["dialogue"], now + 1)
    return wav.duration
