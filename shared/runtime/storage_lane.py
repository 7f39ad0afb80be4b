"""A stream's storage steps on a thread of their own (a greenlet under gevent), with the audio
that waits for them spilled to local disk.

The recorder's stream hands each step over and goes on reading its socket; the lane runs them
one at a time, in order. A step that fails (storage still failing after the store's own retries)
is tried again after a backoff with jitter, 0.5 s doubling to 8 s, for as long as the stream goes
on: every step is idempotent, so trying again is safe, and the steps behind it wait. Once the
stream has ended, `close` gives the lane a deadline; past it the steps left are given up, and
what storage has already taken stays there for `recover_recordings`.

Memory stays bounded while storage is slow: a part's bytes wait in memory only when the lane has
nothing else to do (it takes them at once); any other part goes to a temporary file, read back
when its turn comes, and the file is emptied whenever no part waits in it. Past `spill_limit`
bytes waiting, `carry` refuses with StorageUnavailable and the stream is closed. The spill is not
flushed to disk: it is a place to wait in, not a copy that survives the process.
"""

from __future__ import annotations

import logging
import math
import os
import random
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from shared.core.ports import StorageUnavailable

__all__ = ["SPILL_LIMIT", "BackgroundStorageLane"]

log = logging.getLogger(__name__)

# What one stream may have waiting on local disk: 35 minutes of 16 kHz audio, 23 of 24 kHz.
SPILL_LIMIT = 64 * 1024 * 1024


@dataclass
class _Step:
    call: Callable[[bytes], object]
    data: bytes | None = None  # a carried part held in memory
    spilled: tuple[int, int] | None = None  # or where it waits in the spill: offset, length

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.spilled[1] if self.spilled else 0


class BackgroundStorageLane:
    """A StorageLane whose steps run on a thread of its own; see the module's docstring."""

    def __init__(
        self,
        spill_limit: int = SPILL_LIMIT,
        folder: Path | None = None,
        backoff: tuple[float, float] = (0.5, 8.0),
    ) -> None:
        self.spill_limit = spill_limit
        self._folder = folder
        self._backoff = backoff
        self._steps: deque[_Step] = deque()
        self._changed = threading.Condition()
        self._running: _Step | None = None
        self._closing = False
        self._deadline = math.inf
        self._given_up = False
        self._spill: IO[bytes] | None = None
        self._spill_end = 0
        # Carried bytes waiting in the spill file, and the most there ever were.
        self.on_disk = 0
        self.most_on_disk = 0
        # Step attempts that failed, steps given up, and the carried bytes among them.
        self.failures = 0
        self.given_up = 0
        self.lost_bytes = 0
        self._thread = threading.Thread(target=self._work, name="storage-lane", daemon=True)
        self._thread.start()

    @property
    def in_memory(self) -> int:
        """Carried bytes the lane holds in memory: the step running and any waiting."""
        with self._changed:
            held = [s for s in (self._running, *self._steps) if s is not None and s.data is not None]
            return sum(s.size for s in held)

    def run(self, step: Callable[[], object]) -> None:
        self._queue(_Step(lambda _: step()))

    def carry(self, data: bytes, step: Callable[[bytes], object]) -> None:
        with self._changed:
            if self._running is None and not self._steps:
                self._queue(_Step(step, data=data))
                return
            if self.on_disk + len(data) > self.spill_limit:
                raise StorageUnavailable(f"storage is {self.on_disk} bytes behind this stream")
            self._queue(_Step(step, spilled=self._spill_out(data)))

    def drain(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        with self._changed:
            while self._steps or self._running is not None:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return not self._given_up

    def close(self, timeout: float) -> bool:
        with self._changed:
            self._closing = True
            self._deadline = time.monotonic() + timeout
            self._changed.notify_all()
        self._thread.join(timeout)
        with self._changed:
            return not self._thread.is_alive() and not self._given_up

    def _queue(self, step: _Step) -> None:
        with self._changed:
            if self._closing:
                raise RuntimeError("the storage lane is closed")
            self._steps.append(step)
            self._changed.notify_all()

    def _spill_out(self, data: bytes) -> tuple[int, int]:
        if self._spill is None:
            # Kept open for the lane's life and closed (so deleted) when it ends.
            self._spill = tempfile.TemporaryFile(prefix="tapedeck-spill-", dir=self._folder)  # noqa: SIM115
        offset = self._spill_end
        os.pwrite(self._spill.fileno(), data, offset)
        self._spill_end += len(data)
        self.on_disk += len(data)
        self.most_on_disk = max(self.most_on_disk, self.on_disk)
        return offset, len(data)

    def _take(self, step: _Step) -> bytes:
        """The step's bytes, read back from the spill if they wait there."""
        if step.spilled is None:
            return step.data or b""
        assert self._spill is not None
        offset, length = step.spilled
        data = os.pread(self._spill.fileno(), length, offset)
        self.on_disk -= length
        if self.on_disk == 0:
            # Nothing waits in the file any more: start it again from the beginning.
            os.ftruncate(self._spill.fileno(), 0)
            self._spill_end = 0
        return data

    def _next(self) -> tuple[_Step, bytes] | None:
        with self._changed:
            while not self._steps and not self._closing:
                self._changed.wait()
            if not self._steps:
                return None
            if time.monotonic() > self._deadline:
                self._give_up([])
                return None
            step = self._running = self._steps.popleft()
            return step, self._take(step)

    def _work(self) -> None:
        try:
            while (taken := self._next()) is not None:
                step, data = taken
                done = self._attempt(step, data)
                with self._changed:
                    self._running = None
                    if not done:
                        self._give_up([step])
                    self._changed.notify_all()
        finally:
            if self._spill is not None:
                self._spill.close()

    def _attempt(self, step: _Step, data: bytes) -> bool:
        """Run the step until it succeeds; False once the lane's deadline has passed."""
        delay = self._backoff[0]
        while True:
            try:
                step.call(data)
                return True
            except Exception as err:
                self.failures += 1
                wait = random.uniform(delay / 2, delay)
                if time.monotonic() + wait >= self._deadline:
                    log.error("storage step given up", extra={"error": f"{type(err).__name__}: {err}"})
                    return False
                log.warning(
                    "storage step failed, trying again",
                    extra={"error": f"{type(err).__name__}: {err}", "retry_in": round(wait, 2)},
                )
                time.sleep(wait)
                delay = min(delay * 2, self._backoff[1])

    def _give_up(self, running: list[_Step]) -> None:
        """Drop the steps left (called holding the lock), counting them and the bytes they carried."""
        dropped = [*running, *self._steps]
        self._steps.clear()
        self._given_up = True
        self.given_up += len(dropped)
        self.lost_bytes += sum(step.size for step in dropped)
        if dropped:
            log.error("storage steps given up", extra={"steps": len(dropped), "bytes": self.lost_bytes})
