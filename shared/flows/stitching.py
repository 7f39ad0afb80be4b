"""A call recorded in several sessions, stitched into one recording once the call is over.

Each session keeps its own WAV (`audio.wav` for the first, `audio-<session>.wav` for the others)
and live transcript. Once the call is over and every session is stored, they become one
recording on the call's timeline (shared/core/timeline.py), silence where the call was
reconnecting:

- `calls/<id>/recording.wav`: a header, then each session's audio and each gap's silence, put
  together by the store (Cloud Storage compose) from parts written one session at a time, so a
  long call is never in memory whole;
- `recording.peaks.json`: its waveform, built from the same parts;
- `recording.redacted.wav` and `recording.redacted.peaks.json`, when a session has a copy silenced
  over redacted words (a route that redacts): the same timeline from each session's silenced copy,
  or its own audio where nothing in it was redacted. The browser and links play it in the
  recording's place (shared/flows/redactions.py `playable_key`);
- `recording.transcript.json`, `.txt` and `.vtt`: the sessions' live words at their place on the
  timeline, each gap noted as not recorded;
- call.json's `stitched`: each session's offset and the gaps.

It is built by a `stitch-recording` task, queued when the call's `completed` event comes and
when a session of a call in several ends, whichever is last finding the work to do; a run that
finds it done changes nothing, and one that finds a session still being stored is retried.
"""

from __future__ import annotations

import json
import logging
import uuid as uuidlib
from dataclasses import replace
from typing import Protocol

from shared.core.call_record import (
    CallRecord,
    RecordingState,
    StitchedRecording,
    call_ended,
    call_key,
    check_conversation_uuid,
)
from shared.core.errors import BadRequest
from shared.core.live_events import live_transcript, segment_from_json
from shared.core.peaks import PeakBuilder
from shared.core.ports import BlobStore, LiveSegment
from shared.core.tasks import Retry, Task
from shared.core.timeline import Placement, Timeline, lay_out
from shared.core.transcripts import Word
from shared.core.wav import parse_wav, wav_header
from shared.flows.calls import iso, note_transcript, read_call, update_call
from shared.flows.live_transcripts import live_lines_key, write_transcript
from shared.flows.needs import HasQueue, HasStore
from shared.flows.redactions import redacted_audio_key

__all__ = [
    "STITCHED",
    "STITCH_TASK",
    "StitchServices",
    "conversation_of",
    "queue_stitch",
    "stitch_recording",
    "stitch_task",
]

log = logging.getLogger(__name__)

STITCH_TASK = "stitch-recording"
# The stitched recording's name under the call: recording.wav, recording.peaks.json, recording.transcript.*
STITCHED = "recording"
# Silence is written in objects of at most this many bytes, so a long gap needs no more memory.
_SILENCE_PART = 8 * 1024 * 1024


class StitchServices(HasStore, HasQueue, Protocol):
    pass


def stitch_task(conversation_uuid: str, trigger: str) -> Task:
    """The task that stitches the call's recording, named by what queued it: a session's end, or
    the call's (a queue refuses a name it has seen, so each trigger has its own)."""
    return Task(STITCH_TASK, f"{conversation_uuid}-{trigger}", {"conversation_uuid": conversation_uuid})


def queue_stitch(services: StitchServices, call: CallRecord, trigger: str) -> None:
    """Queue the stitching of a call recorded in more than one session."""
    if len(call.recordings) > 1:
        services.queue.enqueue(stitch_task(call.conversation_uuid, trigger))


def conversation_of(task: Task) -> str:
    """The conversation a stitch-recording task names; BadRequest for anything else."""
    try:
        return check_conversation_uuid(task.payload.get("conversation_uuid"))
    except BadRequest as err:
        raise BadRequest("a stitch-recording task names its conversation") from err


def stitch_recording(store: BlobStore, conversation_uuid: str, now: float) -> str:
    """Stitch the call's sessions into one recording if the call is over; returns what happened,
    and raises Retry while a session is still being stored."""
    call = read_call(store, conversation_uuid)
    if call is None or call.deleted:
        return "no call"
    if len(call.recordings) < 2:
        return "one session"
    if not call_ended(call):
        return "call goes on"
    if any(entry.state == RecordingState.STREAMING for entry in call.recordings):
        raise Retry("a session of the call is still being stored")
    try:
        timeline = lay_out(call.recordings)
    except ValueError as err:
        log.error("sessions cannot be stitched", extra={"call": conversation_uuid, "error": str(err)})
        return "not stitched"
    key = call_key(conversation_uuid, f"{STITCHED}.wav")
    redacted = _redacted_timeline(store, timeline)
    done = call.stitched
    if (
        done
        and done.offsets == timeline.offsets()
        and done.size == timeline.samples * 2
        and store.list(key)
        and (redacted is None or store.list(redacted_audio_key(key)))
    ):
        return "already stitched"
    size = _compose(store, conversation_uuid, timeline, key)
    _stitch_redacted(store, conversation_uuid, redacted, key)
    _stitch_transcript(store, call, timeline, now)
    stitched = StitchedRecording(
        key, timeline.sample_rate, size, timeline.duration, timeline.offsets(), timeline.gaps, iso(now)
    )

    def note(record: CallRecord) -> None:
        record.stitched = stitched

    update_call(store, conversation_uuid, note, now)
    log.info(
        "recording stitched",
        extra={"call": conversation_uuid, "sessions": len(timeline.placements), "gaps": len(timeline.gaps)},
    )
    return "stitched"


