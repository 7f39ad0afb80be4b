"""Streaming a call's PCM into storage part by part, and turning parts into a WAV.

A stream's storage work goes through a StorageLane: each step (registering the stream, writing a
part, noting key presses, assembling the WAV, marking it complete, deleting the parts) is queued
and run in order away from the stream, so a slow or failing store holds up only this recording's
steps, never the socket. Every step is idempotent by identity (a part by its number, the stream's
entry by its session, a key press by its session, second and digit), so a step tried again after
a failure, or a request replayed inside the store, changes nothing twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from shared.core.call_record import (
    CALL_DOCUMENT,
    CallRecord,
    Flow,
    Keypress,
    RecordingState,
    StreamEntry,
    call_key,
    new_call,
    record_dtmf,
    record_recording,
    record_stream_start,
    stream_object_key,
)
from shared.core.dtmf_mask import DtmfMask
from shared.core.ports import BlobInfo, BlobStore, StorageLane
from shared.core.wav import wav_header
from shared.flows.calls import iso, update_call
from shared.flows.documents import read_document
from shared.flows.turns import StorageTurns

__all__ = [
    "DOCUMENT_SPACING",
    "FINISH_SECONDS",
    "PARTS_DIR",
    "InlineLane",
    "RecordingSummary",
    "StreamRecording",
    "assemble_wav",
    "recover_recordings",
    "recover_session",
    "session_parts",
]

log = logging.getLogger(__name__)

PARTS_DIR = "parts"
_HEADER_PART = "header.wav"
# Cloud Storage takes about one write a second to the same object; a stream spaces its own
# writes to call.json that far apart, key presses that come meanwhile going in one write.
DOCUMENT_SPACING = 1.0
# How long a stream's end waits for storage to take the rest of its recording. Past it the parts
# already stored stay, call.json says `streaming`, and recover_recordings finishes the WAV.
FINISH_SECONDS = 60.0


@dataclass(frozen=True)
class RecordingSummary:
    object_key: str
    sample_rate: int
    bytes: int
    duration: float


class InlineLane:
    """A StorageLane that runs each step at once, in the caller: a failure is the caller's."""

    def run(self, step: Callable[[], object]) -> None:
        step()

    def carry(self, data: bytes, step: Callable[[bytes], object]) -> None:
        step(data)

    def drain(self, timeout: float) -> bool:
        return True

    def close(self, timeout: float) -> bool:
        return True


def _part_key(conversation_uuid: str, session: str, name: str) -> str:
    return call_key(conversation_uuid, f"{PARTS_DIR}/{session}/{name}")


def assemble_wav(
    store: BlobStore, conversation_uuid: str, session: str, object_key: str, sample_rate: int, parts: list[BlobInfo]
) -> int:
    """Compose a header and the PCM parts into `object_key`; return the audio bytes. Safe to run
    again: the header is written whole, and the same parts compose into the same object."""
    data_bytes = sum(p.size for p in parts)
    header_key = _part_key(conversation_uuid, session, _HEADER_PART)
    store.write(header_key, wav_header(sample_rate, data_bytes), "audio/wav")
    store.compose(object_key, [header_key, *(p.key for p in parts)], "audio/wav")
    return data_bytes


def _delete_parts(store: BlobStore, conversation_uuid: str, session: str) -> None:
    for info in store.list(_part_key(conversation_uuid, session, "")):
        store.delete(info.key)


