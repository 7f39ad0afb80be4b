"""The recorder's websocket once flask-sock has made the handshake: frames read in the handler's
own greenlet (or thread), straight from the connection.

flask-sock answers the upgrade through simple-websocket, which would then start a reader thread
that parses every frame with wsproto and hands each message over through a queue: most of the
recorder's CPU per frame. `NO_READER` stops that thread from running, and `FrameSocket` takes the
connection from there: one `recv` brings whatever frames have arrived, and `FrameReader` parses
them in place.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from typing import Any

from shared.core.websocket_frames import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    Control,
    FrameError,
    FrameReader,
    close_code,
    close_frame,
    server_frame,
)
from shared.flows.streams import StreamClosed

__all__ = ["NO_READER", "FrameSocket"]

# One recv takes up to this much: every frame that has arrived, for a busy socket.
_RECV_BYTES = 64 * 1024
# A peer that is not reading gets this long to take a frame we send.
_SEND_TIMEOUT = 5.0
# How long a close from this side waits for the peer's own close frame before ending the connection.
_CLOSE_WAIT = 1.0
_WOULD_BLOCK = (TimeoutError, BlockingIOError, InterruptedError)


def _readable_waiter(sock: socket.socket) -> Callable[[], None] | None:
    """A wait until `sock` can be read, within its timeout, without reading it: gevent's own for a
    gevent socket (the recorder's worker), whose wait raises socket.timeout as its recv would.
    None for a plain socket, which is simply read."""
    wait, watcher = getattr(sock, "_wait", None), getattr(sock, "_read_event", None)
    if not callable(wait) or watcher is None:
        return None

    def readable() -> None:
        wait(watcher)

    return readable


class _NoReader:
    """A thread class for simple-websocket that never runs: FrameSocket reads the connection."""

    def __init__(self, target: Callable[[], None]) -> None:
        self.name = "frame-socket"

    def start(self) -> None:
        pass


# The options flask-sock hands to simple-websocket's server for the recorder's route.
NO_READER: dict[str, Any] = {"thread_class": _NoReader}


class FrameSocket:
    """One websocket: `receive` a message or None after `timeout`, `send` audio, `close` with a code.

    `ws` is flask-sock's socket, just after the handshake; from here on only this object reads or
    writes the connection, and `ws` is marked closed so that flask-sock sends no second close frame.
    """

    def __init__(self, ws: Any, max_message: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._ws = ws
        self._sock: socket.socket = ws.sock
        self._reader = FrameReader(max_message)
        self._clock = clock
        self._timeout: float | None = -1.0
        # Why the connection ended, once it has: receive raises StreamClosed with it from then on.
        self._ended: str | None = None
        self._dropped = False
        # Whether the last read filled its buffer: then more is waiting, and is read at once.
        self._full = False
        self._await_readable = _readable_waiter(self._sock)

    @property
    def buffered(self) -> int:
        """Bytes received and not yet handed over as messages."""
        return self._reader.buffered

    def receive(self, timeout: float | None = None) -> str | bytes | None:
        started, wait = self._clock(), timeout
        while True:
            message = self._next()
            if message is not None:
                return message
            if self._ended is not None:
                raise StreamClosed(self._ended)
            if not self._fill(wait):
                return None
            if timeout is not None:
                # Part of a frame came: wait for the rest only as long as was asked in all.
                wait = max(0.0, timeout - (self._clock() - started))

    def send(self, data: bytes | str) -> None:
        if self._ended is not None:
            return
        frame = server_frame(TEXT, data.encode()) if isinstance(data, str) else server_frame(BINARY, data)
        # A peer that has gone is noticed by the next receive, which ends the stream.
        self._send(frame)

    def close(self, reason: int, message: str) -> None:
        """Send a close frame with `reason` (a close code) and `message`, once, and end the
        connection when the peer answers it (or after `_CLOSE_WAIT`). Nothing more is handed over."""
        if self._ended is None:
            self._end(f"closed here ({reason})")
            self._send(close_frame(reason, message))
            self._await_close()
            self._shut()

    def _await_close(self) -> None:
        """Read past what the peer sent after our close, until its own close frame."""
        deadline = self._clock() + _CLOSE_WAIT
        while True:
            try:
                item = self._reader.next()
            except FrameError:
                return
            if isinstance(item, Control) and item.opcode == CLOSE:
                return
            if item is None:
                wait = deadline - self._clock()
                if wait <= 0 or not self._fill(wait) or self._dropped:
                    return

    def _next(self) -> str | bytes | None:
        """The next message already received; answers control frames on the way."""
        while self._ended is None:
            try:
                item = self._reader.next()
            except FrameError as err:
                # The connection is failed: a close frame with the code, and no waiting for an answer.
                self._end(f"protocol error: {err.reason} ({err.code})")
                self._send(close_frame(err.code, err.reason))
                self._shut()
                return None
            if not isinstance(item, Control):
                return item
            self._answer(item)
        return None

    def _answer(self, control: Control) -> None:
        if control.opcode == PING:
            self._send(server_frame(PONG, control.payload))
        elif control.opcode == CLOSE:
            code = close_code(control.payload)
            # The close handshake: echo the peer's code (none when it sent none).
            self._send(close_frame(code))
            self._end(f"closed by peer ({code})")
            # The server ends the TCP connection first (RFC 6455 7.1.1): the caller learns at once.
            self._shut()

    def _fill(self, wait: float | None) -> bool:
        """Read what has arrived, waiting up to `wait` seconds (None: for ever) for something.
        False when nothing came in time; a connection that ended is noted and counts as news."""
        if wait != self._timeout:
            self._sock.settimeout(wait)
            self._timeout = wait
        try:
            if self._await_readable is not None and wait != 0 and not self._full:
                # What arrived was all taken, so the next frame is most likely still on its way
                # (a caller sends one every 20 ms): wait for it rather than ask the kernel for nothing.
                self._await_readable()
            data = self._sock.recv(_RECV_BYTES)
        except _WOULD_BLOCK:
            return False
        except OSError as err:
            self._dropped = True
            self._end(f"connection dropped: {err}")
            return True
        if not data:
            self._dropped = True
            self._end("connection dropped")
            return True
        self._full = len(data) == _RECV_BYTES
        self._reader.feed(data)
        return True

    def _send(self, frame: bytes) -> None:
        if self._timeout != _SEND_TIMEOUT:
            self._sock.settimeout(_SEND_TIMEOUT)
            self._timeout = _SEND_TIMEOUT
        with contextlib.suppress(OSError):
            self._sock.sendall(frame)

    def _shut(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def _end(self, why: str) -> None:
        if self._ended is None:
            self._ended = why
        # flask-sock closes simple-websocket's socket after the handler; it is closed already.
        self._ws.connected = False
