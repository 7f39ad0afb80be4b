"""What the recordings browser shows and does: one call's recordings, transcripts, keys, events and
deliveries; its waveform peaks, computed once; its deletion; the PIN prompt transactions.

What is stored is read as far as it can be: a document of the wrong shape is left out and named
on the call's page, never a failed page, so the call can still be seen and deleted. A recording
is served only from the call's own folder, whatever its call.json names.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from shared.core.call_record import CALL_DOCUMENT, CallEvent, CallRecord, RecordingState, call_key, new_call
from shared.core.deliveries import DeliveryRecord
from shared.core.errors import NotFound
from shared.core.job_record import Job
from shared.core.peaks import waveform_peaks
from shared.core.ports import Blob, BlobStore
from shared.core.prompt_transaction import PromptTransaction
from shared.core.reconnect_record import SilentGap
from shared.core.transcripts import build_turns, parse_transcript
from shared.flows.documents import UNREADABLE, Document, document_as, document_of
from shared.flows.jobs import call_job_names, read_job
from shared.flows.live_transcripts import live_interim_key, live_lines_key
from shared.flows.redactions import playable_key, unredacted_key
from shared.flows.stitching import STITCHED

__all__ = [
    "CallView",
    "PromptView",
    "Recording",
    "call_view",
    "list_prompts",
    "peaks_of",
    "recording_of",
    "without_query",
]

log = logging.getLogger(__name__)

_PROMPTS = "prompts/"
D = TypeVar("D", bound=Document)
# What reading a stored document of the wrong shape raises, from its JSON to its typed form.
# A recording the pages serve: an audio file directly in its call's folder.
_OWN_AUDIO = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*\.(?:wav|mp3)", re.ASCII)
# A URL in a line of text: up to the next space or quote, less the punctuation that ends a phrase.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>.,:;!?)\]]")


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
    # The words as heard, for a route that redacts and keeps them: only admins are shown them.
    unredacted: list[Turn] = field(default_factory=list)


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
    # Stored documents of the call that could not be read, and are not shown.
    unreadable: list[str] = field(default_factory=list)


def _transcript_key(audio_key: str) -> str:
    # audio.wav → transcript.json; audio-<s>.wav → transcript-<s>.json; message.wav, conversation.mp3 → transcript.json;
    # the stitched recording.wav → recording.transcript.json
    folder, name = audio_key.rsplit("/", 1)
    if name == f"{STITCHED}.wav":
        return f"{folder}/{STITCHED}.transcript.json"
    suffix = name.rsplit(".", 1)[0].removeprefix("audio") if name.startswith("audio") else ""
    return f"{folder}/transcript{suffix}.json"


def _transcript(store: BlobStore, audio_key: str, labels: list[str]) -> tuple[list[Turn], list[str]]:
    """The dialogue turns and notes of the transcript beside a recording; a note when it cannot be read."""
    return _transcript_at(store, _transcript_key(audio_key), labels)


def _transcript_at(store: BlobStore, key: str, labels: list[str]) -> tuple[list[Turn], list[str]]:
    blob = store.read(key)
    if blob is None:
        return [], []
    found = document_as(blob, lambda document: _turns_of(document, labels), lambda _: True)
    if found is None:
        log.warning("unreadable transcript", extra={"key": key})
        return [], [f"The transcript {key.rsplit('/', 1)[-1]} could not be read."]
    return found


def _turns_of(document: dict[str, Any], labels: list[str]) -> tuple[list[Turn], list[str]]:
    """Dialogue turns from a stored transcript in any of the shapes tapedeck writes."""
    notes = [str(n) for n in document.get("notes", ()) if isinstance(n, str)]
    turns = document.get("turns")
    if isinstance(turns, list):
        return [
            Turn(str(t["label"]), int(t["channel"]), float(t["start"]), float(t["end"]), str(t["text"])) for t in turns
        ], notes
    try:
        model = parse_transcript(document, tuple(labels) or ("Caller",), max(1, len(labels)))
    except UNREADABLE:
        text = document.get("text")
        return ([Turn("Caller", 0, 0.0, 0.0, text)] if isinstance(text, str) and text.strip() else []), notes
    return [Turn(t.label, t.channel, t.start, t.end, t.text) for t in build_turns(model)], notes + list(model.notes)


def is_own_audio(conversation_uuid: str, key: str) -> bool:
    """Whether `key` is an audio file directly in the call's own folder: the only objects its pages
    play or sign a URL for, whatever its call.json names."""
    folder, _, name = key.rpartition("/")
    return f"{folder}/" == call_key(conversation_uuid, "") and bool(_OWN_AUDIO.fullmatch(name))


def _stitched(store: BlobStore, call: CallRecord) -> Recording | None:
    """The call's sessions as one recording, once stitched (and not streaming again since)."""
    stitched = call.stitched
    if stitched is None or any(entry.session not in stitched.offsets for entry in call.recordings):
        return None
    if not is_own_audio(call.conversation_uuid, stitched.object_key):
        return None
    if _redacted_sessions(store, call) and playable_key(store, stitched.object_key) == stitched.object_key:
        # Stitched before its sessions' silenced copies were: the sessions are played, each from its copy.
        return None
    turns, notes = _transcript(store, stitched.object_key, ["Caller"])
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


def _redacted_sessions(store: BlobStore, call: CallRecord) -> bool:
    """Whether any of the call's sessions has a copy silenced over redacted words."""
    keys = [entry.object_key for entry in call.recordings if entry.object_key]
    return any(playable_key(store, key) != key for key in keys)


