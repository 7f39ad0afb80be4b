"""StreamingTranscriber on pocketsphinx: one child process per live call, at most `limit` at once.

The decoder never releases the GIL and would stall every other call on the recorder's event
loop, so each call gets a child (shared/adapters/pocketsphinx_stream_worker.py) fed through its
stdin. Feeding never blocks the caller: frames wait in a bounded backlog, and when the child
falls that far behind, or dies, the frames it misses are skipped for the transcript only and
reported as a gap. Under gevent (the recorder's worker) the threads and pipes here are
greenlets and cooperative pipes.

The children run at a lower scheduling priority (niceness `DECODER_NICENESS`), so that when the
cores are busy the recorder's event loop, which every stream waits on, gets the CPU first and a
decoder falls behind instead (its backlog then becomes a gap in the transcript, never in the
recording); `nox -s bench` compares it with niceness 0.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from shared.adapters.live_feed import FedStream, FeedLedger, StreamSlots
from shared.core.ports import LiveSegment, SpeechHints
from shared.core.transcript_parsers import Word

__all__ = ["DECODER_NICENESS", "PocketsphinxStreamingTranscriber"]

log = logging.getLogger(__name__)

_WORKER = "shared.adapters.pocketsphinx_stream_worker"
# The folder holding the `shared` package, for the child's imports wherever the parent runs from.
_ROOT = Path(__file__).resolve().parents[2]
_FRAME_SECONDS = 0.02
# The children's niceness: above the recorder's 0, so its event loop wins a busy core.
DECODER_NICENESS = 10


class PocketsphinxStreamingTranscriber:
    """Live transcription with pocketsphinx; `backlog` is how far (seconds) a child may fall behind,
    `niceness` what the child adds to its scheduling niceness."""

    def __init__(
        self, limit: int = 2, backlog: float = 10.0, python: str = sys.executable, niceness: int = DECODER_NICENESS
    ) -> None:
        self.slots = StreamSlots(limit)
        self.backlog = backlog
        self.python = python
        self.niceness = niceness

    @property
    def limit(self) -> int:
        return self.slots.limit

    def open(
        self, rate: int, on_segment: Callable[[LiveSegment], None], hints: SpeechHints | None = None
    ) -> _ChildStream | None:
        """A child decoding the stream. `hints` are not used: the bundled model is US English
        only, and a route's phrases are not taken (see PocketsphinxTranscriber)."""
        if not self.slots.take():
            return None
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(_ROOT), os.environ.get("PYTHONPATH"))))}
        try:
            child = subprocess.Popen(
                [self.python, "-m", _WORKER, "--rate", str(rate), "--nice", str(self.niceness)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
        except OSError:
            log.exception("live transcription could not start")
            self.slots.release()
            return None
        return _ChildStream(child, rate, on_segment, int(self.backlog / _FRAME_SECONDS), self.slots.release)


class _ChildStream(FedStream):
    """One call's child: a writer feeds it from the backlog, a reader hands its segments on."""

    def __init__(
        self,
        child: subprocess.Popen[bytes],
        rate: int,
        on_segment: Callable[[LiveSegment], None],
        backlog: int,
        release: Callable[[], None],
    ) -> None:
        self._child = child
        self._rate = rate
        self._on_segment = on_segment
        self._release = release
        self._frames: queue.Queue[bytes | None] = queue.Queue(maxsize=backlog)
        self._ledger = FeedLedger(2 * rate, self._report_gap)
        # The end of the last final words, on the stream's clock: all before it was heard.
        self._heard_until = 0.0
        # Set when the child said it was done; its end without that means it died.
        self._finished = False
        self._done = threading.Event()
        assert child.stdin is not None and child.stdout is not None
        self._writer = threading.Thread(target=self._write, args=(child.stdin,), daemon=True)
        self._reader = threading.Thread(target=self._read, args=(child.stdout,), daemon=True)
        self._writer.start()
        self._reader.start()

    def _finish(self, timeout: float) -> None:
        with contextlib.suppress(queue.Full):
            self._frames.put(None, timeout=timeout)
        if not self._done.wait(timeout):
            log.warning("live transcription did not finish in time", extra={"timeout": timeout})
            self._child.kill()
        if self._finished:
            self._ledger.end_gap(self._ledger.position)
        else:
            # It died or hung: whatever it had not turned into final words is missing.
            self._report_gap(self._heard_until, self._ledger.position)
        self._child.wait()
        self._release()

    def _report_gap(self, start: float, end: float) -> None:
        if end > start:
            self._deliver(LiveSegment(True, "", round(start, 2), round(end, 2), gap=True))

    def _given_to_stream(self, seconds: float) -> float:
        """A time on the child's clock as a time on the stream's."""
        return self._ledger.to_stream(round(seconds * self._ledger.bytes_per_second))

    def _write(self, pipe: IO[bytes]) -> None:
        try:
            while (frame := self._frames.get()) is not None:
                pipe.write(frame)
        except (BrokenPipeError, OSError):
            log.warning("live transcription stopped taking audio")
        finally:
            with contextlib.suppress(OSError):
                pipe.close()

    def _read(self, pipe: IO[bytes]) -> None:
        try:
            for line in pipe:
                message = json.loads(line)
                if message.get("done"):
                    self._finished = True
                    break
                segment = self._segment(message)
                if segment.final and segment.words:
                    self._heard_until = segment.end
                self._deliver(segment)
        except (OSError, ValueError):
            log.exception("live transcription sent something unreadable")
        finally:
            # Whatever the reason the child stopped, the feeder stops waiting for it.
            self._done.set()
            self._drain()

    def _drain(self) -> None:
        """Empty the backlog and leave the writer its end-of-audio mark, so it stops too."""
        while True:
            try:
                self._frames.get_nowait()
            except queue.Empty:
                break
        self._frames.put_nowait(None)

    def _segment(self, message: dict[str, Any]) -> LiveSegment:
        words = tuple(
            Word(w["word"], self._given_to_stream(w["start"]), self._given_to_stream(w["end"]), w["confidence"])
            for w in message.get("words", ())
        )
        start = words[0].start if words else 0.0
        end = words[-1].end if words else 0.0
        return LiveSegment(bool(message.get("final")), str(message.get("text", "")), start, end, words)

    def _deliver(self, segment: LiveSegment) -> None:
        try:
            self._on_segment(segment)
        except Exception:
            log.exception("a live segment could not be handed on")
