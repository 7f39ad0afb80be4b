"""The recorder's socket adapter: a close never discards frames that arrived before it."""

from __future__ import annotations

import pytest
from simple_websocket import ConnectionClosed

from appengine.main import _VonageSocket
from shared.flows.streams import StreamClosed


class QueuedSocket:
    """simple-websocket's receive semantics: a poll can time out just as the peer closes,
    leaving frames queued that a later receive still returns."""

    def __init__(self, frames: list[bytes]) -> None:
        self.queue = list(frames)
        self.connected = True
        self.timed_out_once = False

    def receive(self, timeout: float | None = None) -> bytes | None:
        if not self.timed_out_once:
            self.timed_out_once = True
            self.connected = False  # the close arrives while the poll was waiting
            return None
        if self.queue:
            return self.queue.pop(0)
        raise ConnectionClosed(1000, "")


def test_frames_queued_before_a_close_are_still_delivered() -> None:
    socket = _VonageSocket(QueuedSocket([b"a" * 640, b"b" * 640]))
    received = []
    with pytest.raises(StreamClosed):
        while True:
            message = socket.receive(timeout=1)
            if message is not None:
                received.append(message)
    assert received == [b"a" * 640, b"b" * 640]
