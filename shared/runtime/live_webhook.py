"""A route's `live_webhook`: one stream's live events sent in order, signed, by a sender of its own.

The recorder's stream hands each event over and goes on at once; the sender posts them one at a
time, so the receiver gets them in the order they happened. A receiver slower than speech is not
allowed to hold the stream back or grow memory without bound:

- an interim segment not yet sent is replaced by the next event (the newer words supersede it),
  so the receiver sees a gap in `sequence` where interim segments were skipped;
- a final segment or a gap is tried up to `len(retry_delays) + 1` times, then dropped with a log
  line (the transcript event after the call still carries every word);
- at most `backlog` events wait; past that the oldest is dropped.

After the stream ends the sender keeps going for at most `drain_timeout` seconds, then calls
what `close` was given: the final transcript's delivery, which goes through the task queue.
This runs in the recorder (App Engine flexible, gevent), where a sender may outlive the request;
no Cloud Function builds one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

from shared.config.settings import DeliveryPolicy
from shared.core.deliveries import DeliveryOutcome, DeliveryRequest
from shared.flows.delivery import HttpClient, deliver_once

__all__ = ["WebhookLiveListener", "webhook_poster"]

log = logging.getLogger(__name__)

Event = Mapping[str, object]
Poster = Callable[[Event, int], DeliveryOutcome]


def webhook_poster(http: HttpClient, policy: DeliveryPolicy, url: str, clock: Callable[[], float]) -> Poster:
    """One signed attempt at posting an event to `url`, through the same guard as every delivery."""

    def post(event: Event, attempt: int) -> DeliveryOutcome:
        request = DeliveryRequest(url, event)
        return deliver_once(http, policy, policy.secret, request, attempt=attempt, now=clock())

    return post


def _interim(event: Event) -> bool:
    return event.get("event") == "segment" and event.get("final") is False


class WebhookLiveListener:
    """A LiveListener that posts events through `post`, in order, on a thread (a greenlet under gevent)."""

    def __init__(
        self,
        post: Poster,
        *,
        backlog: int = 256,
        retry_delays: tuple[float, ...] = (0.25, 1.0, 2.0),
        drain_timeout: float = 30.0,
    ) -> None:
        self._post = post
        self._backlog = backlog
        self._retry_delays = retry_delays
        self._drain_timeout = drain_timeout
        self._events: deque[Event] = deque()
        self._changed = threading.Condition()
        self._closing = False
        self._deadline = float("inf")
        self._then: Callable[[], None] | None = None
        self.sent = 0
        self.dropped = 0
        self._sender = threading.Thread(target=self._run, name="live-webhook", daemon=True)
        self._sender.start()

    def send(self, event: Event) -> None:
        with self._changed:
            if self._closing:
                return
            while self._events and _interim(self._events[-1]):
                self._events.pop()
            if len(self._events) >= self._backlog:
                self._events.popleft()
                self.dropped += 1
            self._events.append(event)
            self._changed.notify()

    def close(self, then: Callable[[], None] | None = None) -> None:
        with self._changed:
            if self._closing:
                return
            self._closing = True
            self._then = then
            self._deadline = time.monotonic() + self._drain_timeout
            self._changed.notify()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the sender to finish; True when it has."""
        self._sender.join(timeout)
        return not self._sender.is_alive()

    def _next(self) -> Event | None:
        with self._changed:
            while not self._events and not self._closing:
                self._changed.wait()
            if not self._events:
                return None
            if time.monotonic() > self._deadline:
                self.dropped += len(self._events)
                log.warning("live webhook gave up on events after the stream", extra={"events": len(self._events)})
                self._events.clear()
                return None
            return self._events.popleft()

    def _run(self) -> None:
        while (event := self._next()) is not None:
            self._deliver(event)
        if self._then is not None:
            try:
                self._then()
            except Exception:
                log.exception("the live transcript's delivery could not be queued")

    def _deliver(self, event: Event) -> None:
        tries = 1 if _interim(event) else len(self._retry_delays) + 1
        for attempt in range(1, tries + 1):
            outcome = self._post(event, attempt)
            if outcome.delivered:
                self.sent += 1
                return
            if outcome.permanent or attempt == tries:
                break
            time.sleep(min(self._retry_delays[attempt - 1], max(0.0, self._deadline - time.monotonic())))
        self.dropped += 1
        log.warning("live webhook event dropped", extra={"event": event.get("event"), "error": outcome.error})
