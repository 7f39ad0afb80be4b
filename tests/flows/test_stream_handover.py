"""The recorder closing a socket itself, in-process on a local folder with a scripted socket: it
rotates an old socket at a quiet moment, hands every stream over on shutdown, and ends a live
voicemail's message; each time it notes why before the close frame goes out, keeps every frame
that arrived before it, and places the next session on the call's timeline."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.adapters.local_blob_store import LocalBlobStore
from shared.core.tokens import mint_stream_token
from shared.flows.streams import StreamClosed, StreamContext, run_stream
from tests.testbed import TOKEN_SECRET

CALL = "CON-4a0d-0e55"
SPEECH = (np.sin(np.arange(320) / 3) * 8000).astype("<i2").tobytes()
QUIET = bytes(640)


@dataclass
class Ticker:
    """The recorder's monotonic clock, moved on 20 ms by each frame the socket hands over."""

    now: float = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class ScriptedSocket:
    """Vonage's side: the first message, then frames; `arrived` are frames already received when
    the recorder closes (what a drain takes); `close` keeps the call.json it saw at that moment."""

    store: LocalBlobStore
    ticker: Ticker
    frames: list[Any]
    headers: dict[str, str] = field(default_factory=dict)
    arrived: list[bytes] = field(default_factory=list)
    on_frame: Any = None
    closed: tuple[int, str] | None = None
    seen_at_close: dict[str, Any] | None = None
    taken: int = 0
    sent: int = 0

    def __post_init__(self) -> None:
        hello = {
            "event": "websocket:connected",
            "content-type": "audio/l16;rate=16000",
            "conversation_uuid": CALL,
            "uuid": "leg-1",
            "from": "447700900123",
            "to": "447700900000",
            "token": mint_stream_token(TOKEN_SECRET, CALL, time.time(), 600),
            **self.headers,
        }
        self.frames.insert(0, json.dumps(hello))

    def receive(self, timeout: float | None = None) -> str | bytes | None:
        if self.closed is not None:
            raise StreamClosed("closed")
        if timeout == 0:
            if self.arrived:
                self.taken += 1
                return self.arrived.pop(0)
            return None
        if not self.frames:
            raise StreamClosed("hang-up")
        message: str | bytes = self.frames.pop(0)
        if isinstance(message, bytes):
            self.ticker.now += 0.02
            if self.on_frame is not None:
                self.on_frame()
        return message

    def send(self, data: bytes) -> None:
        self.sent += 1

    def close(self, reason: int, message: str) -> None:
        self.closed = (reason, message)
        blob = self.store.read(f"calls/{CALL}/call.json")
        self.seen_at_close = json.loads(blob.data) if blob else None


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "data")


def context(store: LocalBlobStore, ticker: Ticker, ended: list[tuple[str, str]], **kwargs: Any) -> StreamContext:
    return StreamContext(
        store,
        TOKEN_SECRET,
        256 * 1024,
        monotonic=ticker,
        recorder="test/1",
        after_session=lambda call, session: ended.append((call, session)),
        **kwargs,
    )


def sessions(store: LocalBlobStore) -> list[dict[str, Any]]:
    return list(json.loads(store.read(f"calls/{CALL}/call.json").data)["recordings"])  # type: ignore[union-attr]


def test_an_old_socket_closes_at_a_quiet_moment_noted_before_the_close_frame(store: LocalBlobStore) -> None:
    ticker, ended = Ticker(), list[tuple[str, str]]()
    # 3.5 s of speech, then quiet: with a 4 s lifetime the window opens at 3 s, and 0.3 s of quiet
    # after the speech closes the socket; what had already arrived is taken first.
    socket = ScriptedSocket(store, ticker, [SPEECH] * 175 + [QUIET] * 200, arrived=[QUIET] * 3)
    run_stream(socket, context(store, ticker, ended, rotate_seconds=4))

    assert socket.closed == (1000, "rotating to a new socket")
    (noted,) = socket.seen_at_close["recordings"]  # type: ignore[index]
    assert (noted["closing"], noted["end_reason"], noted["leg"], noted["recorder"]) == (
        "reconnect",
        "rotation",
        1,
        "test/1",
    )
    (entry,) = sessions(store)
    frames = 175 + 15 + 3
    assert (entry["state"], entry["bytes"], socket.taken) == ("complete", frames * 640, 3)
    assert entry["closed_at"] >= noted["closed_at"]
    assert ended == [(CALL, entry["session"])]


