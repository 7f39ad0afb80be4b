"""The embedded task queue's worker: dispatches the tasks the functions store under `tasks/` to the
`tasks` function over HTTP, as Cloud Tasks would, with Cloud Tasks' headers; deletes a task on a
2xx and otherwise retries it after a doubling backoff until its attempts run out. Every
SWEEP_INTERVAL it also queues a `sweep` task, as Cloud Scheduler does deployed.

It runs beside the functions, never in them: in `nox -s serve`'s process, or on its own with
`python -m appengine.local_queue` (TASKS_URL names the tasks function).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from shared.adapters.local_task_queue import FAILED_PREFIX, TASKS_PREFIX, LocalTaskQueue
from shared.config.settings import Settings
from shared.core.ports import BlobStore, StorageConflict
from shared.core.tasks import ATTEMPT_HEADER, MAX_BACKOFF, QUEUE_KEY_HEADER, TASK_NAME_HEADER, Task, parse_task
from shared.flows.problems import note_exhausted_task
from shared.runtime.logs import configure_logging
from shared.runtime.services import Services

__all__ = ["LocalTaskDispatcher", "RetrySettings", "local_dispatcher", "main"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrySettings:
    """The queue's retry policy, as a Cloud Tasks queue's: attempts in all, backoff doubling from min to max."""

    max_attempts: int = 5
    min_backoff: float = 2.0
    max_backoff: float = MAX_BACKOFF
    # How long one dispatch may take before another worker may try the task again.
    dispatch_deadline: float = 600.0

    def backoff(self, attempts: int) -> float:
        return float(min(self.max_backoff, self.min_backoff * 2 ** max(0, attempts - 1)))


@dataclass(eq=False)
class LocalTaskDispatcher:
    """Dispatches due tasks over HTTP to `target`, one attempt per run, retrying with backoff."""

    store: BlobStore
    target: str
    queue_key: str
    retry: RetrySettings
    http: Any = None
    clock: Callable[[], float] = time.time
    # Seconds between two sweeps it queues; None queues none.
    sweep_every: float | None = None
    _swept: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.http is None:
            import requests

            self.http = requests.Session()

    def queue_sweep(self) -> bool:
        """Queue the sweep of this period, once however many workers ask; whether it was due."""
        if not self.sweep_every:
            return False
        period = int(self.clock() // self.sweep_every)
        if period == self._swept:
            return False
        self._swept = period
        LocalTaskQueue(self.store, self.clock).enqueue(Task("sweep", f"period-{period}"))
        return True

    def run_due(self) -> int:
        """Dispatch every task that is due now; returns how many were dispatched."""
        dispatched = 0
        for info in self.store.list(TASKS_PREFIX):
            if info.key.endswith(".json") and self._dispatch(info.key):
                dispatched += 1
        return dispatched

    def serve(self, stop: threading.Event, poll: float = 0.05) -> None:
        """Run until `stop` is set; a failing pass is logged and the next one goes on."""
        while not stop.is_set():
            try:
                self.queue_sweep()
                if not self.run_due():
                    stop.wait(poll)
            except Exception:
                log.exception("local task queue pass failed")
                stop.wait(poll)

    def start(self, poll: float = 0.05) -> threading.Event:
        """Serve from a daemon thread of the local platform's process; set the event to stop it."""
        stop = threading.Event()
        threading.Thread(target=self.serve, args=(stop, poll), name="local-task-queue", daemon=True).start()
        return stop

    def _lease(self, key: str) -> dict[str, Any] | None:
        """Take a due task for one dispatch, with a write conditioned on what was read."""
        blob = self.store.read(key)
        if blob is None:
            return None
        document: dict[str, Any] = json.loads(blob.data)
        now = self.clock()
        if document["due_at"] > now or document.get("leased_until", 0) > now:
            return None
        document["leased_until"] = now + self.retry.dispatch_deadline
        try:
            self.store.write(key, json.dumps(document).encode(), "application/json", blob.generation)
        except StorageConflict:
            return None
        return document

    def _dispatch(self, key: str) -> bool:
        document = self._lease(key)
        if document is None:
            return False
        task, attempts = document["task"], int(document["attempts"])
        name = parse_task(task).name
        headers = {
            "Content-Type": "application/json",
            TASK_NAME_HEADER: name,
            ATTEMPT_HEADER: str(attempts),
            "X-CloudTasks-QueueName": "local",
            QUEUE_KEY_HEADER: self.queue_key,
        }
        if task.get("trace"):
            headers["X-Cloud-Trace-Context"] = task["trace"]
        try:
            response = self.http.post(
                self.target, data=json.dumps(task).encode(), headers=headers, timeout=self.retry.dispatch_deadline
            )
            status: int | None = response.status_code
        except OSError as err:  # requests' errors are IOErrors
            log.warning("task dispatch failed", extra={"task": name, "error": type(err).__name__})
            status = None
        if status is not None and 200 <= status < 300:
            self.store.delete(key)
            log.info("task done", extra={"task": name, "attempt": attempts + 1})
            return True
        self._after_failure(key, document, name, status)
        return True

    def _after_failure(self, key: str, document: dict[str, Any], name: str, status: int | None) -> None:
        attempts = int(document["attempts"]) + 1
        if attempts >= self.retry.max_attempts:
            # The tasks function could not tell it (it gives up a last attempt itself, with a 2xx):
            # the local queue does, and keeps the task aside for a look.
            self.store.write(f"{FAILED_PREFIX}{name}.json", json.dumps(document | {"attempts": attempts}).encode())
            self.store.delete(key)
            error = f"HTTP {status}" if status is not None else "no answer"
            note_exhausted_task(self.store, parse_task(document["task"]), attempts, error, self.clock())
            return
        document.update(attempts=attempts, due_at=self.clock() + self.retry.backoff(attempts), leased_until=0)
        self.store.write(key, json.dumps(document).encode(), "application/json")
        log.warning("task will be retried", extra={"task": name, "attempts": attempts, "http": status})


def local_dispatcher(services: Services) -> LocalTaskDispatcher:
    """The embedded queue's worker for these settings: retries as the Cloud Tasks queue is set up."""
    settings = services.settings
    retry = RetrySettings(settings.delivery.attempts, settings.delivery.backoff)
    return LocalTaskDispatcher(
        services.store, settings.tasks.url, settings.local_queue_key, retry, sweep_every=settings.sweep.interval
    )


def main() -> int:
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_level)
    stop = threading.Event()

    def finish(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    local_dispatcher(Services(settings)).serve(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
