"""Read-modify-write of JSON documents in a BlobStore, safe against concurrent writers."""

from __future__ import annotations

import copy
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, Self, TypeVar

from shared.core.errors import Conflict, TapedeckError
from shared.core.ports import Blob, BlobInfo, BlobStore, StorageConflict

__all__ = [
    "UNREADABLE",
    "Document",
    "claim_once",
    "document_as",
    "document_of",
    "encode_document",
    "read_document",
    "read_json",
    "update_document",
    "update_json",
]

log = logging.getLogger(__name__)
_ATTEMPTS = 25


class Document(Protocol):
    """A typed stored document: read from, and written as, one JSON object."""

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Self: ...

    def to_json(self) -> dict[str, object]: ...


D = TypeVar("D", bound=Document)
T = TypeVar("T")


def encode_document(doc: Mapping[str, object]) -> bytes:
    """A document as every update stores it: indented, keys sorted."""
    return json.dumps(doc, indent=2, sort_keys=True).encode()


def document_of(blob: Blob | None) -> dict[str, Any] | None:
    """A stored object's JSON document, or None when there is none or it is not a JSON object."""
    if blob is None:
        return None
    try:
        doc = json.loads(blob.data)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


# What reading a stored document as a type raises when it is not one.
UNREADABLE = (KeyError, TypeError, ValueError, AttributeError, IndexError, TapedeckError)


def document_as(blob: Blob | None, read: Callable[[dict[str, Any]], T], belongs: Callable[[T], bool]) -> T | None:
    """A stored object as the type `read` makes of it, or None when it is not one: not JSON, not
    that type's shape, or not the owner's (`belongs`)."""
    document = document_of(blob)
    if document is None:
        return None
    try:
        value = read(document)
    except UNREADABLE:
        return None
    return value if belongs(value) else None


def claim_once(store: BlobStore, key: str, document: Mapping[str, object]) -> bool:
    """Create the document at `key` unless one is there; of any number of concurrent claims, one gets True."""
    try:
        store.write(key, json.dumps(document).encode(), "application/json", if_generation_match=0)
    except StorageConflict:
        return False
    return True


def read_json(store: BlobStore, key: str) -> dict[str, Any] | None:
    return document_of(store.read(key))


def update_json(
    store: BlobStore,
    key: str,
    change: Callable[[dict[str, Any]], object],
    create: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """Apply `change` to the document at `key` (made by `create` if absent) and store it.

    Each write is conditional on the generation read, so of two concurrent updates one
    retries on top of the other instead of overwriting it.
    """
    for attempt in range(_ATTEMPTS):
        blob = store.read(key)
        doc = document_of(blob)
        if blob is not None and doc is None:
            # Keep what was there for inspection rather than losing it.
            store.write(f"{key}.corrupt-{blob.generation}", blob.data)
            log.error("replaced an unreadable document", extra={"key": key})
        if doc is None:
            doc = create()
        before = copy.deepcopy(doc)
        change(doc)
        if blob is not None and doc == before:
            return doc
        data = encode_document(doc)
        try:
            store.write(key, data, "application/json", if_generation_match=blob.generation if blob else 0)
            return doc
        except StorageConflict:
            time.sleep(random.uniform(0, 0.01 * (attempt + 1)))
    raise Conflict(f"{key} kept changing under concurrent updates")


def read_document(store: BlobStore, key: str, kind: type[D]) -> D | None:
    doc = read_json(store, key)
    return None if doc is None else kind.from_json(doc)


def update_document(
    store: BlobStore, key: str, kind: type[D], change: Callable[[D], object], create: Callable[[], D]
) -> D:
    """`update_json` over a typed document: `change` edits the document read (or made by `create`)."""

    def edit(doc: dict[str, Any]) -> None:
        typed = kind.from_json(doc)
        change(typed)
        doc.clear()
        doc.update(typed.to_json())

    return kind.from_json(update_json(store, key, edit, lambda: dict(create().to_json())))


@dataclass(frozen=True)
class Batch:
    """One batch of a listing resumed from a kept place: its objects, whether more follow, and
    the place it started from."""

    infos: list[BlobInfo]
    more: bool
    started: str


def next_batch(store: BlobStore, place_key: str, prefix: str, size: int, start: str = "") -> Batch:
    """Up to `size` objects under `prefix` from where the last batch stopped (kept at `place_key`),
    never before `start`, so a long listing is worked through a batch a run."""
    place = read_json(store, place_key) or {}
    kept = place.get("after") if isinstance(place.get("after"), str) else ""
    infos = store.list_after(prefix, max(kept or "", start), size)
    return Batch(infos, len(infos) == size, kept or "")


def keep_place(store: BlobStore, place_key: str, batch: Batch, now: float) -> None:
    """Once a batch is worked: the next starts after it, or from the beginning after the last."""
    following = batch.infos[-1].key if batch.more else ""
    if following != batch.started:
        store.write(place_key, json.dumps({"after": following, "at": now}).encode(), "application/json")