def _session_pcm(store: BlobStore, placement: Placement) -> bytes:
    """A session's samples as its WAV holds them, cut or padded to the length call.json gives."""
    blob = store.read(placement.object_key)
    pcm = parse_wav(blob.data).pcm if blob is not None else b""
    want = placement.samples * 2
    if len(pcm) != want:
        log.warning("a session's audio is not the length noted", extra={"object": placement.object_key})
    return pcm[:want].ljust(want, b"\0")


def _redacted_timeline(store: BlobStore, timeline: Timeline) -> Timeline | None:
    """The timeline read from each session's silenced copy, or from its own audio where it has
    none (nothing in it was redacted); None when no session has one."""
    placements, silenced = [], False
    for placement in timeline.placements:
        copy = redacted_audio_key(placement.object_key)
        if placement.samples and store.list(copy):
            placement, silenced = replace(placement, object_key=copy), True
        placements.append(placement)
    return replace(timeline, placements=tuple(placements)) if silenced else None


def _stitch_redacted(store: BlobStore, conversation_uuid: str, redacted: Timeline | None, key: str) -> None:
    """recording.redacted.wav and its peaks, when a session was redacted; an earlier stitch's
    copy is removed when none is (it would be played in the recording's place).

    recording.wav is kept beside it whatever the route's keep_unredacted, as a streamed
    session's audio.wav is (shared/flows/redactions.py): the sessions it is made of are kept
    unredacted for the recorder's sweep and this stitching, so deleting it would hide nothing, and
    its presence is what tells a later run the work is done. No page or link plays it while the
    copy is there."""
    copy = redacted_audio_key(key)
    if redacted is None:
        for stale in (copy, _peaks_key(copy)):
            if store.list(stale):
                store.delete(stale)
        return
    _compose(store, conversation_uuid, redacted, copy)
    log.info("stitched recording redacted", extra={"call": conversation_uuid, "key": copy})


def _peaks_key(audio_key: str) -> str:
    """`calls/<id>/recording.wav` → `calls/<id>/recording.peaks.json`, where the browser looks."""
    return f"{audio_key.rsplit('.', 1)[0]}.peaks.json"


def _compose(store: BlobStore, conversation_uuid: str, timeline: Timeline, key: str) -> int:
    """Write the recording at `key` and its peaks, one session at a time; returns its audio bytes."""
    # Parts of this run only: two runs at once each build the same recording from their own.
    folder = call_key(conversation_uuid, f"stitch/{uuidlib.uuid4().hex[:12]}/")
    peaks = PeakBuilder(timeline.samples, timeline.sample_rate)
    sources = [f"{folder}header.wav"]
    store.write(sources[0], wav_header(timeline.sample_rate, timeline.samples * 2), "audio/wav")
    position = 0
    for index, placement in enumerate(timeline.placements):
        silence = (placement.offset - position) * 2
        for part in range(-(-silence // _SILENCE_PART)):
            sources.append(f"{folder}{index:04d}-gap-{part:04d}.pcm")
            store.write(sources[-1], bytes(min(_SILENCE_PART, silence - part * _SILENCE_PART)))
        if placement.samples:
            pcm = _session_pcm(store, placement)
            sources.append(f"{folder}{index:04d}-audio.pcm")
            store.write(sources[-1], pcm)
            peaks.add(placement.offset, pcm)
            del pcm
        position = placement.offset + placement.samples
    store.compose(key, sources, "audio/wav")
    for source in sources:
        store.delete(source)
    store.write(_peaks_key(key), json.dumps(peaks.peaks(), separators=(",", ":")).encode(), "application/json")
    return timeline.samples * 2


def _session_segments(store: BlobStore, object_key: str, offset: float) -> list[LiveSegment] | None:
    """A session's final live segments, moved to its place on the call's timeline; None if it
    has no live transcript."""
    blob = store.read(live_lines_key(object_key))
    if blob is None:
        return None
    segments = []
    for line in blob.data.decode(errors="replace").splitlines():
        try:
            segment = segment_from_json(json.loads(line))
        except (KeyError, TypeError, ValueError):
            continue
        words = tuple(Word(w.text, w.start + offset, w.end + offset, w.confidence) for w in segment.words)
        segments.append(
            LiveSegment(True, segment.text, segment.start + offset, segment.end + offset, words, segment.gap)
        )
    return segments


def _stitch_transcript(store: BlobStore, call: CallRecord, timeline: Timeline, now: float) -> None:
    """The sessions' live words on the call's timeline, as recording.transcript.*, if any were heard live."""
    finals: list[LiveSegment] = []
    notes = [f"not recorded: {gap.start:.2f}-{gap.end:.2f} s (the call was reconnecting)" for gap in timeline.gaps]
    heard = False
    for placement in timeline.placements:
        offset = placement.offset / timeline.sample_rate
        segments = _session_segments(store, placement.object_key, offset)
        if segments is None:
            end = offset + placement.samples / timeline.sample_rate
            if placement.samples:
                notes.append(f"not transcribed live: {offset:.2f}-{end:.2f} s")
            continue
        heard = True
        finals += segments
    if not heard:
        return
    document, turns = live_transcript(call.conversation_uuid, finals, notes)
    write_transcript(store, call_key(call.conversation_uuid, f"{STITCHED}.transcript"), document, turns)
    note_transcript(store, call.conversation_uuid, str(document["dialogue"]), now)
