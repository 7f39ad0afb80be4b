"""TaskQueue on the store itself: the embedded default.

`LocalTaskQueue.enqueue` writes `tasks/<name>.json`, created only if absent (a second enqueue of
the same work is refused, as Cloud Tasks refuses a name it has seen). Nothing runs in the
enqueuing process: the queue's own worker (appengine/local_queue.py) dispatches the tasks to the
`tasks` function. Tasks survive a restart because they live in the store.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from shared.core.ports import BlobStore, StorageConflict
from shared.core.tasks import FAILED_TASKS_PREFIX, Task

__all__ = ["FAILED_PREFIX", "TASKS_PREFIX", "LocalTaskQueue", "task_key"]

log = logging.getLogger(__name__)

TASKS_PREFIX = "tasks/"
FAILED_PREFIX = FAILED_TASKS_PREFIX


def task_key(name: str) -> str:
    return f"{TASKS_PREFIX}{name}.json"


class LocalTaskQueue:
    """Enqueues into the store; nothing runs in the enqueuing process."""

    def __init__(
        self,
        store: BlobStore,
        clock: Callable[[], float] = time.time,
        trace: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.trace = trace

    def enqueue(self, task: Task) -> None:
        # The task carries the trace of the request that queued it, so its own lines join that story.
        task = replace(task, trace=task.trace or self.trace())
        document = {"task": task.to_json(), "due_at": self.clock() + task.delay, "attempts": 0}
        try:
            self.store.write(task_key(task.name), json.dumps(document).encode(), "application/json", 0)
        except StorageConflict:
            log.info("task already queued", extra={"task": task.name})
            return
        log.info("task queued", extra={"task": task.name, "delay": task.delay})
