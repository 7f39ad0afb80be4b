"""Rules every storage adapter applies to object keys."""

from __future__ import annotations

__all__ = ["check_key"]


def check_key(key: str) -> str:
    """Reject keys that could escape their prefix or name nothing."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        raise ValueError(f"invalid object key {key!r}")
    return key
