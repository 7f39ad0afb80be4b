"""The composition root: every service the use cases run against, built from settings.

Each service can be handed in (tests inject an in-memory store, a fixed clock, a counting HTTP
client); the rest are built from the settings when first asked for, so an entry point that never
transcribes never imports a speech engine. A process's services live on its Flask app
(`app_services`), not in a process-wide cache.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

import flask

from shared.config.settings import Settings
from shared.core.ports import (
    BlobStore,
    CallControl,
    Messenger,
    Recordings,
    TaskQueue,
    Transcriber,
)
from shared.runtime.logs import configure_logging, trace_context
from shared.runtime.version import tapedeck_version

if TYPE_CHECKING:
    from shared.flows.delivery import HttpClient

__all__ = ["Services", "app_services", "install_services", "services_from_env"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
# Where an app keeps its services (Flask's place for what extensions attach to an app).
_EXTENSION = "tapedeck.services"
# Two first requests at once must not build two sets of services (two speech models).
_BUILDING = threading.Lock()


class _Service(Generic[_T]):
    """One service of `Services`: the one handed in, else built by its `_build_<name>` on first use."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, services: Services, owner: type | None = None) -> _T:
        built = services._built
        if self.name not in built:
            built[self.name] = getattr(services, f"_build_{self.name}")()
        return built[self.name]  # type: ignore[return-value]


class Services:
    """What the use cases run against: given ones as they are, the others built on first use."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: BlobStore | None = None,
        transcriber: Transcriber | None = None,
        messenger: Messenger | None = None,
        recordings: Recordings | None = None,
        calls: CallControl | None = None,
        http: HttpClient | None = None,
        queue: TaskQueue | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        # The time now, in seconds since the epoch: what every request reads its `now` from.
        self.clock = clock
        given = {
            "store": store,
            "transcriber": transcriber,
            "messenger": messenger,
            "recordings": recordings,
            "calls": calls,
            "http": http,
            "queue": queue,
        }
        self._built: dict[str, object] = {name: service for name, service in given.items() if service is not None}

    store: _Service[BlobStore] = _Service()
    transcriber: _Service[Transcriber] = _Service()
    messenger: _Service[Messenger] = _Service()
    recordings: _Service[Recordings] = _Service()
    calls: _Service[CallControl] = _Service()
    # The HTTP client for result webhooks and callbacks.
    http: _Service[HttpClient] = _Service()
    # Where work that must happen after a response goes: nothing runs after it in this process.
    queue: _Service[TaskQueue] = _Service()

    def _build_store(self) -> BlobStore:
        storage = self.settings.storage
        if storage.kind == "gcs":
            from shared.adapters.gcs_blob_store import GcsBlobStore

            assert storage.bucket
            return GcsBlobStore(storage.bucket)
        from shared.adapters.local_blob_store import LocalBlobStore

        return LocalBlobStore(storage.local_dir)

    def _build_transcriber(self) -> Transcriber:
        return self.transcriber_for(self.settings.transcription.engine)

    def transcriber_for(self, engine: str) -> Transcriber:
        """The engine named `engine` (aws, google or offline): TRANSCRIBER's is `transcriber`,
        handed in or built; another is built on first use, once."""
        if engine == self.settings.transcription.engine and "transcriber" in self._built:
            return self._built["transcriber"]  # type: ignore[return-value]
        key = f"transcriber:{engine}"
        if key not in self._built:
            self._built[key] = self._build_engine(engine)
        return self._built[key]  # type: ignore[return-value]

    def _build_engine(self, engine: str) -> Transcriber:
        transcription = self.settings.transcription
        if engine == "aws":
            from shared.adapters.aws_transcriber import AwsTranscriber
            from shared.flows.jobs import JOB_PREFIX

            assert transcription.bucket
            return AwsTranscriber(self.store, transcription.bucket, transcription.aws_region, job_prefix=JOB_PREFIX)
        if engine == "google":
            from shared.adapters.google_transcriber import GoogleTranscriber

            storage = self.settings.storage
            bucket = storage.bucket if storage.kind == "gcs" else None
            return GoogleTranscriber(self.store, bucket, timeout=transcription.deadlines["google"])
        from shared.adapters.pocketsphinx_transcriber import PocketsphinxTranscriber

        return PocketsphinxTranscriber(self.store)

    def _build_messenger(self) -> Messenger:
        vonage = self.settings.vonage
        if self.settings.messenger == "vonage":
            from shared.adapters.vonage_messenger import VonageMessenger

            assert vonage.api_key and vonage.api_secret
            return VonageMessenger(vonage.api_key, vonage.api_secret, vonage.rest_host)
        from shared.adapters.outbox_messenger import OutboxMessenger

        return OutboxMessenger(self.store)

    def _build_recordings(self) -> Recordings:
        from shared.adapters.vonage_recordings import VonageRecordings

        vonage = self.settings.vonage
        assert vonage.application_id and vonage.private_key
        return VonageRecordings(vonage.application_id, vonage.private_key, vonage.api_host)

    def _build_calls(self) -> CallControl:
        from shared.adapters.vonage_call_control import VonageCallControl

        return VonageCallControl(self.settings.vonage.api_host)

    def _build_http(self) -> HttpClient:
        import requests

        return requests.Session()

    def _build_queue(self) -> TaskQueue:
        tasks = self.settings.tasks
        if tasks.queue == "cloud-tasks":
            from shared.adapters.cloud_tasks_queue import CloudTasksQueue, CloudTasksTarget

            assert tasks.project and tasks.location
            target = CloudTasksTarget(
                tasks.project,
                tasks.location,
                tasks.queue_name,
                tasks.url,
                tasks.service_account or "",
                tasks.audience or tasks.url,
            )
            return CloudTasksQueue(target, emulator_host=tasks.emulator_host, trace=trace_context.get)
        from shared.adapters.local_task_queue import LocalTaskQueue

        return LocalTaskQueue(self.store, self.clock, trace=trace_context.get)


def services_from_env() -> Services:
    """Services for the settings in the environment, with logging set up as they say."""
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_level, settings.tasks.project)
    log.info("services ready", extra={"version": tapedeck_version()})
    return Services(settings)


def install_services(app: flask.Flask, services: Services) -> None:
    """Give `app` the services its requests run against."""
    app.extensions[_EXTENSION] = services


def app_services() -> Services:
    """The services of the app handling this request: those installed on it, or, the first time,
    services read from the environment (a deployed function's app)."""
    app = flask.current_app
    services = app.extensions.get(_EXTENSION)
    if services is None:
        with _BUILDING:
            services = app.extensions.get(_EXTENSION)
            if services is None:
                services = app.extensions[_EXTENSION] = services_from_env()
    assert isinstance(services, Services)
    return services
