"""Turns at the storage work of streams' starts and ends, a few at a time, that nobody waits out long.

A stream's start and end are a burst of storage work run on the event loop between requests
(call.json, the WAV's assembly, the parts' deletion); streams that start or end together would
otherwise run all their bursts in the same turns of the loop and hold up every other stream's
frames. So they take turns, `count` at a time.

A turn held past `lapse` seconds stops counting: the holder is waiting on storage (a slow answer,
a retry's backoff), not using the loop, and holding others up for it would make one stream's
slow storage every stream's. The wait for a turn is therefore at most `lapse` per stream ahead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["STORAGE_TURNS", "TURN_LAPSE", "StorageTurns"]

# How many streams may be starting or finishing their recording at once.
STORAGE_TURNS = 2
# A start's or an end's work takes a few milliseconds of the loop; a turn held longer is waiting on storage.
TURN_LAPSE = 0.1


class StorageTurns:
    """`count` turns at a time; `longest_wait` is the longest anyone waited for one."""

    def __init__(
        self, count: int = STORAGE_TURNS, lapse: float = TURN_LAPSE, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.count = count
        self.lapse = lapse
        self.longest_wait = 0.0
        self._monotonic = monotonic
        self._changed = threading.Condition()
        # When each turn now held was taken.
        self._held: dict[object, float] = {}

    @contextmanager
    def turn(self) -> Iterator[float]:
        """Hold a turn; gives how long it took to get one."""
        asked = self._monotonic()
        token = object()
        with self._changed:
            while True:
                now = self._monotonic()
                counting = [taken for taken in self._held.values() if now - taken < self.lapse]
                if len(counting) < self.count:
                    break
                self._changed.wait(min(counting) + self.lapse - now)
            self._held[token] = now
            waited = now - asked
            self.longest_wait = max(self.longest_wait, waited)
        try:
            yield waited
        finally:
            with self._changed:
                del self._held[token]
                self._changed.notify_all()
