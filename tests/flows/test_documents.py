"""Concurrent read-modify-write of call.json: no update may overwrite another."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.local_blob_store import LocalBlobStore
from shared.core.ports import StorageConflict
from shared.flows.documents import update_json


def test_two_writers_from_the_same_generation_cannot_both_win(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.write("calls/C/call.json", b"{}")
    seen = store.read("calls/C/call.json")
    assert seen is not None
    store.write("calls/C/call.json", b'{"a": 1}', if_generation_match=seen.generation)
    with pytest.raises(StorageConflict):
        store.write("calls/C/call.json", b'{"b": 1}', if_generation_match=seen.generation)


def test_concurrent_updates_all_land(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    barrier = threading.Barrier(16)

    def add(n: int) -> None:
        barrier.wait()
        for i in range(5):
            item = f"{n}-{i}"

            def append(doc: dict[str, Any], item: str = item) -> None:
                doc["items"].append(item)

            update_json(store, "calls/C/call.json", append, lambda: {"items": []})

    threads = [threading.Thread(target=add, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    blob = store.read("calls/C/call.json")
    assert blob is not None
    assert sorted(json.loads(blob.data)["items"]) == sorted(f"{n}-{i}" for n in range(16) for i in range(5))


def test_an_unreadable_document_is_kept_aside_not_lost(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.write("calls/C/call.json", b"{truncated")
    doc = update_json(store, "calls/C/call.json", lambda d: d.update(ok=True), lambda: {"fresh": True})
    assert doc == {"fresh": True, "ok": True}
    kept = [i.key for i in store.list("calls/C/") if "corrupt" in i.key]
    assert len(kept) == 1 and store.read(kept[0]).data == b"{truncated"  # type: ignore[union-attr]
