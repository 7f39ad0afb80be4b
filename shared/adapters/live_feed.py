"""The feeder's side of a live engine, shared by the live transcribers.

Frames go into a bounded backlog without ever waiting. When the backlog is full the frame is
skipped for the transcript only, and the stretch skipped is reported as a gap once frames go in
again; the ledger of skips moves the engine's times (counted in the bytes it was given) onto the
stream's clock.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

__all__ = ["FedStream", "FeedLedger", "StreamSlots"]


class StreamSlots:
    """At most `limit` live streams open at once: a slot is taken as one opens, released as it ends."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Take a slot, or say there is none free."""
        with self._lock:
            if self._open >= self.limit:
                return False
            self._open += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._open -= 1


class FeedLedger:
    """Seconds of the stream fed, bytes handed to the engine, and where audio was skipped."""

    def __init__(self, bytes_per_second: int, report_gap: Callable[[float, float], None]) -> None:
        self.bytes_per_second = bytes_per_second
        self.position = 0.0
        self.given = 0
        self._report_gap = report_gap
        # (bytes given before it, seconds skipped), in order.
        self._skips: list[tuple[int, float]] = []
        self._gap_start: float | None = None

    def offer(self, frame: bytes, backlog: queue.Queue[bytes] | queue.Queue[bytes | None], *, open_: bool) -> None:
        """Put `frame` in the backlog if the engine still takes audio and there is room."""
        at = self.position
        self.position += len(frame) / self.bytes_per_second
        if not open_:
            return  # the engine is gone: its close reports what it missed
        try:
            backlog.put_nowait(frame)
        except queue.Full:
            if self._gap_start is None:
                self._gap_start = at
            return
        self.end_gap(at)
        self.given += len(frame)

    def end_gap(self, at: float) -> None:
        """A skipped stretch ends at `at` seconds: note it and report it."""
        if self._gap_start is not None:
            start, self._gap_start = self._gap_start, None
            self._skips.append((self.given, at - start))
            self._report_gap(start, at)

    def to_stream(self, given: int) -> float:
        """A byte of the audio the engine was given, as seconds of the stream: later by every skip before it."""
        return given / self.bytes_per_second + sum(skipped for at, skipped in list(self._skips) if at <= given)


class FedStream:
    """What every live stream shares: feeding goes through its ledger into its backlog and never
    waits, and closing happens once."""

    _ledger: FeedLedger
    _frames: queue.Queue[bytes] | queue.Queue[bytes | None]
    # Set once the engine takes no more audio.
    _done: threading.Event
    _closed: bool = False

    def feed(self, frame: bytes) -> None:
        self._ledger.offer(frame, self._frames, open_=not self._done.is_set())

    def close(self, timeout: float) -> None:
        if self._closed:
            return
        self._closed = True
        self._finish(timeout)

    def _finish(self, timeout: float) -> None:
        """End of audio: wait up to `timeout` for the last words, report what was missed, let go."""
        raise NotImplementedError
