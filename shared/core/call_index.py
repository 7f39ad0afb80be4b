"""The calls index: one small summary object per call, named so that listing is newest first. Pure.

`index/calls/<day>/<moment>-<conversation_uuid>.json`, where `<day>` is 99999999 minus the
call's UTC date as YYYYMMDD and `<moment>` is 10**13 minus its creation time in milliseconds.
Keys sort newest first, so a page of the calls list is one listing that starts after the last
key of the page before (Cloud Storage's `startOffset`), whatever the number of calls, and a date
range is a range of keys. Filters on number, flow and text read the summaries of the pages they
pass through.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any, Self

from shared.core.call_record import LEG_DETAIL, CallRecord, Flow
from shared.core.errors import BadRequest

__all__ = [
    "INDEX_PREFIX",
    "CallFilter",
    "CallSummary",
    "index_key",
    "indexed_call",
    "summarize",
    "transcript_start",
]

INDEX_PREFIX = "index/calls/"
_DAYS = 99_999_999
_MOMENTS = 10**13
# How much of a transcript a summary keeps: what the list shows and its text filter searches.
TRANSCRIPT_START = 1000
_CLOCK = re.compile(r"\[[0-9]{2,}:[0-9]{2}(?:\.[0-9])?\]")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


def _instant(created_at: str) -> datetime:
    return datetime.fromisoformat(created_at.replace("Z", "+00:00")).astimezone(UTC)


def _day_part(day: date) -> str:
    return f"{_DAYS - int(day.strftime('%Y%m%d')):08d}"


def index_key(created_at: str, conversation_uuid: str) -> str:
    """Where a call created at `created_at` (ISO 8601) is summarized."""
    instant = _instant(created_at)
    moment = _MOMENTS - round(instant.timestamp() * 1000)
    return f"{INDEX_PREFIX}{_day_part(instant.date())}/{moment:013d}-{conversation_uuid}.json"


def indexed_call(key: str) -> str:
    """The conversation an index name summarizes (its name after the moment's dash)."""
    return key.rsplit("/", 1)[-1].partition("-")[2].removesuffix(".json")


def transcript_start(text: str) -> str:
    """The start of a transcript (a dialogue's `[MM:SS.s]` times dropped), one line, cut at a word."""
    flat = " ".join(_CLOCK.sub(" ", text).split())
    if len(flat) <= TRANSCRIPT_START:
        return flat
    return flat[:TRANSCRIPT_START].rsplit(" ", 1)[0] + " …"


@dataclass(frozen=True)
class CallSummary:
    """What the calls list shows of one call, and what its filters look at."""

    conversation_uuid: str
    created_at: str
    from_: str
    to: str
    flow: str
    status: str
    duration: float | None
    words: str

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Self:
        return cls(
            str(doc["conversation_uuid"]),
            str(doc["created_at"]),
            str(doc.get("from") or ""),
            str(doc.get("to") or ""),
            str(doc.get("flow") or ""),
            str(doc.get("status") or ""),
            doc.get("duration"),
            str(doc.get("words") or ""),
        )

    def to_json(self) -> dict[str, object]:
        doc = asdict(self)
        doc["from"] = doc.pop("from_")
        return doc


def _duration(call: CallRecord) -> float | None:
    """Vonage's own duration of the call when it has said it (not a websocket leg's), else the
    longest recording: a call recorded in several sessions is as long as their stitched recording."""
    for event in reversed(call.events):
        value = event.details.get("duration")
        mine = LEG_DETAIL not in event.details
        if event.status == "completed" and mine and isinstance(value, str | int | float) and str(value).isdigit():
            return float(value)
    durations = [entry.duration for entry in call.recordings]
    if call.stitched is not None:
        durations.append(call.stitched.duration)
    return max(durations) if durations else None


def summarize(call: CallRecord) -> CallSummary | None:
    """The summary of a call, or None for one that has no place in the list (not yet dated, or deleted)."""
    if call.created_at is None or call.deleted is not None:
        return None
    flow = call.flow or (Flow.STREAM if call.recordings else None)
    return CallSummary(
        call.conversation_uuid,
        call.created_at,
        call.from_ or "",
        call.to or "",
        str(flow or ""),
        call.status or ("streaming" if any(r.state == "streaming" for r in call.recordings) else ""),
        _duration(call),
        call.first_words or "",
    )


def _parse_day(value: str, name: str) -> date | None:
    if not value:
        return None
    if not _DAY.fullmatch(value):
        raise BadRequest(f"{name} must be a date like 2026-11-30")
    try:
        return date.fromisoformat(value)
    except ValueError as err:
        raise BadRequest(f"{name} is not a date") from err


@dataclass(frozen=True)
class CallFilter:
    """The list's filters: a number (caller or called), a flow, a date range (UTC days, both
    included) and text in the transcript."""

    number: str = ""
    flow: str = ""
    since: date | None = None
    until: date | None = None
    text: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Self:
        number = query.get("number", "").strip().lstrip("+")
        if number and not (number.isascii() and number.isalnum() and len(number) <= 32):
            raise BadRequest("number must be digits (or a sender name)")
        flow = query.get("flow", "").strip()
        if flow and flow not in tuple(Flow):
            raise BadRequest(f"flow must be one of {', '.join(Flow)}")
        text = " ".join(query.get("text", "").split()).lower()
        if len(text) > 200:
            raise BadRequest("text is at most 200 characters")
        since = _parse_day(query.get("since", "").strip(), "since")
        until = _parse_day(query.get("until", "").strip(), "until")
        if since and until and since > until:
            raise BadRequest("since must not be after until")
        return cls(number, flow, since, until, text)

    @property
    def reads_summaries(self) -> bool:
        """Whether the filter looks inside summaries, not only at their keys."""
        return bool(self.number or self.flow or self.text)

    def first_key(self) -> str:
        """Keys at or before this one are newer than the range."""
        return f"{INDEX_PREFIX}{_day_part(self.until)}/" if self.until else ""

    def past_range(self, key: str) -> bool:
        """Whether `key` and every key after it are older than the range."""
        return self.since is not None and key >= f"{INDEX_PREFIX}{int(_day_part(self.since)) + 1:08d}/"

    def matches(self, summary: CallSummary) -> bool:
        if self.number and self.number not in (summary.from_, summary.to):
            return False
        if self.flow and summary.flow != self.flow:
            return False
        return not self.text or self.text in " ".join(summary.words.split()).lower()

    def to_query(self) -> dict[str, str]:
        query = {
            "number": self.number,
            "flow": self.flow,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "text": self.text,
        }
        return {name: value for name, value in query.items() if value}
