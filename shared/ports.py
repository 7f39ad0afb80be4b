"""The ports tapedeck's use cases are written against."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Blob", "BlobInfo", "BlobStore"]


@dataclass(frozen=True)
class Blob:
    """An object's bytes and the generation they were read at."""

    data: bytes
    generation: int


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    updated: float  # seconds since the epoch


class BlobStore(Protocol):
    """Object storage: a local folder or a Cloud Storage bucket."""

    def read(self, key: str) -> Blob | None:
        """The object, or None when there is none."""
        ...

    def write(
        self,
        key: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        if_generation_match: int | None = None,
    ) -> int:
        """Store `data` and return its generation.

        With `if_generation_match` the write happens only if the object is still at that
        generation (0: only if absent); otherwise PreconditionFailed is raised.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""
        ...

    def list(self, prefix: str) -> list[BlobInfo]:
        """Every object whose key starts with `prefix`, sorted by key."""
        ...

    def compose(self, key: str, sources: Sequence[str], content_type: str) -> None:
        """Write `key` as the concatenation of `sources`, which are left in place."""
        ...