def test_a_socket_that_talks_throughout_closes_at_its_lifetime(store: LocalBlobStore) -> None:
    ticker: Ticker = Ticker()
    socket = ScriptedSocket(store, ticker, [SPEECH] * 300)
    run_stream(socket, context(store, ticker, [], rotate_seconds=4))
    # Four seconds of frames (the clock's sum of 20 ms steps may make it one more).
    assert socket.closed is not None and sessions(store)[0]["bytes"] // 640 in (200, 201)


def test_on_shutdown_a_stream_is_stored_goes_on_a_moment_then_is_handed_over(store: LocalBlobStore) -> None:
    ticker, ended = Ticker(), list[tuple[str, str]]()
    socket = ScriptedSocket(store, ticker, [SPEECH] * 500)
    ctx = context(store, ticker, ended, handover_delay=1.0)

    def stop_after_two_seconds() -> None:
        if ticker.now >= 102.0:
            ctx.stopping.set()

    socket.on_frame = stop_after_two_seconds
    run_stream(socket, ctx)

    assert socket.closed == (1001, "recorder shutting down")
    assert socket.seen_at_close["recordings"][0]["closing"] == "reconnect"  # type: ignore[index]
    entry = sessions(store)[0]
    # Two seconds, then the second of grace in which no new socket can reach this worker.
    assert entry["end_reason"] == "recorder shutdown" and entry["duration"] == pytest.approx(3.0, abs=0.05)
    assert len(ended) == 1


def test_a_later_leg_starts_where_the_last_one_ended_on_the_calls_timeline(store: LocalBlobStore) -> None:
    ticker, ended = Ticker(), list[tuple[str, str]]()
    first = ScriptedSocket(store, ticker, [SPEECH] * 250)
    run_stream(first, context(store, ticker, ended, rotate_seconds=4))
    time.sleep(0.05)
    second = ScriptedSocket(store, ticker, [SPEECH] * 50, headers={"leg": "2"})
    run_stream(second, context(store, ticker, ended))

    one, two = sessions(store)
    assert (one["leg"], two["leg"], two["object"]) == (1, 2, f"calls/{CALL}/audio-{two['session']}.wav")
    assert one["closing"] == "reconnect" and "closing" not in two
    # The second session ends by the far side's close, and tells of its end too: a call in several.
    assert [session for _, session in ended] == [one["session"], two["session"]]


def test_a_live_voicemails_end_is_noted_final_and_its_socket_is_never_rotated(store: LocalBlobStore) -> None:
    ticker, ended = Ticker(), list[tuple[str, str]]()
    key = json.dumps({"event": "websocket:dtmf", "digit": "#", "duration": 100})
    frames: list[bytes | str] = [*([SPEECH] * 250), key, *([SPEECH] * 50)]
    socket = ScriptedSocket(store, ticker, frames, headers={"capture": "voicemail", "max_seconds": "60"})
    socket.arrived = [SPEECH] * 3
    run_stream(socket, context(store, ticker, ended, rotate_seconds=2))

    assert socket.closed == (1000, "message ended: key")
    assert socket.seen_at_close["recordings"][0]["closing"] == "final"  # type: ignore[index]
    (entry,) = sessions(store)
    # Past the 2 s lifetime, and the frames after `#` are not the message's.
    assert entry["bytes"] == 250 * 640 and socket.taken == 0
    assert ended == []
