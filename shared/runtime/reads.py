"""Reading many stored objects at once, for the recordings browser (App Engine, never a function).

A page of the calls list reads up to a few hundred small summaries; on Cloud Storage each read is
a round trip, so they go eight at a time. The pool lives only for the call that made it.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shared.core.ports import Blob, BlobStore

__all__ = ["ParallelReads"]

_AT_ONCE = 8


class ParallelReads:
    """`store`, with read_many reading up to eight objects at a time; everything else as `store` does it."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def read_many(self, keys: Sequence[str]) -> list[Blob | None]:
        if len(keys) < 2:
            return self.store.read_many(keys)
        with ThreadPoolExecutor(max_workers=min(_AT_ONCE, len(keys))) as pool:
            return list(pool.map(self.store.read, keys))
