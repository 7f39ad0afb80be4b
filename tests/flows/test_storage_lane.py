"""A stream's storage runs in its own lane: slow storage holds up no stream's socket, nor any other
stream's start or end; memory stays bounded while storage is slow, the audio waiting on local
disk; a failing step is tried again; storage failing past every retry leaves what it took for
recovery, and call.json says no more than happened."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.local_blob_store import LocalBlobStore
from shared.core.ports import StorageUnavailable
from shared.core.wav import parse_wav
from shared.flows.stream_audio import StreamRecording, recover_recordings
from shared.flows.streams import CLOSE_INTERNAL_ERROR, StreamContext, run_stream
from shared.flows.turns import StorageTurns
from shared.runtime.storage_lane import BackgroundStorageLane
from tests.flows.test_stream_turns import ScriptedSocket
from tests.testbed import TOKEN_SECRET

CHUNK = 4096
AUDIO = bytes(range(256)) * 80  # five chunks
QUICK = (0.02, 0.05)


class SlowStore(LocalBlobStore):
    """A local store whose writes can be held at a gate, made to fail, slowed for one call, and timed."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gate = threading.Event()
        self.gate.set()
        self.held: Callable[[str], bool] = lambda key: ".pcm" in key
        self.failures: dict[str, int] = {}
        self.slow: Callable[[str], bool] = lambda key: False
        self.slow_seconds = 0.0
        self.document_writes: list[float] = []

    def _storage(self, what: str, key: str) -> None:
        if self.slow(key):
            time.sleep(self.slow_seconds)
        if self.held(key):
            self.gate.wait(30)
        if self.failures.get(what, 0) > 0:
            self.failures[what] -= 1
            raise StorageUnavailable(f"{what} {key}: storage is down")

    def write(self, key: str, data: bytes, content_type: str = "", if_generation_match: int | None = None) -> int:
        self._storage("write", key)
        if key.endswith("call.json"):
            self.document_writes.append(time.monotonic())
        return super().write(key, data, content_type, if_generation_match)

    def compose(self, key: str, sources: Sequence[str], content_type: str) -> None:
        self._storage("compose", key)
        super().compose(key, sources, content_type)


def call_json(store: LocalBlobStore, conversation_uuid: str) -> dict[str, Any]:
    return dict(json.loads(store.read(f"calls/{conversation_uuid}/call.json").data))  # type: ignore[union-attr]


def recording(store: LocalBlobStore, lane: BackgroundStorageLane, **kwargs: Any) -> StreamRecording:
    started = StreamRecording(store, "CON-1", "s1", 16000, CHUNK, lane=lane, **kwargs)
    started.start("leg-1", "447700900123", "447700900000")
    return started


def test_the_stream_never_waits_for_slow_storage_and_holds_one_part_in_memory(tmp_path: Path) -> None:
    store = SlowStore(tmp_path / "store")
    store.gate.clear()
    lane = BackgroundStorageLane(folder=tmp_path, backoff=QUICK)
    stream = recording(store, lane)
    assert stream.wait_started(5)
    began = time.monotonic()
    for start in range(0, len(AUDIO), 640):
        stream.add_audio(AUDIO[start : start + 640])
    assert time.monotonic() - began < 0.5
    # The first part is with the lane (held at the gate); the other four wait on disk.
    assert lane.in_memory == CHUNK
    assert lane.on_disk == 4 * CHUNK
    store.gate.set()
    assert stream.finish("hangup", timeout=10) is not None
    assert parse_wav(store.read("calls/CON-1/audio.wav").data).pcm == AUDIO  # type: ignore[union-attr]
    assert (lane.on_disk, lane.most_on_disk, lane.in_memory) == (0, 4 * CHUNK, 0)


def test_a_failing_step_is_tried_again_until_storage_takes_it(tmp_path: Path) -> None:
    store = SlowStore(tmp_path / "store")
    store.failures = {"write": 3, "compose": 2}
    lane = BackgroundStorageLane(backoff=QUICK)
    stream = recording(store, lane)
    stream.add_audio(AUDIO)
    stream.add_dtmf("7", 100)
    assert stream.finish("hangup", timeout=10) is not None
    assert lane.failures == 5
    assert parse_wav(store.read("calls/CON-1/audio.wav").data).pcm == AUDIO  # type: ignore[union-attr]
    call = call_json(store, "CON-1")
    assert [(r["state"], r["bytes"]) for r in call["recordings"]] == [("complete", len(AUDIO))]
    assert [k["digit"] for k in call["dtmf"]] == ["7"]


def test_storage_failing_past_the_end_leaves_the_parts_for_recovery(tmp_path: Path) -> None:
    store = SlowStore(tmp_path / "store")
    store.failures = {"compose": 1000}
    stream = recording(store, BackgroundStorageLane(backoff=QUICK))
    stream.add_audio(AUDIO)
    assert stream.finish("hangup", timeout=0.5) is None
    # Nothing received is lost, and call.json says only what happened: the stream is registered.
    assert store.read("calls/CON-1/audio.wav") is None
    assert len(store.list("calls/CON-1/parts/s1/")) == 6  # five parts and the WAV's header
    assert [r["state"] for r in call_json(store, "CON-1")["recordings"]] == ["streaming"]

    store.failures = {}
    (recovered,) = recover_recordings(store, time.time(), 0)
    assert recovered.object_key == "calls/CON-1/audio.wav"
    assert parse_wav(store.read("calls/CON-1/audio.wav").data).pcm == AUDIO  # type: ignore[union-attr]
    assert [r["state"] for r in call_json(store, "CON-1")["recordings"]] == ["recovered"]
    assert store.list("calls/CON-1/parts/") == []


