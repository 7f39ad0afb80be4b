"""The production recorder app plus a timed copy of its socket route, for the bench only.

gunicorn serves `tests.bench.instrumented:create_app()`. `/socket` is untouched; `TIMED_PATH` runs
the same `record` on the same `StreamContext`, through a `FrameSocket` that compares each binary
frame's arrival with the send time the client stamped into it. Each worker writes its delays to
`$BENCH_STATS_DIR/<pid>.json` whenever its last open stream has finished.

A stall monitor measures the event loop itself, whatever route the streams use: a greenlet (a
thread under gthread) sleeps 5 ms in a loop and notes how late it wakes, writing
`$BENCH_STATS_DIR/<pid>.stall.json` every second. `BENCH_FSYNC=loop` puts the storage's fsync back
on the event loop and `BENCH_DECODER_NICE=N` sets the live decoders' niceness, so that one bench
run compares them.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from flask import Flask
from flask_sock import Sock
from gevent import monkey

from appengine.main import MAX_FRAME_BYTES, production_app, record
from shared.adapters.local_blob_store import LocalBlobStore
from shared.adapters.pocketsphinx_streaming_transcriber import PocketsphinxStreamingTranscriber
from shared.flows.streams import StreamClosed, StreamContext
from shared.runtime.frame_socket import FrameSocket
from tests.bench.timing import (
    DECODER_NICE_ENV,
    FRAME_BYTES,
    FSYNC_ENV,
    STAMP,
    STATS_DIR_ENV,
    TIMED_PATH,
    DelayHistogram,
    SparseHistogram,
)

# A 640-byte frame on the wire: a 2-byte header, a 2-byte length and a 4-byte mask before it.
_WIRE_FRAME = FRAME_BYTES + 8
# How long the stall monitor sleeps each time; anything past it is the loop's lateness.
_STALL_SLEEP = 0.005

__all__ = ["create_app"]


class _TimedSocket(FrameSocket):
    """The recorder's socket, timing each binary frame as the recorder takes it."""

    def __init__(self, ws: Any, stats: _WorkerStats) -> None:
        super().__init__(ws, MAX_FRAME_BYTES)
        self._stats = stats

    def receive(self, timeout: float | None = None) -> Any:
        try:
            message = super().receive(timeout)
        except StreamClosed:
            # The recorder reads this as a hang-up: count the frames received that it will never read.
            self._stats.unread(self.buffered // _WIRE_FRAME)
            raise
        if isinstance(message, bytes) and len(message) >= STAMP.size:
            now = time.time()
            # Frames received whole or in part that the recorder has not taken yet.
            self._stats.frame(now, now - STAMP.unpack_from(message)[0], -(-self.buffered // _WIRE_FRAME))
        return message


def _lock() -> AbstractContextManager[Any]:
    return contextlib.nullcontext() if monkey.is_module_patched("threading") else threading.Lock()


class _WorkerStats:
    """This worker's frame delays and stream counts, written out when no stream is open."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / f"{os.getpid()}.json"
        # Under gevent the greenlets that count switch only when they wait: no lock is needed, and
        # a lock costs a gevent primitive on every frame, which would be counted as the recorder's.
        self._lock, histogram_lock = _lock(), _lock()
        self.delays = DelayHistogram(histogram_lock)
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


class _StallMonitor:
    """How late the event loop wakes a sleeper: overall and the worst in each wall-clock second."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / f"{os.getpid()}.stall.json"
        self.late = SparseHistogram()
        self.worst: dict[int, float] = {}

    def start(self) -> None:
        threading.Thread(target=self._run, name="stall-monitor", daemon=True).start()

    def _run(self) -> None:
        written = int(time.time())
        while True:
            before = time.monotonic()
            time.sleep(_STALL_SLEEP)
            late = time.monotonic() - before - _STALL_SLEEP
            self.late.add(late)
            second = int(time.time())
            self.worst[second] = max(self.worst.get(second, 0.0), late)
            if second != written:
                written = second
                self._write()

    def _write(self) -> None:
        data = {"pid": os.getpid(), "late": self.late.to_dict(), "worst_by_second": dict(self.worst)}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.path)


def _compared(context: StreamContext) -> None:
    """Swap in the variants the bench compares, when its environment asks for them."""
    if os.environ.get(FSYNC_ENV) == "loop" and isinstance(context.store, LocalBlobStore):
        context.store = LocalBlobStore(context.store.root, sync=os.fsync)
    nice = os.environ.get(DECODER_NICE_ENV)
    if nice is not None and isinstance(context.live, PocketsphinxStreamingTranscriber):
        context.live = PocketsphinxStreamingTranscriber(limit=context.live.limit, niceness=int(nice))


def create_app() -> Flask:
    """`production_app()` with the timed stream route and the stall monitor added."""
    app = production_app()
    context: StreamContext = app.extensions["tapedeck.streams"]
    _compared(context)
    folder = Path(os.environ[STATS_DIR_ENV])
    folder.mkdir(parents=True, exist_ok=True)
    _StallMonitor(folder).start()
    stats = _WorkerStats(folder)
    sock = Sock(app)

    @sock.route(TIMED_PATH)
    def timed_socket(ws: Any) -> None:
        stats.opened()
        try:
            record(_TimedSocket(ws, stats), context)
        finally:
            stats.closed()

    return app
