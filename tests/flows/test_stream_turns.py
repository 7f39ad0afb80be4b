"""Streams that end together take turns at their recording's storage work: at most STORAGE_TURNS
finish at once, and every one of them still finishes with all its audio."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared.adapters.local_blob_store import LocalBlobStore
from shared.core.tokens import mint_stream_token
from shared.flows.streams import STORAGE_TURNS, StreamClosed, StreamContext, run_stream
from tests.testbed import TOKEN_SECRET

FRAME = bytes(640)


class ScriptedSocket:
    """Vonage's side of one stream: the first message, `frames` frames, then the hang-up."""

    def __init__(self, conversation_uuid: str, frames: int) -> None:
        hello = {
            "event": "websocket:connected",
            "content-type": "audio/l16;rate=16000",
            "conversation_uuid": conversation_uuid,
            "token": mint_stream_token(TOKEN_SECRET, conversation_uuid, time.time(), 600),
        }
        self.messages: list[str | bytes] = [json.dumps(hello), *([FRAME] * frames)]

    def receive(self, timeout: float | None = None) -> str | bytes | None:
        if not self.messages:
            raise StreamClosed("hang-up")
        return self.messages.pop(0)

    def send(self, data: bytes) -> None:
        pass

    def close(self, reason: int, message: str) -> None:
        pass


class TurnCounter(LocalBlobStore):
    """A local store that notes how many WAVs are being assembled at once, each taking a while."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def compose(self, key: str, sources: Sequence[str], content_type: str) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.05)
        super().compose(key, sources, content_type)
        with self.lock:
            self.now -= 1


def test_streams_ending_together_finish_a_few_at_a_time_and_all_keep_their_audio(tmp_path: Path) -> None:
    store = TurnCounter(tmp_path)
    context = StreamContext(store, TOKEN_SECRET, 256 * 1024)
    calls = [f"CON-turns-{n}" for n in range(8)]
    threads = [threading.Thread(target=run_stream, args=(ScriptedSocket(call, 50), context)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert store.most == STORAGE_TURNS
    for call in calls:
        record: dict[str, Any] = json.loads(store.read(f"calls/{call}/call.json").data)  # type: ignore[union-attr]
        assert record["recordings"][0]["state"] == "complete"
        assert record["recordings"][0]["bytes"] == 50 * len(FRAME)