@dataclass(eq=False)
class StreamRecording:
    """One websocket stream's audio, stored in parts of `chunk_bytes` through `lane`.

    Memory is one chunk being filled, plus what the lane holds (one part; the rest waits on local
    disk); a crash loses at most what storage has not taken yet, and `recover_recordings`
    assembles what it has. With the default InlineLane every step runs at once, in the caller.
    `turns` are taken around the storage work of the stream's start and end; `spacing` seconds at
    least separate the stream's writes of call.json, waited out by `pause`.
    """

    store: BlobStore
    conversation_uuid: str
    session: str
    sample_rate: int
    chunk_bytes: int
    clock: Callable[[], float] = time.time
    lane: StorageLane = field(default_factory=InlineLane, kw_only=True)
    turns: StorageTurns | None = field(default=None, kw_only=True)
    spacing: float = field(default=0.0, kw_only=True)
    pause: Callable[[float], None] = field(default=time.sleep, kw_only=True, repr=False)
    # With `mask_dtmf`: audio passes through it, and key presses are silenced before it is stored.
    mask: DtmfMask | None = field(default=None, kw_only=True, repr=False)
    # With `sensitive_dtmf`: key presses are kept with their times, not their digits.
    sensitive_keys: bool = field(default=False, kw_only=True)
    object_key: str = field(default="", init=False)
    # The call as this stream's registration left it.
    registered: CallRecord | None = field(default=None, init=False, repr=False)
    received: int = field(default=0, init=False)
    # The longest this stream waited for a storage turn.
    turn_wait: float = field(default=0.0, init=False)
    _buffer: bytearray = field(default_factory=bytearray, init=False, repr=False)
    _parts: list[BlobInfo] = field(default_factory=list, init=False, repr=False)
    _keys: list[Keypress] = field(default_factory=list, init=False, repr=False)
    _keys_queued: bool = field(default=False, init=False)
    _written_at: float = field(default=float("-inf"), init=False)
    _assembled_at: float | None = field(default=None, init=False)
    _summary: RecordingSummary | None = field(default=None, init=False)
    _finished: bool = field(default=False, init=False)

    def start(
        self,
        uuid: str | None,
        from_: str | None,
        to: str | None,
        flow: Flow = Flow.STREAM,
        *,
        leg: int | None = None,
        recorder: str | None = None,
    ) -> None:
        """Register the stream in call.json, with the call's flow unless one is noted already, and
        choose its object name (once the lane has run the step: see `wait_started`, and
        `registered` for the call as registered); `leg` is the call's websocket connect it came
        in on, `recorder` the process recording it."""
        started_at = iso(self.clock())

        def register(call: CallRecord) -> None:
            key = stream_object_key(call, self.session)
            entry = StreamEntry(self.session, key, RecordingState.STREAMING, self.sample_rate, 0, 0.0, started_at)
            entry.leg, entry.recorder = leg, recorder
            noted = record_stream_start(call, entry=entry, uuid=uuid, from_=from_, to=to, flow=flow)
            self.object_key = noted.object_key
            self.registered = call

        self.lane.run(lambda: self._update(register, turn=True))

    def wait_started(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the stream's registration; True once its object is named."""
        return self.lane.drain(timeout) and bool(self.object_key)

    @contextmanager
    def _turn(self) -> Iterator[None]:
        if self.turns is None:
            yield
            return
        with self.turns.turn() as waited:
            self.turn_wait = max(self.turn_wait, waited)
            yield

    def _space(self) -> None:
        """Wait until `spacing` seconds have passed since this stream's last write of call.json."""
        wait = self._written_at + self.spacing - time.monotonic()
        if wait > 0:
            self.pause(wait)

    def _update(self, change: Callable[[CallRecord], object], turn: bool = False) -> None:
        """Apply `change` to call.json, `spacing` seconds at least after this stream's last write."""
        self._space()
        try:
            if turn:
                with self._turn():
                    update_call(self.store, self.conversation_uuid, change, self.clock())
            else:
                update_call(self.store, self.conversation_uuid, change, self.clock())
        finally:
            self._written_at = time.monotonic()

    def change_call(self, change: Callable[[CallRecord], object]) -> None:
        """Apply `change` to call.json now, in the caller, spaced from this stream's other writes."""
        self._update(change)

    def add_audio(self, data: bytes) -> None:
        """Take one frame of any size; a trailing odd byte waits for the next frame."""
        self.received += len(data)
        self._buffer += data if self.mask is None else self.mask.feed(data)
        while len(self._buffer) >= self.chunk_bytes:
            self._queue_part(bytes(self._buffer[: self.chunk_bytes]))
            del self._buffer[: self.chunk_bytes]

    def flush(self) -> None:
        """Hand what is buffered (whole samples) to storage now, so that nothing is lost if the
        process dies before `finish`."""
        if self.mask is not None and not self._finished:
            # What the mask holds back goes too, silenced for the presses it knows of.
            self._buffer += self.mask.flush()
        whole = len(self._buffer) - len(self._buffer) % 2
        if whole and not self._finished:
            self._queue_part(bytes(self._buffer[:whole]))
            del self._buffer[:whole]

    def _queue_part(self, data: bytes) -> None:
        key = _part_key(self.conversation_uuid, self.session, f"{len(self._parts):06d}.pcm")
        self.lane.carry(data, lambda part: self.store.write(key, part))
        self._parts.append(BlobInfo(key, len(data), 0.0))

    @property
    def seconds(self) -> float:
        return (self.received // 2) / self.sample_rate

    def add_dtmf(self, digit: str, duration: int | None) -> None:
        """Note a key press; presses that come while call.json waits its turn go in one write."""
        at = round(self.seconds, 3)
        if self.mask is not None:
            self.mask.key(at, duration)
        self._keys.append(Keypress("" if self.sensitive_keys else digit, duration, at, self.session))
        if not self._keys_queued:
            self._keys_queued = True
            self.lane.run(self._store_keys)

    def _note_keys(self, call: CallRecord, keys: list[Keypress]) -> None:
        for key in keys:
            record_dtmf(call, session=key.session, digit=key.digit, duration=key.duration, at=key.at)

    def _store_keys(self) -> None:
        if self._finished:
            # The end's own write carries them: the WAV's assembly need not wait for this one.
            return
        # Spaced first, so that the presses that come meanwhile go in this write.
        self._space()
        self._keys_queued = False
        keys, self._keys = self._keys, []
        try:
            self._update(lambda call: self._note_keys(call, keys))
        except Exception:
            # Tried again by the lane, or by the end's own write: the presses are not lost.
            self._keys[:0] = keys
            raise

    def finish(
        self, reason: str, closed_at: str | None = None, timeout: float = FINISH_SECONDS
    ) -> RecordingSummary | None:
        """Store what is buffered, assemble the WAV, mark the recording complete and delete its
        parts, waiting up to `timeout` seconds for storage to take them; safe to call more than once.
        `closed_at` is when the stream's audio ended, if the caller knows it better than now.

        None when storage did not take it all in time: what it took stays (the parts, call.json
        saying `streaming`) for `recover_recordings`, and nothing is marked that did not happen."""
        if self._finished:
            return self._summary
        self._finished = True
        hung_up = time.monotonic()
        if self.mask is not None:
            self._buffer += self.mask.flush()
        masked = [span.to_json() for span in self.mask.masked] if self.mask is not None else None
        whole = len(self._buffer) - len(self._buffer) % 2
        if len(self._buffer) % 2:
            log.warning("dropped a trailing half sample", extra={"call": self.conversation_uuid})
        if whole:
            # Held in memory whatever the lane's spill holds: no more audio comes, and this is at
            # most the chunk being filled and one its lane refused.
            key = _part_key(self.conversation_uuid, self.session, f"{len(self._parts):06d}.pcm")
            last = bytes(self._buffer[:whole])
            self.lane.run(lambda: self.store.write(key, last))
            self._parts.append(BlobInfo(key, len(last), 0.0))
        self._buffer = bytearray()
        parts = list(self._parts)
        data_bytes = sum(p.size for p in parts)
        duration = round(data_bytes / 2 / self.sample_rate, 3)
        ended_at = iso(self.clock())

        def complete(call: CallRecord) -> None:
            self._note_keys(call, self._keys)
            record_recording(
                call,
                self.session,
                state=RecordingState.COMPLETE,
                size=data_bytes,
                duration=duration,
                ended_at=ended_at,
                end_reason=reason,
                closed_at=closed_at,
                masked=masked,
            )

        self.lane.run(lambda: self._assemble(parts))
        self.lane.run(lambda: self._update(complete, turn=True))
        self.lane.run(self._delete_parts)
        if not self.lane.close(timeout):
            log.error(
                "recording left for recovery: storage did not take it in time",
                extra={"call": self.conversation_uuid, "session": self.session, "bytes": data_bytes, "reason": reason},
            )
            return None
        self._summary = RecordingSummary(self.object_key, self.sample_rate, data_bytes, duration)
        wav_seconds = round((self._assembled_at or hung_up) - hung_up, 3)
        log.info(
            "recording finalized",
            extra={
                "call": self.conversation_uuid,
                "object": self.object_key,
                "bytes": data_bytes,
                "reason": reason,
                "wav_seconds": wav_seconds,
                "turn_wait": round(self.turn_wait, 3),
            },
        )
        return self._summary

    def _assemble(self, parts: list[BlobInfo]) -> None:
        with self._turn():
            assemble_wav(self.store, self.conversation_uuid, self.session, self.object_key, self.sample_rate, parts)
        self._assembled_at = time.monotonic()

    def _delete_parts(self) -> None:
        with self._turn():
            _delete_parts(self.store, self.conversation_uuid, self.session)


def recover_recordings(store: BlobStore, now: float, min_age: float) -> list[RecordingSummary]:
    """Assemble the parts left by streams that died without finishing.

    A stream counts as abandoned once its newest part is `min_age` seconds old.
    """
    sessions: dict[tuple[str, str], list[BlobInfo]] = {}
    for info in store.list("calls/"):
        segments = info.key.split("/")
        if len(segments) == 5 and segments[2] == PARTS_DIR:
            sessions.setdefault((segments[1], segments[3]), []).append(info)
    recovered = []
    for (conversation_uuid, session), infos in sorted(sessions.items()):
        if now - max(i.updated for i in infos) >= min_age:
            summary = recover_session(store, conversation_uuid, session, infos, now)
            if summary:
                recovered.append(summary)
    return recovered


def session_parts(store: BlobStore, conversation_uuid: str, session: str) -> list[BlobInfo]:
    """What one stream has written to storage and not yet assembled."""
    return store.list(_part_key(conversation_uuid, session, ""))


def recover_session(
    store: BlobStore, conversation_uuid: str, session: str, infos: list[BlobInfo], now: float
) -> RecordingSummary | None:
    """Assemble one dead stream's parts (`infos`, none when it wrote none) into its WAV and mark it
    `recovered`; None when the call has no entry for the stream."""
    doc_key = call_key(conversation_uuid, CALL_DOCUMENT)
    call = read_document(store, doc_key, CallRecord) or new_call(conversation_uuid)
    entry = call.stream(session)
    if entry is None:
        log.error("parts without a recording entry", extra={"call": conversation_uuid, "session": session})
        return None
    if entry.state != RecordingState.STREAMING:
        # Assembled and marked already: only the parts' deletion was left undone, and assembling
        # again from what is left of them could shorten a WAV that is whole.
        _delete_parts(store, conversation_uuid, session)
        log.info("leftover parts deleted", extra={"call": conversation_uuid, "session": session})
        return None
    pcm_parts = [i for i in infos if i.key.endswith(".pcm")]
    rate = int(entry.sample_rate)
    data_bytes = assemble_wav(store, conversation_uuid, session, entry.object_key, rate, pcm_parts)
    duration = round(data_bytes / 2 / rate, 3)
    last_audio = iso(max((i.updated for i in infos), default=now))

    def change(doc: CallRecord) -> None:
        record_recording(
            doc,
            session,
            state=RecordingState.RECOVERED,
            size=data_bytes,
            duration=duration,
            ended_at=entry.ended_at or last_audio,
            end_reason=entry.end_reason or "recorder stopped",
            recovered_at=iso(now),
        )

    update_call(store, conversation_uuid, change, now)
    _delete_parts(store, conversation_uuid, session)
    log.info("recording recovered", extra={"call": conversation_uuid, "object": entry.object_key, "bytes": data_bytes})
    return RecordingSummary(entry.object_key, rate, data_bytes, duration)
