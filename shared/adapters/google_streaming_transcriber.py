"""StreamingTranscriber on Google Speech-to-Text v1 StreamingRecognize, past its 5-minute limit.

Per call a bounded backlog takes the frames (feeding never blocks; what overflows is a gap), a
request generator sends them in ~100 ms chunks, and a worker thread (a greenlet under gevent)
reads the results. A Google stream may stay open about five minutes, so each stream is ended
after `restart_after` seconds of audio and a new one opened with the audio kept since the last
final result sent again first ("infinite streaming"). Every time is computed from byte counts:
a session's clock starts at the byte it begins with, so words are neither lost nor repeated
across a restart.
"""

from __future__ import annotations

import importlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.adapters.google_transcriber import speech_contexts
from shared.adapters.live_feed import FedStream, FeedLedger, StreamSlots
from shared.core.ports import LiveSegment, SpeechHints
from shared.core.transcript_parsers import Word

__all__ = ["GoogleStreamingTranscriber", "cooperate_with_gevent"]

log = logging.getLogger(__name__)

_FRAME_SECONDS = 0.02
# How long the request generator waits for a frame before it looks again at the end of audio.
_POLL = 0.05
# A session gets this long past `restart_after` to finish after it was half-closed.
_GRACE = 30.0


def cooperate_with_gevent() -> None:
    """Run gRPC on gevent's loop when the process is monkey-patched; call before any channel.

    Without it a gevent worker deadlocked on its first stream (measured with a local server).
    The recorder calls this at the top of `production_app()`, which gunicorn's gevent worker
    runs after patching; with `--preload` the app would load before patching, which is
    unconfirmed and not how tapedeck runs. Calling it twice is harmless.
    """
    try:
        from gevent import monkey
    except ImportError:
        return
    if monkey.is_module_patched("socket"):
        grpc_gevent = importlib.import_module("grpc.experimental.gevent")
        grpc_gevent.init_gevent()


def _speech() -> Any:
    # Through importlib, as in google_transcriber: a typed import breaks mypy's google.cloud namespace.
    return importlib.import_module("google.cloud.speech_v1")


def _model(rate: int) -> tuple[str, bool]:
    """The model for a stream's rate, and whether it is an enhanced one.

    `phone_call` (enhanced) is trained on 8 kHz telephone audio, which is what an 8 kHz Vonage
    stream is. Wider streams would be downsampled by it, so they get `latest_long`, the v1
    model for long, open-ended audio such as a conversation. Accuracy of either on tapedeck's
    calls is unmeasured."""
    return ("phone_call", True) if rate <= 8000 else ("latest_long", False)


class GoogleStreamingTranscriber:
    """Live transcription with Google; a client is built on first use unless one is injected.

    `restart_after`: seconds of audio per Google stream (their limit is 5 minutes);
    `backlog`: seconds of audio that may wait to be sent; `bridge_max`: the most audio (seconds)
    sent again at a restart."""

    def __init__(
        self,
        limit: int = 16,
        client: Any = None,
        language: str = "en-US",
        restart_after: float = 240.0,
        backlog: float = 10.0,
        bridge_max: float = 30.0,
    ) -> None:
        self.slots = StreamSlots(limit)
        self.language = language
        self.restart_after = restart_after
        self.backlog = backlog
        self.bridge_max = bridge_max
        self._client = client

    @property
    def limit(self) -> int:
        return self.slots.limit

    @property
    def client(self) -> Any:
        if self._client is None:
            cooperate_with_gevent()
            self._client = _speech().SpeechClient()
        return self._client

    def open(
        self, rate: int, on_segment: Callable[[LiveSegment], None], hints: SpeechHints | None = None
    ) -> _GoogleStream | None:
        if not self.slots.take():
            return None
        try:
            client = self.client
        except Exception:
            log.exception("live transcription could not start")
            self.slots.release()
            return None
        return _GoogleStream(self, client, rate, on_segment, hints)

    def config(self, rate: int, hints: SpeechHints | None = None) -> Any:
        """The streaming config a stream at `rate` opens with, in the route's language and told its
        phrases (the engine's language and no phrases without `hints`)."""
        speech = _speech()
        model, enhanced = _model(rate)
        return speech.StreamingRecognitionConfig(
            config=speech.RecognitionConfig(
                encoding=speech.RecognitionConfig.AudioEncoding.LINEAR16,
                sample_rate_hertz=rate,
                language_code=hints.language if hints else self.language,
                model=model,
                use_enhanced=enhanced,
                enable_word_time_offsets=True,
                enable_automatic_punctuation=True,
                speech_contexts=speech_contexts(hints.vocabulary if hints else ()),
            ),
            interim_results=True,
        )


