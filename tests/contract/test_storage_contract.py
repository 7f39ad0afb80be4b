"""One contract for every BlobStore: the local folder and Cloud Storage (on the emulator)."""

from __future__ import annotations

import time

import pytest

from shared.core.ports import BlobStore, StorageConflict


def test_write_then_read_returns_the_bytes_and_a_generation(store: BlobStore) -> None:
    generation = store.write("calls/CON-1/call.json", b'{"a": 1}', "application/json")
    blob = store.read("calls/CON-1/call.json")
    assert blob is not None
    assert blob.data == b'{"a": 1}'
    assert blob.generation == generation


def test_reading_a_missing_object_gives_none(store: BlobStore) -> None:
    assert store.read("calls/nobody/call.json") is None


def test_list_is_sorted_by_key_limited_to_the_prefix_with_sizes(store: BlobStore) -> None:
    store.write("calls/B/x.pcm", b"12")
    store.write("calls/A/parts/s1/000001.pcm", b"1234")
    store.write("calls/A/parts/s1/000000.pcm", b"123456")
    store.write("outbox/m.json", b"{}")
    found = store.list("calls/A/")
    assert [(i.key, i.size) for i in found] == [
        ("calls/A/parts/s1/000000.pcm", 6),
        ("calls/A/parts/s1/000001.pcm", 4),
    ]
    assert all(abs(i.updated - time.time()) < 120 for i in found)
    assert [i.key for i in store.list("calls/")] == [
        "calls/A/parts/s1/000000.pcm",
        "calls/A/parts/s1/000001.pcm",
        "calls/B/x.pcm",
    ]


def test_delete_removes_and_tolerates_missing(store: BlobStore) -> None:
    store.write("calls/A/x", b"1")
    store.delete("calls/A/x")
    store.delete("calls/A/x")
    assert store.read("calls/A/x") is None
    assert store.list("calls/") == []


def test_compose_concatenates_in_order_and_keeps_sources(store: BlobStore) -> None:
    store.write("p/0", b"RIFF")
    store.write("p/1", b"-one-")
    store.write("p/2", b"two")
    store.compose("calls/A/audio.wav", ["p/0", "p/1", "p/2"], "audio/wav")
    composed = store.read("calls/A/audio.wav")
    assert composed is not None and composed.data == b"RIFF-one-two"
    assert store.read("p/1") is not None


def test_compose_past_the_32_source_limit(store: BlobStore) -> None:
    keys = [f"p/{i:03d}" for i in range(70)]
    for i, key in enumerate(keys):
        store.write(key, bytes([i]) * 3)
    store.compose("calls/A/audio.wav", keys, "audio/wav")
    composed = store.read("calls/A/audio.wav")
    assert composed is not None
    assert composed.data == b"".join(bytes([i]) * 3 for i in range(70))


def test_conditional_create_only_when_absent(store: BlobStore, request: pytest.FixtureRequest) -> None:
    if request.node.callspec.id == "gcs":
        pytest.skip("gcp-storage-emulator ignores generation preconditions (gcs-faults enforces them)")
    store.write("doc.json", b"1", if_generation_match=0)
    with pytest.raises(StorageConflict):
        store.write("doc.json", b"2", if_generation_match=0)
    assert store.read("doc.json").data == b"1"  # type: ignore[union-attr]


def test_conditional_write_fails_on_a_stale_generation(store: BlobStore, request: pytest.FixtureRequest) -> None:
    if request.node.callspec.id == "gcs":
        pytest.skip("gcp-storage-emulator ignores generation preconditions (gcs-faults enforces them)")
    first = store.write("doc.json", b"1")
    store.write("doc.json", b"2", if_generation_match=first)
    with pytest.raises(StorageConflict):
        store.write("doc.json", b"3", if_generation_match=first)
    assert store.read("doc.json").data == b"2"  # type: ignore[union-attr]


@pytest.mark.parametrize("key", ["", "/abs", "calls/../x", "calls//x", "calls/.hidden"])
def test_unsafe_keys_are_refused(store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError):
        store.write(key, b"x")


def test_a_listing_page_starts_after_a_key_and_stops_at_its_limit(store: BlobStore) -> None:
    keys = [
        "index/calls/99979869/8235000000000-CON-b.json",
        "index/calls/99979869/8235000000001-CON-a.json",
        "index/calls/99979870/8235000009999-CON-c.json",
        "index/calls-other/x.json",
        "calls/A/call.json",
    ]
    for key in keys:
        store.write(key, key.encode(), "application/json")
    everything = [info.key for info in store.list("index/calls/")]
    assert everything == sorted(keys[:3])

    assert [i.key for i in store.list_after("index/calls/", "", 2)] == everything[:2]
    assert [i.key for i in store.list_after("index/calls/", everything[0], 5)] == everything[1:]
    # A key that is not stored starts a page as well: what sorts after it.
    assert [i.key for i in store.list_after("index/calls/", "index/calls/99979869/9", 5)] == everything[2:]
    assert [i.key for i in store.list_after("index/calls/", "index/calls/99979869/", 1)] == everything[:1]
    assert store.list_after("index/calls/", everything[-1], 5) == []
    assert [b.data if b else None for b in store.read_many([keys[1], "index/calls/none.json", keys[0]])] == [
        keys[1].encode(),
        None,
        keys[0].encode(),
    ]
