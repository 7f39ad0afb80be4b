"""Instants as tapedeck stores them: ISO 8601 in UTC with milliseconds, `...T09:00:00.000Z`. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["instant", "iso"]


def iso(seconds: float) -> str:
    """Seconds since the epoch as stored: `2026-11-30T09:00:00.000Z`."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def instant(text: object) -> float | None:
    """Seconds since the epoch of an ISO 8601 time (`...34.796Z`, `...04+00:00`), or None when unreadable.

    A time without a zone is taken as UTC, as Vonage's are."""
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
