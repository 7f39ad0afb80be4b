"""Each call's record (call.json) and its summary in the calls index, kept together; the list's pages.

Every change to call.json goes through `update_call`, which rewrites the call's summary from the
record it just stored. Two writers changing the same call at once each write a summary; the
later summary may come from the earlier record for a moment, until the call's next change. The
call's own page always reads call.json.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.core.call_index import INDEX_PREFIX, CallFilter, CallSummary, index_key, summarize, transcript_start
from shared.core.call_record import CALL_DOCUMENT, CallRecord, call_key, new_call
from shared.core.ports import BlobStore
from shared.core.times import iso
from shared.flows.documents import document_of, read_document, update_document

__all__ = [
    "CallPage",
    "iso",
    "list_calls",
    "note_transcript",
    "noting_transcript",
    "read_call",
    "reindex_calls",
    "update_call",
]

log = logging.getLogger(__name__)

# How many index entries one page of the list may read through before it answers.
SCAN_LIMIT = 2000
_BATCH = 200


def read_call(store: BlobStore, conversation_uuid: str) -> CallRecord | None:
    return read_document(store, call_key(conversation_uuid, CALL_DOCUMENT), CallRecord)


def update_call(
    store: BlobStore, conversation_uuid: str, change: Callable[[CallRecord], object], now: float
) -> CallRecord:
    """Apply `change` to call.json (created, dated `now`, if absent), then rewrite the call's summary."""

    def dated(call: CallRecord) -> None:
        change(call)
        # A record written before the index existed gets its date the first time it changes.
        call.created_at = call.created_at or iso(now)

    call = update_document(
        store, call_key(conversation_uuid, CALL_DOCUMENT), CallRecord, dated, lambda: new_call(conversation_uuid)
    )
    write_summary(store, call)
    return call


def write_summary(store: BlobStore, call: CallRecord) -> None:
    summary = summarize(call)
    if call.created_at is None:
        return
    key = index_key(call.created_at, call.conversation_uuid)
    if summary is None:
        store.delete(key)
        return
    store.write(key, json.dumps(summary.to_json()).encode(), "application/json")


def noting_transcript(text: str) -> Callable[[CallRecord], None]:
    """The change to a call's record that keeps the start of its transcript, for the list."""

    def change(call: CallRecord) -> None:
        call.first_words = transcript_start(text)

    return change


def note_transcript(store: BlobStore, conversation_uuid: str, text: str, now: float) -> None:
    """Keep the start of the call's transcript in its record and summary, for the list."""
    update_call(store, conversation_uuid, noting_transcript(text), now)


@dataclass(frozen=True)
class CallPage:
    """One page of the list; `next_after` continues it (None at the end). `scanned` index entries
    were read to fill it; a filter that matches little may answer with fewer than a page, and a
    `next_after`, once it has read SCAN_LIMIT entries."""

    calls: list[CallSummary]
    next_after: str | None
    scanned: int


def list_calls(
    store: BlobStore, where: CallFilter, after: str = "", limit: int = 50, scan_limit: int = SCAN_LIMIT
) -> CallPage:
    """The calls newest first, from the key after `after`, that match `where`."""
    if after and not after.startswith(INDEX_PREFIX):
        after = ""
    position = max(after, where.first_key())
    found: list[CallSummary] = []
    scanned = 0
    while len(found) < limit and scanned < scan_limit:
        want = limit - len(found) if not where.reads_summaries else min(_BATCH, scan_limit - scanned)
        infos = store.list_after(INDEX_PREFIX, position, want)
        infos = [info for info in infos if not where.past_range(info.key)]
        if not infos:
            return CallPage(found, None, scanned)
        for info, blob in zip(infos, store.read_many([info.key for info in infos]), strict=True):
            scanned += 1
            position = info.key
            document = document_of(blob)
            if document is None:
                continue
            try:
                summary = CallSummary.from_json(document)
            except (KeyError, TypeError, ValueError):
                log.warning("unreadable call summary", extra={"key": info.key})
                continue
            if where.matches(summary):
                found.append(summary)
                if len(found) == limit:
                    break
    return CallPage(found, position, scanned)


def _first_seen(call: CallRecord) -> str | None:
    """The earliest time a stored call names: its first event's or its first recording's start."""
    times = [event.timestamp for event in call.events] + [entry.started_at for entry in call.recordings]
    parsed = []
    for value in times:
        try:
            parsed.append(datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC))
        except (AttributeError, ValueError):
            continue
    return iso(min(parsed).timestamp()) if parsed else None


def reindex_calls(store: BlobStore, now: float) -> int:
    """Put every stored call in the calls index, and return how many there are. A call stored
    before the index existed is dated by its first event or recording (else by its record's
    last change); the others' summaries are written again as they are."""
    count = 0
    for info in store.list("calls/"):
        parts = info.key.split("/")
        if len(parts) != 3 or parts[2] != CALL_DOCUMENT:
            continue
        call = read_call(store, parts[1])
        if call is None:
            continue
        if call.created_at is None:
            when = _first_seen(call) or iso(info.updated)

            def date(record: CallRecord, when: str = when) -> None:
                record.created_at = record.created_at or when

            update_call(store, call.conversation_uuid, date, now)
        else:
            write_summary(store, call)
        count += 1
    return count
