"""The production recorder app plus a timed copy of its socket route, for the bench only.

gunicorn serves `tests.bench.instrumented:create_app()`. `/socket` is untouched; `TIMED_PATH` runs
the same `run_stream` on the same `StreamContext`, with the websocket wrapped so each binary frame's
arrival is compared with the send time the client stamped into it. Each worker writes its delays to
`$BENCH_STATS_DIR/<pid>.json` whenever its last open stream has finished.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from flask import Flask
from flask_sock import Sock

from appengine.main import _VonageSocket, production_app
from shared.flows.streams import StreamContext, run_stream
from tests.bench.timing import STAMP, STATS_DIR_ENV, TIMED_PATH, DelayHistogram

__all__ = ["create_app"]


class _TimedWebSocket:
    """flask-sock's websocket, timing each binary frame as the recorder takes it."""

    def __init__(self, ws: Any, stats: _WorkerStats) -> None:
        self._ws = ws
        self._stats = stats

    @property
    def connected(self) -> bool:
        return bool(self._ws.connected)

    def receive(self, timeout: float | None = None) -> Any:
        message = self._ws.receive(timeout=timeout)
        if isinstance(message, bytes) and len(message) >= STAMP.size:
            now = time.time()
            # Frames simple-websocket has read off the socket that the recorder has not taken yet.
            queued = len(getattr(self._ws, "input_buffer", ()))
            self._stats.frame(now, now - STAMP.unpack_from(message)[0], queued)
        elif message is None and not self._ws.connected:
            # The recorder reads this as a hang-up: count the frames still queued that it will never read.
            self._stats.unread(len(getattr(self._ws, "input_buffer", ())))
        return message

    def close(self, reason: int | None = None, message: str | None = None) -> None:
        self._ws.close(reason=reason, message=message)


class _WorkerStats:
    """This worker's frame delays and stream counts, written out when no stream is open."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / f"{os.getpid()}.json"
        self.delays = DelayHistogram()
        self._lock = threading.Lock()
        self._open = 0
        self._finished = 0
        self._unread = 0
        self._max_queued = 0
        # The worst delay in each wall-clock second, to see when in a run frames were late.
        self._worst: dict[int, float] = {}

    def frame(self, now: float, delay: float, queued: int) -> None:
        self.delays.add(delay)
        second = int(now)
        with self._lock:
            self._worst[second] = max(self._worst.get(second, 0.0), delay)
            self._max_queued = max(self._max_queued, queued)

    def unread(self, frames: int) -> None:
        with self._lock:
            self._unread += frames

    def opened(self) -> None:
        with self._lock:
            self._open += 1

    def closed(self) -> None:
        with self._lock:
            self._open -= 1
            self._finished += 1
            idle = self._open == 0
        if idle:
            self._write()

    def _write(self) -> None:
        with self._lock:
            data = {
                "pid": os.getpid(),
                "streams": self._finished,
                "unread_at_close": self._unread,
                "max_queued": self._max_queued,
                "worst_by_second": dict(self._worst),
                "delays": self.delays.to_dict(),
            }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.path)


def create_app() -> Flask:
    """`production_app()` with the timed stream route added."""
    app = production_app()
    context: StreamContext = app.extensions["tapedeck.streams"]
    folder = Path(os.environ[STATS_DIR_ENV])
    folder.mkdir(parents=True, exist_ok=True)
    stats = _WorkerStats(folder)
    sock = Sock(app)

    @sock.route(TIMED_PATH)
    def timed_socket(ws: Any) -> None:
        stats.opened()
        try:
            run_stream(_VonageSocket(_TimedWebSocket(ws, stats)), context)
        finally:
            stats.closed()

    return app
