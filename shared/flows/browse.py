"""What the recordings browser shows and does: one call's recordings, transcripts, keys, events and
deliveries; its waveform peaks, computed once; its deletion; the PIN prompt transactions."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from shared.core.call_record import CALL_DOCUMENT, CallEvent, CallRecord, RecordingState, call_key
from shared.core.deliveries import DeliveryRecord
from shared.core.errors import BadRequest, NotFound
from shared.core.job_record import Job
from shared.core.peaks import waveform_peaks
from shared.core.ports import BlobStore
from shared.core.prompt_transaction import PromptTransaction
from shared.core.reconnect_record import SilentGap
from shared.core.transcripts import build_turns, parse_transcript
from shared.flows.calls import iso, read_call, update_call
from shared.flows.documents import document_of, read_document
from shared.flows.jobs import read_job
from shared.flows.live_transcripts import live_interim_key, live_lines_key
from shared.flows.stitching import STITCHED

__all__ = [
    "CallView",
    "PromptView",
    "Recording",
    "call_view",
    "delete_call",
    "list_prompts",
    "peaks_of",
    "recording_of",
]

log = logging.getLogger(__name__)

_PROMPTS = "prompts/"


@dataclass(frozen=True)
class Turn:
    label: str
    channel: int
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Mark:
    """A key pressed, `at` seconds into a recording."""

    digit: str
    at: float


@dataclass(frozen=True)
class Recording:
    """One stored recording of the call, with its transcript and key presses; a call recorded in
    several sessions is one recording of them all, with the `gaps` between them, once stitched."""

    key: str
    name: str
    media_format: str
    state: str
    duration: float | None
    turns: list[Turn] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    gaps: list[SilentGap] = field(default_factory=list)
    sessions: int = 1


@dataclass(frozen=True)
class Delivery:
    name: str
    record: DeliveryRecord


@dataclass(frozen=True)
class CallView:
    call: CallRecord
    recordings: list[Recording]
    events: list[CallEvent]
    deliveries: list[Delivery]
    jobs: list[Job]
    # Still streaming: the page refreshes itself.
    live: bool
    # The words heard so far on a stream still going on.
    live_text: str


def _transcript_key(audio_key: str) -> str:
    # audio.wav → transcript.json; audio-<s>.wav → transcript-<s>.json; message.wav, conversation.mp3 → transcript.json;
    # the stitched recording.wav → recording.transcript.json
    folder, name = audio_key.rsplit("/", 1)
    if name == f"{STITCHED}.wav":
        return f"{folder}/{STITCHED}.transcript.json"
    suffix = name.rsplit(".", 1)[0].removeprefix("audio") if name.startswith("audio") else ""
    return f"{folder}/transcript{suffix}.json"


def _turns(document: dict[str, Any] | None, labels: list[str]) -> tuple[list[Turn], list[str]]:
    """Dialogue turns from a stored transcript in any of the shapes tapedeck writes."""
    if document is None:
        return [], []
    notes = [str(n) for n in document.get("notes", ()) if isinstance(n, str)]
    turns = document.get("turns")
    if isinstance(turns, list):
        return [
            Turn(str(t["label"]), int(t["channel"]), float(t["start"]), float(t["end"]), str(t["text"])) for t in turns
        ], notes
    try:
        model = parse_transcript(document, tuple(labels) or ("Caller",), max(1, len(labels)))
    except (BadRequest, KeyError, TypeError, ValueError):
        text = document.get("text")
        return ([Turn("Caller", 0, 0.0, 0.0, text)] if isinstance(text, str) and text.strip() else []), notes
    return [Turn(t.label, t.channel, t.start, t.end, t.text) for t in build_turns(model)], notes + list(model.notes)


def _stitched(store: BlobStore, call: CallRecord) -> Recording | None:
    """The call's sessions as one recording, once stitched (and not streaming again since)."""
    stitched = call.stitched
    if stitched is None or any(entry.session not in stitched.offsets for entry in call.recordings):
        return None
    turns, notes = _turns(document_of(store.read(_transcript_key(stitched.object_key))), ["Caller"])
    offsets = stitched.offsets
    marks = [Mark(k.digit, round(offsets[k.session] + k.at, 3)) for k in call.dtmf if k.session in offsets]
    name = stitched.object_key.rsplit("/", 1)[-1]
    return Recording(
        stitched.object_key,
        name,
        "wav",
        RecordingState.COMPLETE,
        stitched.duration,
        turns,
        sorted(marks, key=lambda m: m.at),
        notes,
        list(stitched.gaps),
        len(offsets),
    )


def _recordings(store: BlobStore, call: CallRecord, jobs: list[Job]) -> list[Recording]:
    found = []
    labels = next((job.labels for job in jobs if job.labels), None) or ["Caller", "Agent"]
    stitched = _stitched(store, call)
    if stitched is not None:
        found.append(stitched)
    for entry in call.recordings if stitched is None else ():
        if not entry.object_key:
            continue  # a failed recording whose stream never connected: nothing to play
        turns, notes = _turns(document_of(store.read(_transcript_key(entry.object_key))), ["Caller"])
        marks = [Mark(k.digit, k.at) for k in call.dtmf if k.session == entry.session]
        found.append(
            Recording(
                entry.object_key,
                entry.object_key.rsplit("/", 1)[-1],
                "wav",
                entry.state,
                entry.duration,
                turns,
                marks,
                notes,
            )
        )
    for stored, labels_of in ((call.voicemail, ["Caller"]), (call.conversation, labels)):
        if stored is None:
            continue
        turns, notes = _turns(document_of(store.read(_transcript_key(stored.object_key))), labels_of)
        media_format = stored.object_key.rsplit(".", 1)[-1]
        found.append(
            Recording(
                stored.object_key,
                stored.object_key.rsplit("/", 1)[-1],
                media_format,
                "complete",
                None,
                turns,
                [],
                notes,
            )
        )
    return found


