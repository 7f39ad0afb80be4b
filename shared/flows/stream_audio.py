"""Streaming a call's PCM into storage part by part, and turning parts into a WAV."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.core.call_record import (
    CALL_DOCUMENT,
    CallRecord,
    Flow,
    RecordingState,
    StreamEntry,
    call_key,
    new_call,
    record_dtmf,
    record_recording,
    record_stream_start,
    stream_object_key,
)
from shared.core.ports import BlobInfo, BlobStore
from shared.core.wav import wav_header
from shared.flows.calls import iso, update_call
from shared.flows.documents import read_document

__all__ = ["PARTS_DIR", "RecordingSummary", "StreamRecording", "assemble_wav", "recover_recordings"]

log = logging.getLogger(__name__)

PARTS_DIR = "parts"
_HEADER_PART = "header.wav"


@dataclass(frozen=True)
class RecordingSummary:
    object_key: str
    sample_rate: int
    bytes: int
    duration: float


def _part_key(conversation_uuid: str, session: str, name: str) -> str:
    return call_key(conversation_uuid, f"{PARTS_DIR}/{session}/{name}")


def assemble_wav(
    store: BlobStore, conversation_uuid: str, session: str, object_key: str, sample_rate: int, parts: list[BlobInfo]
) -> int:
    """Compose a header and the PCM parts into `object_key`; return the audio bytes."""
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
    """One websocket stream's audio, flushed to storage in parts of `chunk_bytes`.

    Memory is bounded by one chunk whatever the call's length; a crash loses at most
    the chunk not yet flushed, and `recover_recordings` assembles what was.
    """

    store: BlobStore
    conversation_uuid: str
    session: str
    sample_rate: int
    chunk_bytes: int
    clock: Callable[[], float] = time.time
    object_key: str = field(default="", init=False)
    received: int = field(default=0, init=False)
    _buffer: bytearray = field(default_factory=bytearray, init=False, repr=False)
    _parts: int = field(default=0, init=False)
    _finished: bool = field(default=False, init=False)

    @property
    def _doc_key(self) -> str:
        return call_key(self.conversation_uuid, CALL_DOCUMENT)

    def start(self, uuid: str | None, from_: str | None, to: str | None, flow: Flow = Flow.STREAM) -> None:
        """Register the stream in call.json, with the call's flow unless one is noted already, and
        choose its object name."""

        def change(call: CallRecord) -> None:
            key, rate = stream_object_key(call, self.session), self.sample_rate
            entry = StreamEntry(self.session, key, RecordingState.STREAMING, rate, 0, 0.0, iso(self.clock()))
            noted = record_stream_start(call, entry=entry, uuid=uuid, from_=from_, to=to, flow=flow)
            self.object_key = noted.object_key

        self._update(change)

    def _update(self, change: Callable[[CallRecord], object]) -> None:
        update_call(self.store, self.conversation_uuid, change, self.clock())

    def add_audio(self, data: bytes) -> None:
        """Take one frame of any size; a trailing odd byte waits for the next frame."""
        self.received += len(data)
        self._buffer += data
        while len(self._buffer) >= self.chunk_bytes:
            self._flush(self.chunk_bytes)

    def _flush(self, size: int) -> None:
        part = bytes(self._buffer[:size])
        self.store.write(_part_key(self.conversation_uuid, self.session, f"{self._parts:06d}.pcm"), part)
        del self._buffer[:size]
        self._parts += 1

    @property
    def seconds(self) -> float:
        return (self.received // 2) / self.sample_rate

    def add_dtmf(self, digit: str, duration: int | None) -> None:
        at = self.seconds
        self._update(lambda call: record_dtmf(call, session=self.session, digit=digit, duration=duration, at=at))

    def finish(self, reason: str) -> RecordingSummary:
        """Flush what is buffered and assemble the WAV; safe to call more than once."""
        if self._finished:
            return self._summary(self.received - self.received % 2)
        self._finished = True
        whole = len(self._buffer) - len(self._buffer) % 2
        if len(self._buffer) % 2:
            log.warning("dropped a trailing half sample", extra={"call": self.conversation_uuid})
        if whole:
            self._flush(whole)
        self._buffer = bytearray()
        parts = self.store.list(_part_key(self.conversation_uuid, self.session, ""))
        pcm_parts = [p for p in parts if p.key.endswith(".pcm")]
        data_bytes = assemble_wav(
            self.store, self.conversation_uuid, self.session, self.object_key, self.sample_rate, pcm_parts
        )
        summary = self._summary(data_bytes)
        self._update(
            lambda call: record_recording(
                call,
                self.session,
                state=RecordingState.COMPLETE,
                size=summary.bytes,
                duration=summary.duration,
                ended_at=iso(self.clock()),
                end_reason=reason,
            )
        )
        _delete_parts(self.store, self.conversation_uuid, self.session)
        log.info(
            "recording finalized",
            extra={"call": self.conversation_uuid, "object": self.object_key, "bytes": data_bytes, "reason": reason},
        )
        return summary

    def _summary(self, data_bytes: int) -> RecordingSummary:
        return RecordingSummary(
            self.object_key, self.sample_rate, data_bytes, round(data_bytes / 2 / self.sample_rate, 3)
        )


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
            summary = _recover_session(store, conversation_uuid, session, infos, now)
            if summary:
                recovered.append(summary)
    return recovered


def _recover_session(
    store: BlobStore, conversation_uuid: str, session: str, infos: list[BlobInfo], now: float
) -> RecordingSummary | None:
    doc_key = call_key(conversation_uuid, CALL_DOCUMENT)
    call = read_document(store, doc_key, CallRecord) or new_call(conversation_uuid)
    entry = call.stream(session)
    if entry is None:
        log.error("parts without a recording entry", extra={"call": conversation_uuid, "session": session})
        return None
    pcm_parts = [i for i in infos if i.key.endswith(".pcm")]
    rate = int(entry.sample_rate)
    data_bytes = assemble_wav(store, conversation_uuid, session, entry.object_key, rate, pcm_parts)
    duration = round(data_bytes / 2 / rate, 3)
    last_audio = iso(max(i.updated for i in infos))

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