def _recordings(store: BlobStore, call: CallRecord, jobs: list[Job]) -> list[Recording]:
    found = []
    labels = next((job.labels for job in jobs if job.labels), None) or ["Caller", "Agent"]
    stitched = _stitched(store, call)
    if stitched is not None:
        found.append(stitched)
    for entry in call.recordings if stitched is None else ():
        if not entry.object_key or not is_own_audio(call.conversation_uuid, entry.object_key):
            continue  # a failed recording whose stream never connected: nothing to play
        turns, notes = _transcript(store, entry.object_key, ["Caller"])
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
        if stored is None or not is_own_audio(call.conversation_uuid, stored.object_key):
            continue
        turns, notes = _transcript(store, stored.object_key, labels_of)
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


def _stray_recordings(call: CallRecord) -> list[str]:
    """The recordings call.json names outside the call's own folder, which are not shown."""
    keys = [entry.object_key for entry in call.recordings]
    keys += [stored.object_key for stored in (call.stitched, call.voicemail, call.conversation) if stored]
    return [key for key in keys if key and not is_own_audio(call.conversation_uuid, key)]


def _listed_recordings(store: BlobStore, conversation_uuid: str) -> list[Recording]:
    """The audio stored in the call's folder, for a call whose call.json cannot be read."""
    found = []
    for info in store.list(call_key(conversation_uuid, "")):
        if is_own_audio(conversation_uuid, info.key):
            turns, notes = _transcript(store, info.key, ["Caller"])
            name = info.key.rsplit("/", 1)[-1]
            found.append(Recording(info.key, name, name.rsplit(".", 1)[-1], "unknown", None, turns, [], notes))
    return found


def _readable(store: BlobStore, key: str, kind: type[D], unreadable: list[str]) -> D | None:
    """The typed document at `key`, None when there is none; one that cannot be read is named in `unreadable`."""
    blob = store.read(key)
    if blob is None:
        return None
    found = document_as(blob, kind.from_json, lambda _: True)
    if found is None:
        log.warning("unreadable document", extra={"key": key})
        unreadable.append(key.partition("/")[2].partition("/")[2])
    return found


def _deliveries(store: BlobStore, conversation_uuid: str, unreadable: list[str]) -> list[Delivery]:
    found = []
    for info in store.list(call_key(conversation_uuid, "deliveries/")):
        record = _readable(store, info.key, DeliveryRecord, unreadable)
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


def _jobs(store: BlobStore, call: CallRecord, unreadable: list[str]) -> list[Job]:
    jobs = []
    for name in call_job_names(call):
        try:
            job = read_job(store, name)
        except UNREADABLE:
            log.warning("unreadable job", extra={"job": name})
            unreadable.append(f"the job {name}")
            continue
        if job is not None:
            jobs.append(job)
    return jobs


def _call_of(store: BlobStore, conversation_uuid: str) -> tuple[CallRecord | None, Blob]:
    """The call's record, None when it cannot be read, and what is stored as it; NotFound for none."""
    blob = store.read(call_key(conversation_uuid, CALL_DOCUMENT))
    if blob is None:
        raise NotFound("no such call")
    call = document_as(blob, CallRecord.from_json, lambda found: found.conversation_uuid == conversation_uuid)
    if call is None:
        log.warning("unreadable call record", extra={"call": conversation_uuid})
    return call, blob


def _redacted(store: BlobStore, recording: Recording, unredacted: bool) -> Recording:
    """A recording played from its redacted copy when it has one, and, when asked, with the words
    as heard, if they were kept."""
    heard: list[Turn] = []
    if unredacted:
        kept = unredacted_key(_transcript_key(recording.key).removesuffix(".json"), "json")
        heard, _ = _transcript_at(store, kept, sorted({t.label for t in recording.turns}) or ["Caller"])
    key = playable_key(store, recording.key)
    media_format = "wav" if key != recording.key else recording.media_format
    return replace(recording, key=key, media_format=media_format, unredacted=heard)


def call_view(store: BlobStore, conversation_uuid: str, unredacted: bool = False) -> CallView:
    """Everything the call's page shows, as far as it can be read (the words as heard only when
    `unredacted`, for admins); NotFound for a call never stored."""
    record, _ = _call_of(store, conversation_uuid)
    unreadable = [] if record is not None else [CALL_DOCUMENT]
    call = record or new_call(conversation_uuid)
    jobs = _jobs(store, call, unreadable)
    if call.deleted:
        recordings = []
    elif record is None:
        recordings = _listed_recordings(store, conversation_uuid)
    else:
        recordings = [_redacted(store, r, unredacted) for r in _recordings(store, call, jobs)]
        unreadable += [f"the recording {key} (outside this call)" for key in _stray_recordings(call)]
    live = any(entry.state == "streaming" for entry in call.recordings)
    deliveries = _deliveries(store, conversation_uuid, unreadable)
    return CallView(
        call, recordings, list(call.events), deliveries, jobs, live, _live_text(store, call) if live else "", unreadable
    )


def recording_of(store: BlobStore, conversation_uuid: str, name: str) -> Recording:
    """One of the call's recordings by its file name (its redacted copy is served under the
    recording's own name); NotFound for anything else."""
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


def without_query(text: str) -> str:
    """Every URL in `text` without its query, fragment, user name or password, where a token may
    be: `https://crm.example/hook?key=…` → `https://crm.example/hook`."""

    def shorten(found: re.Match[str]) -> str:
        scheme, _, rest = re.split(r"[?#]", found.group(), maxsplit=1)[0].partition("://")
        authority, slash, path = rest.partition("/")
        return f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"

    return _URL.sub(shorten, text)