def test_recovery_after_the_parts_outlived_a_complete_recording_only_deletes_them(tmp_path: Path) -> None:
    store = SlowStore(tmp_path / "store")
    stream = recording(store, BackgroundStorageLane(backoff=QUICK))
    stream.add_audio(AUDIO)
    assert stream.finish("hangup", timeout=10) is not None
    # As if the parts' deletion had stopped halfway: the WAV is whole, one part is left.
    store.write("calls/CON-1/parts/s1/000004.pcm", AUDIO[-CHUNK:])
    assert recover_recordings(store, time.time(), 0) == []
    assert parse_wav(store.read("calls/CON-1/audio.wav").data).pcm == AUDIO  # type: ignore[union-attr]
    assert store.list("calls/CON-1/parts/") == []


def test_key_presses_waiting_for_call_json_go_in_one_write_spaced_from_the_last(tmp_path: Path) -> None:
    store = SlowStore(tmp_path / "store")
    stream = recording(store, BackgroundStorageLane(backoff=QUICK), spacing=0.3)
    stream.add_audio(bytes(32000))
    for digit in "123":
        stream.add_dtmf(digit, 100)
        stream.add_audio(bytes(640))
    time.sleep(0.5)
    assert stream.finish("hangup", timeout=10) is not None
    writes = store.document_writes
    # The registration, the three presses in one write, the end.
    assert len(writes) == 3
    assert min(b - a for a, b in itertools.pairwise(writes)) >= 0.3
    assert [(k["digit"], k["at"]) for k in call_json(store, "CON-1")["dtmf"]] == [("1", 1.0), ("2", 1.02), ("3", 1.04)]


def test_past_its_spill_limit_the_stream_is_closed_and_keeps_what_it_had(tmp_path: Path) -> None:
    store = SlowStore(tmp_path / "store")
    store.gate.clear()
    lanes: list[BackgroundStorageLane] = []

    def lane() -> BackgroundStorageLane:
        lanes.append(BackgroundStorageLane(spill_limit=2 * 256 * 1024, backoff=QUICK))
        return lanes[-1]

    context = StreamContext(store, TOKEN_SECRET, 256 * 1024, lane=lane)
    socket = ScriptedSocket("CON-full", 2000)
    closed: list[tuple[int, str]] = []
    socket.close = lambda reason, message: closed.append((reason, message))  # type: ignore[method-assign]
    threading.Timer(1.0, store.gate.set).start()
    run_stream(socket, context)
    assert closed == [(CLOSE_INTERNAL_ERROR, "storage unavailable")]
    # Two parts on disk when the next was refused (a part before them with the lane, if it was idle
    # then); the stream was closed there, and all it had received is stored, the refused part too.
    assert lanes[0].most_on_disk == 2 * 256 * 1024
    (entry,) = call_json(store, "CON-full")["recordings"]
    assert (entry["state"], entry["end_reason"]) == ("complete", "storage unavailable")
    assert entry["bytes"] in [-(-parts * 256 * 1024 // 640) * 640 for parts in (3, 4)]
    assert parse_wav(store.read("calls/CON-full/audio.wav").data).pcm == bytes(entry["bytes"])  # type: ignore[union-attr]


def test_one_streams_slow_storage_holds_up_no_other_streams_start_or_end(tmp_path: Path) -> None:
    store = SlowStore(tmp_path / "store")
    store.held = lambda key: False
    # The slow call's writes of call.json and its WAV's assembly take 0.6 s each, and there is a
    # single turn to take.
    store.slow = lambda key: key in ("calls/CON-slow/call.json", "calls/CON-slow/audio.wav")
    store.slow_seconds = 0.6
    context = StreamContext(store, TOKEN_SECRET, 256 * 1024, lane=BackgroundStorageLane, storage_turns=StorageTurns(1))
    context.document_spacing = 0.0
    slow = threading.Thread(target=run_stream, args=(ScriptedSocket("CON-slow", 50), context))
    slow.start()
    time.sleep(0.2)
    began = time.monotonic()
    run_stream(ScriptedSocket("CON-fast", 50), context)
    assert time.monotonic() - began < 1.0
    assert call_json(store, "CON-fast")["recordings"][0]["state"] == "complete"
    assert slow.is_alive()
    slow.join(30)
    assert call_json(store, "CON-slow")["recordings"][0]["state"] == "complete"
    assert context.storage_turns.longest_wait <= context.storage_turns.lapse + 0.05


def test_a_turn_held_past_its_lapse_stops_counting() -> None:
    turns = StorageTurns(count=1, lapse=0.05)
    holding = threading.Event()

    def hold() -> None:
        with turns.turn():
            holding.set()
            time.sleep(0.5)

    threading.Thread(target=hold).start()
    holding.wait(5)
    with turns.turn() as waited:
        assert 0.02 <= waited < 0.2


@pytest.mark.parametrize("spill", [False, True])
def test_a_closed_lane_runs_what_was_queued_then_stops(tmp_path: Path, spill: bool) -> None:
    ran: list[bytes] = []
    lane = BackgroundStorageLane(folder=tmp_path)
    if spill:
        lane.run(lambda: time.sleep(0.1))
    lane.carry(b"one", ran.append)
    lane.carry(b"two", ran.append)
    assert lane.close(5)
    assert ran == [b"one", b"two"]
    with pytest.raises(RuntimeError):
        lane.run(lambda: None)
