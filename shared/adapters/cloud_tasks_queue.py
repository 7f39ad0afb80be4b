"""TaskQueue on Google Cloud Tasks: HTTP tasks to the `tasks` function, with an OIDC token.

Each task is a POST of its JSON to the tasks function's URL, authenticated with an OIDC token of
the queue's own service account and an explicit audience (Cloud Tasks would otherwise use the
full URL). A delay is the task's `schedule_time`. The task's name is a hash of the work's
identity, so Cloud Tasks refuses most duplicate enqueues (ALREADY_EXISTS, taken as done); the
handler stays idempotent anyway, since delivery is at least once and the name is remembered only
for a while. The client is built on first use and reused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from shared.core.tasks import Task

__all__ = ["DISPATCH_DEADLINE", "CloudTasksQueue", "CloudTasksTarget"]

# Cloud Tasks' longest dispatch deadline, and so the tasks function's timeout (deploy_plan).
DISPATCH_DEADLINE = 1800

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CloudTasksTarget:
    """Where tasks go and who they run as."""

    project: str
    location: str
    queue: str
    url: str  # the tasks function's https://…run.app URL
    service_account: str  # the queue's own identity, invoker of the tasks function only
    audience: str  # what the OIDC token is for: the run.app URL


@dataclass(eq=False)
class CloudTasksQueue:
    target: CloudTasksTarget
    client: Any = None
    emulator_host: str | None = None
    # The trace of the request being handled, which each task carries to its own request.
    trace: Callable[[], str | None] = lambda: None

    @cached_property
    def _tasks_client(self) -> Any:
        if self.client is not None:
            return self.client
        from google.cloud import tasks_v2

        if self.emulator_host:
            # The emulator speaks plain gRPC and checks no credentials.
            import grpc
            from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

            channel = grpc.insecure_channel(self.emulator_host)
            return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
        return tasks_v2.CloudTasksClient()

    def task_request(self, task: Task, now: float) -> dict[str, Any]:
        """The Cloud Tasks task for `task`, as the API takes it."""
        from google.cloud import tasks_v2
        from google.protobuf import duration_pb2

        target = self.target
        headers = {"Content-Type": "application/json"}  # Cloud Tasks never sets one
        if task.trace:
            headers["X-Cloud-Trace-Context"] = task.trace
        request: dict[str, Any] = {
            # Hashed: sequential names slow Cloud Tasks down, and a name takes only [A-Za-z0-9_-].
            "name": self._tasks_client.task_path(
                target.project, target.location, target.queue, hashlib.sha256(task.name.encode()).hexdigest()
            ),
            "http_request": {
                "http_method": tasks_v2.HttpMethod.POST,
                "url": target.url,
                "headers": headers,
                "body": json.dumps(task.to_json()).encode(),
                "oidc_token": {"service_account_email": target.service_account, "audience": target.audience},
            },
            # The longest Cloud Tasks allows, and the tasks function's timeout: a long decode is not cut short.
            "dispatch_deadline": duration_pb2.Duration(seconds=DISPATCH_DEADLINE),
        }
        if task.delay > 0:
            from google.protobuf import timestamp_pb2

            when = timestamp_pb2.Timestamp()
            when.FromDatetime(dt.datetime.fromtimestamp(now + task.delay, dt.UTC))
            request["schedule_time"] = when
        return request

    def enqueue(self, task: Task) -> None:
        # The task carries the trace of the request that queued it, so its own lines join that story.
        task = replace(task, trace=task.trace or self.trace())
        from google.api_core.exceptions import AlreadyExists

        target = self.target
        parent = self._tasks_client.queue_path(target.project, target.location, target.queue)
        try:
            self._tasks_client.create_task(parent=parent, task=self.task_request(task, time.time()))
        except AlreadyExists:
            log.info("task already queued", extra={"task": task.name})
            return
        log.info("task queued", extra={"task": task.name, "delay": task.delay})