@dataclass
class _Session:
    """One Google stream: where it starts in the audio taken (bytes), and how far it got."""

    start: int
    bridge: bytes
    opened: float = field(default_factory=time.monotonic)
    sent: int = 0
    # Set when the generator half-closed it: at the end of audio, or for a restart.
    half_closed: bool = False
    ended: bool = False
    # Interim words not yet final when it ended.
    pending: bool = False
    responses: Any = None


class _GoogleStream(FedStream):
    """One call: the feeder fills the backlog, Google streams one after another take it."""

    def __init__(
        self,
        engine: GoogleStreamingTranscriber,
        client: Any,
        rate: int,
        on_segment: Callable[[LiveSegment], None],
        hints: SpeechHints | None,
    ) -> None:
        self._engine = engine
        self._client = client
        self._rate = rate
        self._on_segment = on_segment
        self._bytes_per_second = 2 * rate
        self._chunk_bytes = self._bytes_per_second // 10
        self._frames: queue.Queue[bytes] = queue.Queue(maxsize=max(1, int(engine.backlog / _FRAME_SECONDS)))
        self._config = engine.config(rate, hints)
        # The feeder's side: seconds fed, bytes let into the backlog, and where skipped audio was.
        self._ledger = FeedLedger(self._bytes_per_second, self._report_gap)
        # The sender's side: audio taken from the backlog since the last final result, from byte
        # `_kept_start` of all audio taken. One generator takes at a time, under `_taking`.
        self._taking = threading.Lock()
        self._state = threading.Lock()
        self._kept = bytearray()
        self._kept_start = 0
        # Never half a session's worth, or a restart could send nothing new.
        most = min(engine.bridge_max, engine.restart_after / 2)
        self._bridge_bytes = int(most * self._bytes_per_second) // 2 * 2
        # The byte of all audio taken where the last final result ended.
        self._final_end = 0
        self._session: _Session | None = None
        # The end of the last final words, on the stream's clock: all before it was heard.
        self._heard_until = 0.0
        self._eof = threading.Event()
        self._done = threading.Event()
        self._failed = False
        self._abandoned = False
        self._worker = threading.Thread(target=self._run, daemon=True)
        self._worker.start()

    # --- the feeder ------------------------------------------------------------------------

    def _finish(self, timeout: float) -> None:
        self._eof.set()
        if not self._done.wait(timeout):
            log.warning("live transcription did not finish in time", extra={"timeout": timeout})
            self._abandon()
        if self._failed or self._abandoned:
            self._report_gap(self._heard_until, self._ledger.position)
        else:
            self._ledger.end_gap(self._ledger.position)
        self._engine.slots.release()

    def _abandon(self) -> None:
        self._abandoned = True
        session = self._session
        if session is not None and session.responses is not None:
            session.responses.cancel()

    def _report_gap(self, start: float, end: float) -> None:
        if end > start:
            self._deliver(LiveSegment(True, "", round(start, 2), round(end, 2), gap=True))

    # --- the sender ------------------------------------------------------------------------

    def _take(self, session: _Session) -> bytes | None:
        """The session's next chunk of audio, kept for a restart; b"" when none came yet; None
        when the session should end (end of audio, or time for a restart)."""
        with self._taking:
            if session.ended or self._abandoned:
                return None
            limit = self._engine.restart_after
            if session.sent >= limit * self._bytes_per_second or time.monotonic() - session.opened >= limit:
                session.half_closed = True
                return None
            try:
                chunk = bytearray(self._frames.get(timeout=_POLL))
            except queue.Empty:
                if self._eof.is_set():
                    session.half_closed = True
                    return None
                return b""
            # Gather ~100 ms per request: Google takes at most 25 KB in one.
            deadline = time.monotonic() + 0.1
            while len(chunk) < self._chunk_bytes and (wait := deadline - time.monotonic()) > 0:
                try:
                    chunk += self._frames.get(timeout=wait)
                except queue.Empty:
                    break
            with self._state:
                self._kept += chunk
                # Too long without a final result (a hold, say): only the latest part is kept.
                if (over := len(self._kept) - self._bridge_bytes) > 0:
                    del self._kept[:over]
                    self._kept_start += over
            session.sent += len(chunk)
            return bytes(chunk)

    def _requests(self, session: _Session) -> Iterator[Any]:
        request = _speech().StreamingRecognizeRequest
        session.sent = len(session.bridge)
        for at in range(0, len(session.bridge), self._chunk_bytes):
            yield request(audio_content=session.bridge[at : at + self._chunk_bytes])
        while (chunk := self._take(session)) is not None:
            if chunk:
                yield request(audio_content=chunk)

    def _next_session(self, previous: _Session | None) -> _Session:
        """A session starting at the last final result, with the audio since then to send again."""
        with self._taking:
            if previous is not None:
                previous.ended = True
            with self._state:
                if previous is not None and previous.pending and self._kept_start > self._final_end:
                    # Words were under way in audio dropped from the bridge: they may never be final.
                    self._report_gap(self._to_stream(self._final_end), self._to_stream(self._kept_start))
                    self._final_end = self._kept_start
                return _Session(self._kept_start, bytes(self._kept))

    # --- the worker ------------------------------------------------------------------------

    def _run(self) -> None:
        from google.api_core.exceptions import GoogleAPICallError

        session: _Session | None = None
        reopens = 1
        try:
            while not self._abandoned:
                session = self._session = self._next_session(session)
                try:
                    responses = self._client.streaming_recognize(
                        self._config,
                        self._requests(session),
                        retry=None,
                        timeout=self._engine.restart_after + _GRACE,
                    )
                    session.responses = responses
                    for response in responses:
                        self._handle(session, response)
                except GoogleAPICallError as err:
                    if reopens == 0 or self._abandoned:
                        log.warning("live transcription failed", extra={"error": str(err)})
                        self._failed = True
                        return
                    reopens -= 1
                    log.warning("live transcription stream failed: reopening", extra={"error": str(err)})
                    continue
                if not session.half_closed:
                    # The server ended it on its own: count that as a failure, so it cannot loop.
                    if reopens == 0:
                        self._failed = True
                        return
                    reopens -= 1
                    continue
                reopens = 1
                if self._eof.is_set() and self._frames.empty():
                    return
        except Exception:
            log.exception("live transcription failed")
            self._failed = True
        finally:
            self._done.set()
            while True:
                try:
                    self._frames.get_nowait()
                except queue.Empty:
                    break

    def _handle(self, session: _Session, response: Any) -> None:
        interim = []
        for result in response.results:
            if not result.alternatives:
                continue
            if result.is_final:
                self._final(session, result)
            else:
                interim.append(str(result.alternatives[0].transcript))
        session.pending = bool(interim)
        if interim:
            end = self._session_time(session, response.results[-1].result_end_time)
            self._deliver(LiveSegment(False, "".join(interim).strip(), self._heard_until, end))

    def _final(self, session: _Session, result: Any) -> None:
        best = result.alternatives[0]
        words = tuple(
            Word(
                str(w.word),
                self._session_time(session, w.start_time),
                self._session_time(session, w.end_time),
                float(w.confidence or best.confidence),
            )
            for w in best.words
        )
        end_byte = self._session_byte(session, result.result_end_time)
        with self._state:
            # All audio up to this result's end is heard: only what follows is sent again.
            cut = min(max(0, end_byte - self._kept_start), len(self._kept))
            del self._kept[:cut]
            self._kept_start += cut
            self._final_end = max(self._final_end, end_byte)
        end = self._to_stream(end_byte)
        start = words[0].start if words else self._heard_until
        if words:
            end = words[-1].end
            self._heard_until = max(self._heard_until, end)
        self._deliver(LiveSegment(True, str(best.transcript).strip(), start, end, words))

    def _session_byte(self, session: _Session, offset: Any) -> int:
        """A time in a Google stream (a timedelta) as a byte of all audio taken."""
        return session.start + round(float(offset.total_seconds()) * self._rate) * 2

    def _session_time(self, session: _Session, offset: Any) -> float:
        return self._to_stream(self._session_byte(session, offset))

    def _to_stream(self, taken: int) -> float:
        """A byte of the audio taken as seconds of the stream: later by every skip before it."""
        return round(self._ledger.to_stream(taken), 3)

    def _deliver(self, segment: LiveSegment) -> None:
        if self._abandoned and not segment.gap:
            return
        try:
            self._on_segment(segment)
        except Exception:
            log.exception("a live segment could not be handed on")