def _deliveries(store: BlobStore, conversation_uuid: str) -> list[Delivery]:
    found = []
    for info in store.list(call_key(conversation_uuid, "deliveries/")):
        record = read_document(store, info.key, DeliveryRecord)
        if record is not None:
            found.append(Delivery(info.key.rsplit("/", 1)[-1].removesuffix(".json"), record))
    return found


def _live_text(store: BlobStore, call: CallRecord) -> str:
    """The words heard so far on the call's streams, session after session: their final segments,
    then the utterance under way."""
    texts = []
    for entry in call.recordings:
        blob = store.read(live_lines_key(entry.object_key))
        for line in blob.data.decode(errors="replace").splitlines() if blob is not None else ():
            try:
                segment = json.loads(line)
            except ValueError:
                continue
            if isinstance(segment, dict) and isinstance(segment.get("text"), str):
                texts.append(segment["text"])
        if entry.state == RecordingState.STREAMING:
            interim = document_of(store.read(live_interim_key(entry.object_key)))
            if interim is not None and isinstance(interim.get("text"), str):
                texts.append(interim["text"])
    return " ".join(texts)


def call_view(store: BlobStore, conversation_uuid: str) -> CallView:
    """Everything the call's page shows; NotFound for a call never stored."""
    call = read_call(store, conversation_uuid)
    if call is None:
        raise NotFound("no such call")
    names = [stored.job for stored in (call.voicemail, call.conversation) if stored is not None]
    names += [f"tapedeck-vm-live-{entry.session}" for entry in call.recordings]
    jobs = [job for job in (read_job(store, name) for name in names) if job is not None]
    live = any(entry.state == "streaming" for entry in call.recordings)
    return CallView(
        call,
        [] if call.deleted else _recordings(store, call, jobs),
        list(call.events),
        _deliveries(store, conversation_uuid),
        jobs,
        live,
        _live_text(store, call) if live else "",
    )


def recording_of(store: BlobStore, conversation_uuid: str, name: str) -> Recording:
    """One of the call's recordings by its file name; NotFound for anything else."""
    for recording in call_view(store, conversation_uuid).recordings:
        if recording.name == name:
            return recording
    raise NotFound("no such recording")


def peaks_of(store: BlobStore, recording: Recording) -> dict[str, object]:
    """The recording's waveform peaks, read from beside it, or computed once and stored there."""
    key = f"{recording.key.rsplit('.', 1)[0]}.peaks.json"
    stored = document_of(store.read(key))
    if stored is not None:
        return stored
    audio = store.read(recording.key)
    if audio is None:
        raise NotFound("the audio is no longer stored")
    peaks = waveform_peaks(audio.data, recording.media_format)
    if recording.state != "streaming":
        store.write(key, json.dumps(peaks, separators=(",", ":")).encode(), "application/json")
    return peaks


def delete_call(store: BlobStore, conversation_uuid: str, by: str, now: float) -> int:
    """Delete the call's audio, transcripts and everything else stored under it but its record,
    which keeps who deleted it and when; its links stop working. Returns the objects deleted."""
    call = read_call(store, conversation_uuid)
    if call is None:
        raise NotFound("no such call")
    deleted = 0
    for info in store.list(call_key(conversation_uuid, "")):
        if info.key != call_key(conversation_uuid, CALL_DOCUMENT):
            store.delete(info.key)
            deleted += 1

    def mark(record: CallRecord) -> None:
        record.deleted = record.deleted or {"at": iso(now), "by": by}
        record.first_words = None

    update_call(store, conversation_uuid, mark, now)
    log.info("call deleted", extra={"call": conversation_uuid, "objects": deleted, "by": by})
    return deleted


@dataclass(frozen=True)
class PromptView:
    """A PIN prompt transaction as the browser shows it: never its PIN, not even hashed."""

    tid: str
    to: str
    status: str
    detail: str
    attempts: int
    max_attempts: int
    callback_state: str
    callback_attempts: int
    callback_status: int | None
    callback_error: str | None
    created_at: float


def _prompt_view(transaction: PromptTransaction) -> PromptView:
    callback = transaction.callback
    last = callback.last
    return PromptView(
        transaction.tid,
        transaction.to,
        str(transaction.status),
        transaction.detail,
        transaction.attempts,
        transaction.max_attempts,
        str(callback.state),
        callback.attempts or 0,
        last.status if last else None,
        last.error if last else None,
        transaction.created_at,
    )


def list_prompts(store: BlobStore, after: str = "", limit: int = 50) -> tuple[list[PromptView], str | None]:
    """A page of PIN prompt transactions, in the order of their ids, and where the next page starts."""
    infos = store.list_after(_PROMPTS, after if after.startswith(_PROMPTS) else "", limit)
    views = []
    for info, blob in zip(infos, store.read_many([i.key for i in infos]), strict=True):
        document = document_of(blob)
        if document is None:
            continue
        try:
            views.append(_prompt_view(PromptTransaction.from_json(document)))
        except (KeyError, TypeError, ValueError):
            log.warning("unreadable prompt transaction", extra={"key": info.key})
    return views, (infos[-1].key if len(infos) == limit else None)
