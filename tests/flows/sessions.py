"""A call recorded in several sessions, stored through tapedeck's own flows as the recorder stores
it: the fixture's speech cut into sessions with a short stretch lost between each, the recorder's
note on each close, a key pressed in one, each session's live words, and the call's events; and,
for a route that redacts cards, a card read out in the second session and its silenced copy."""

from __future__ import annotations

import json
from dataclasses import dataclass

from shared.config.settings import Settings, StreamSettings
from shared.core.call_record import CallRecord, SessionClose, note_closing, record_status
from shared.core.live_events import segment_json
from shared.core.ports import BlobStore, LiveSegment
from shared.core.redaction import Redact
from shared.core.transcripts import Word
from shared.core.wav import parse_wav
from shared.flows.calls import iso, read_call, update_call
from shared.flows.live_transcripts import LiveTranscript, live_lines_key
from shared.flows.redactions import RedactionPolicy, store_redacted_audio
from shared.flows.stream_audio import StreamRecording
from tests.fakes import ScriptedLiveTranscriber
from tests.testbed import DATA, OUTAGE_WORDS, TOKEN_SECRET

__all__ = [
    "CALLER",
    "CARD",
    "CARD_WORDS",
    "FIXTURE",
    "LOST",
    "SESSIONS",
    "WORDS",
    "Recorded",
    "record_in_sessions",
    "redact_second_session",
    "settings",
]

FIXTURE = parse_wav((DATA / "voicemail_outage.wav").read_bytes())
CALLER, CALLED = "447700900123", "447700900000"
# Where the fixture is cut into sessions (seconds of its audio), and what is lost at each cut.
SESSIONS = ((0.0, 4.0), (4.1, 7.0), (7.06, FIXTURE.duration))
LOST = (0.1, 0.06)
# Words of the fixture with times close to its audio's; the ones a cut falls in are lost, so
# "database is down" is heard after the first cut here.
WORDS = [*OUTAGE_WORDS[:8], ("database", 4.2, 4.6), ("is", 4.6, 4.8), ("down", 4.8, 4.9), *OUTAGE_WORDS[11:]]
KEY = ("5", 5.0)
CARD = "4539148803436467"
_SPOKEN = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# A card read out in the second session, a digit every 0.15 s from 0.2 s into it: 4.3 s to 6.67 s
# into the call, over its speech.
CARD_WORDS = tuple(
    Word(_SPOKEN[int(digit)], round(0.2 + i * 0.15, 2), round(0.32 + i * 0.15, 2), 0.9) for i, digit in enumerate(CARD)
)


def settings(public_url: str = "https://fn.example.test") -> Settings:
    return Settings(public_url=public_url, stream=StreamSettings(token_secret=TOKEN_SECRET))


@dataclass(frozen=True)
class Recorded:
    """What a test needs to check the call: its sessions' names and their slices of the fixture."""

    conversation_uuid: str
    sessions: list[str]
    pcm: list[bytes]


def _live_lines(store: BlobStore, audio_key: str, start: float, end: float) -> None:
    words = tuple(Word(w, s - start, e - start, 0.9) for w, s, e in WORDS if start <= s and e <= end)
    segment = LiveSegment(True, " ".join(w.text for w in words), words[0].start, words[-1].end, words)
    store.write(live_lines_key(audio_key), (json.dumps(segment_json(segment)) + "\n").encode())


@dataclass
class _Clock:
    """The recorder's clock for one session, moved on by the test."""

    now: float

    def __call__(self) -> float:
        return self.now


def record_in_sessions(store: BlobStore, conversation_uuid: str, t0: float, *, hang_up: bool = True) -> Recorded:
    """The fixture's call, recorded in SESSIONS, the socket rotated after each but the last; with
    `hang_up`, the call's `completed` event."""
    rate = FIXTURE.sample_rate

    def answered(call: CallRecord) -> None:
        record_status(call, status="answered", timestamp=iso(t0), uuid="leg-1", from_=CALLER, to=CALLED)

    update_call(store, conversation_uuid, answered, t0)
    names, slices = [], []
    for index, (start, end) in enumerate(SESSIONS):
        now = t0 + start
        pcm = FIXTURE.pcm[round(start * rate) * 2 : round(end * rate) * 2]
        session = f"{index + 1:02d}a1b2c3d4e5"
        clock = _Clock(now)
        recording = StreamRecording(store, conversation_uuid, session, rate, 64 * 1024, clock)
        recording.start("leg-1", CALLER, CALLED, leg=index + 1, recorder="test/1")
        key_at = round((KEY[1] - start) * rate) * 2
        if 0 < key_at < len(pcm):
            recording.add_audio(pcm[:key_at])
            recording.add_dtmf(KEY[0], 120)
            recording.add_audio(pcm[key_at:])
        else:
            recording.add_audio(pcm)
        closed = iso(t0 + end)
        if index + 1 < len(SESSIONS):

            def note(call: CallRecord, session: str = session, size: int = len(pcm), closed: str = closed) -> None:
                note_closing(
                    call,
                    session,
                    closing=SessionClose.RECONNECT,
                    closed_at=closed,
                    reason="rotation",
                    size=size,
                    duration=size / 2 / rate,
                )

            update_call(store, conversation_uuid, note, now)
        _live_lines(store, recording.object_key, start, end)
        # Its storage work ends a moment after its audio.
        clock.now = t0 + end + 0.02
        recording.finish("rotation" if index + 1 < len(SESSIONS) else "hangup", closed_at=closed)
        names.append(session)
        slices.append(pcm)
    if hang_up:

        def completed(call: CallRecord) -> None:
            record_status(call, status="completed", timestamp=iso(t0 + FIXTURE.duration + 0.1), uuid="leg-1")

        update_call(store, conversation_uuid, completed, t0)
    return Recorded(conversation_uuid, names, slices)


def redact_second_session(store: BlobStore, conversation_uuid: str) -> None:
    """The second session heard live by a route that redacts cards, as CARD_WORDS, and its copy
    silenced over them: what the recorder stores at the session's close."""
    call = read_call(store, conversation_uuid)
    assert call is not None
    entry = call.recordings[1]
    heard = LiveSegment(True, " ".join(w.text for w in CARD_WORDS), CARD_WORDS[0].start, CARD_WORDS[-1].end, CARD_WORDS)
    live = LiveTranscript(
        store, conversation_uuid, entry.object_key, entry.session, policy=RedactionPolicy((Redact.CARD,))
    )
    assert live.start(ScriptedLiveTranscriber([heard]), FIXTURE.sample_rate)
    audio = store.read(entry.object_key)
    assert audio is not None
    live.feed(parse_wav(audio.data).pcm)
    live.finish()
    assert live.spans
    store_redacted_audio(store, entry.object_key, live.spans, keep=True)
