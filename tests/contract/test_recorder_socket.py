"""The recorder's socket on a real connection: a close never discards frames that arrived before
it, and the close handshake is answered."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from wsproto.frame_protocol import FrameProtocol

from shared.flows.streams import StreamClosed
from shared.runtime.frame_socket import FrameSocket


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        yield ours, theirs


def test_frames_that_arrive_with_the_close_are_delivered_before_it(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    ws = SimpleNamespace(sock=ours, connected=True)
    frames = FrameProtocol(client=True, extensions=[])
    theirs.sendall(frames.send_data(b"a" * 640) + frames.send_data(b"b" * 640) + frames.close(1000, "done"))
    socket_ = FrameSocket(ws, 64 * 1024)
    received = []
    with pytest.raises(StreamClosed):
        while True:
            message = socket_.receive(timeout=1)
            if message is not None:
                received.append(message)
    assert received == [b"a" * 640, b"b" * 640]
    # The close is echoed with the caller's code, and flask-sock will send none of its own.
    assert theirs.recv(100) == b"\x88\x02\x03\xe8" and ws.connected is False


def test_a_quiet_socket_times_out_and_a_partial_frame_waits_for_the_rest(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    socket_ = FrameSocket(SimpleNamespace(sock=ours, connected=True), 64 * 1024)
    assert socket_.receive(timeout=0.05) is None
    frame = bytes(FrameProtocol(client=True, extensions=[]).send_data(b"c" * 640))
    theirs.sendall(frame[:100])
    assert socket_.receive(timeout=0.05) is None and socket_.buffered == 100
    theirs.sendall(frame[100:])
    assert socket_.receive(timeout=0) == b"c" * 640


def test_a_dropped_connection_ends_the_stream_after_what_arrived(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    socket_ = FrameSocket(SimpleNamespace(sock=ours, connected=True), 64 * 1024)
    theirs.sendall(FrameProtocol(client=True, extensions=[]).send_data("hello"))
    theirs.close()
    assert socket_.receive(timeout=1) == "hello"
    with pytest.raises(StreamClosed, match="connection dropped"):
        socket_.receive(timeout=1)
