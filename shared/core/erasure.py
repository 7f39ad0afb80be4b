"""Erasing calls: what each stored object is, how long a call is kept, and the record of a
forgotten number. Pure.

A call's traces are its folder (`calls/<id>/`: audio of every session, transcripts, live files,
peaks, deliveries, page claims, link marks, call.json), its summary in the calls index, its job
documents, the links made to its audio, the pages its messenger keeps (the outbox), the copies an
engine was given (Amazon Transcribe's staged audio, transcript and job) and the problems, retries
and waiting marks that name it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping

from shared.core.errors import BadRequest
from shared.core.identifiers import ROUTE_NUMBER, is_shaped

__all__ = [
    "FORGET_PREFIX",
    "FORGOTTEN_PREFIX",
    "TRACE_KINDS",
    "count_document",
    "expired",
    "forget_record_key",
    "forget_request_key",
    "number_digest",
    "read_number",
    "trace_kind",
]

# Where pending requests to forget a number wait for the sweep, and where each forgotten number's
# record is kept, by its digest: never the number itself once the request is done.
FORGET_PREFIX = "forget/"
FORGOTTEN_PREFIX = "erasures/forgotten/"
# What an erasure counts, in the order a report lists them.
TRACE_KINDS = (
    "audio",
    "transcripts",
    "live files",
    "peaks",
    "deliveries",
    "pages",
    "link marks",
    "call records",
    "index entries",
    "jobs",
    "links",
    "outbox messages",
    "engine copies",
    "problems",
    "prompt transactions",
    "other",
)
_AUDIO = (".wav", ".mp3")
_DAY = 86400


def trace_kind(key: str) -> str:
    """What one object of a call's folder is, as an erasure counts it."""
    parts = key.split("/")
    name = parts[-1]
    folder = parts[2] if len(parts) > 3 else ""
    if folder == "deliveries":
        return "deliveries"
    if folder == "pages":
        return "pages"
    if folder == "links":
        return "link marks"
    if name == "call.json":
        return "call records"
    if name.endswith(".peaks.json"):
        return "peaks"
    if name.startswith("live"):
        return "live files"
    if name.startswith("transcript"):
        return "transcripts"
    if name.endswith(_AUDIO):
        return "audio"
    return "other"


def expired(created_at: float, days: int, now: float) -> bool:
    """Whether a call created at `created_at` is past a retention of `days` (0: kept until deleted)."""
    return days > 0 and now >= created_at + days * _DAY


def read_number(text: str) -> str:
    """A phone number as tapedeck stores it (E.164 digits, no '+'); BadRequest for anything else."""
    number = text.strip().removeprefix("+")
    if not is_shaped(number, ROUTE_NUMBER):
        raise BadRequest("the number must be a phone number in E.164 form, such as +447700900123")
    return number


def number_digest(number: str) -> str:
    """The name under which a number's erasure is tracked and recorded. It does not hide the number
    from someone who guesses it (phone numbers are few enough to try them all); it keeps the number
    out of names and records that outlive the erasure."""
    return hashlib.sha256(f"tapedeck forget {number}".encode()).hexdigest()[:32]


def forget_request_key(digest: str) -> str:
    return f"{FORGET_PREFIX}{digest}.json"


def forget_record_key(digest: str) -> str:
    return f"{FORGOTTEN_PREFIX}{digest}.json"


def count_document(counts: Mapping[str, int]) -> dict[str, int]:
    """Counts in TRACE_KINDS order, the kinds with none left out."""
    tally = Counter(counts)
    return {kind: tally[kind] for kind in TRACE_KINDS if tally[kind]}
