"""The bench's Node recorder keeps what the bench reads from tapedeck's: the WAV, the stream count,
the frame delays and the stall monitor's report."""

from __future__ import annotations

import time
import wave
from pathlib import Path

import pytest

from tests.bench.harness import Clients, stored_bytes
from tests.bench.node_server import node_missing, node_recorder
from tests.bench.timing import FRAME_BYTES, percentile_ms

pytestmark = pytest.mark.slow

_FRAMES = 50


def test_the_node_recorder_stores_each_frame_and_times_it(tmp_path: Path) -> None:
    missing = node_missing()
    if missing:
        pytest.skip(missing)
    with node_recorder(tmp_path, 10) as server:
        clients = Clients(tmp_path, 1)
        now = time.time()
        clients.start(server, total=2, frames=_FRAMES, start_at=now, stagger=0.1, deadline=now + 30)
        while clients.running():
            time.sleep(0.05)
        calls, _ = clients.results()
        assert server.wait_streams_finished(2, 10)
        stats = server.stats()
        time.sleep(1.1)
        stalls = server.stalls()
    assert [call["error"] for call in calls] == [None, None]
    for call in calls:
        assert stored_bytes(server.storage, call["conversation_uuid"])[0] == _FRAMES * FRAME_BYTES
        with wave.open(str(server.storage / "calls" / call["conversation_uuid"] / "audio.wav"), "rb") as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
            assert wav.getnframes() == _FRAMES * FRAME_BYTES // 2
    assert stats.streams == 2
    assert stats.delays["count"] == 2 * _FRAMES
    p99 = percentile_ms(stats.delays, 0.99)
    assert p99 is not None and p99 < 1000
    assert stalls.late["count"] > 0 and stalls.worst_by_second
