"""The composition root: services built from settings, each created on first use."""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.config.settings import Settings
from shared.core.ports import BlobStore, CallControl, Messenger, Recordings, TaskQueue, Transcriber
from shared.runtime.logs import configure_logging, trace_context

if TYPE_CHECKING:
    from shared.flows.delivery import HttpClient

__all__ = ["Services", "build_services", "services_from_env"]

log = logging.getLogger(__name__)


@dataclass
class Services:
    """What the use cases run against. Adapters (and their SDKs) are built when first asked for."""

    settings: Settings
    _store: BlobStore | None = field(default=None, repr=False)
    _transcriber: Transcriber | None = field(default=None, repr=False)
    _messenger: Messenger | None = field(default=None, repr=False)
    _recordings: Recordings | None = field(default=None, repr=False)
    _queue: TaskQueue | None = field(default=None, repr=False)
    _http: HttpClient | None = field(default=None, repr=False)
    _calls: CallControl | None = field(default=None, repr=False)

    @property
    def store(self) -> BlobStore:
        if self._store is None:
            if self.settings.storage.kind == "gcs":
                from shared.adapters.gcs_blob_store import GcsBlobStore

                assert self.settings.storage.bucket
                self._store = GcsBlobStore(self.settings.storage.bucket)
            else:
                from shared.adapters.local_blob_store import LocalBlobStore

                self._store = LocalBlobStore(self.settings.storage.local_dir)
        return self._store

    @property
    def transcriber(self) -> Transcriber:
        if self._transcriber is None:
            if self.settings.transcription.engine == "aws":
                from shared.adapters.aws_transcriber import AwsTranscriber
                from shared.flows.jobs import JOB_PREFIX

                assert self.settings.transcription.bucket
                self._transcriber = AwsTranscriber(
                    self.store,
                    self.settings.transcription.bucket,
                    self.settings.transcription.aws_region,
                    job_prefix=JOB_PREFIX,
                )
            elif self.settings.transcription.engine == "google":
                from shared.adapters.google_transcriber import GoogleTranscriber

                bucket = self.settings.storage.bucket if self.settings.storage.kind == "gcs" else None
                self._transcriber = GoogleTranscriber(self.store, bucket)
            else:
                from shared.adapters.pocketsphinx_transcriber import PocketsphinxTranscriber

                self._transcriber = PocketsphinxTranscriber(self.store)
        return self._transcriber

    @property
    def messenger(self) -> Messenger:
        if self._messenger is None:
            if self.settings.messenger == "vonage":
                from shared.adapters.vonage_messenger import VonageMessenger

                assert self.settings.vonage.api_key and self.settings.vonage.api_secret
                self._messenger = VonageMessenger(
                    self.settings.vonage.api_key, self.settings.vonage.api_secret, self.settings.vonage.rest_host
                )
            else:
                from shared.adapters.outbox_messenger import OutboxMessenger

                self._messenger = OutboxMessenger(self.store)
        return self._messenger

    @property
    def recordings(self) -> Recordings:
        if self._recordings is None:
            from shared.adapters.vonage_recordings import VonageRecordings

            settings = self.settings
            assert settings.vonage.application_id and settings.vonage.private_key
            self._recordings = VonageRecordings(
                settings.vonage.application_id, settings.vonage.private_key, settings.vonage.api_host
            )
        return self._recordings

    @property
    def http(self) -> HttpClient:
        """The HTTP client for result webhooks and callbacks."""
        if self._http is None:
            import requests

            self._http = requests.Session()
        return self._http

    @property
    def calls(self) -> CallControl:
        if self._calls is None:
            from shared.adapters.vonage_call_control import VonageCallControl

            self._calls = VonageCallControl(self.settings.vonage.api_host)
        return self._calls

    @property
    def queue(self) -> TaskQueue:
        """Where work that must happen after a response goes: nothing runs after it in this process."""
        if self._queue is None:
            settings = self.settings
            if settings.tasks.queue == "cloud-tasks":
                from shared.adapters.cloud_tasks_queue import CloudTasksQueue, CloudTasksTarget

                assert settings.tasks.project and settings.tasks.location
                target = CloudTasksTarget(
                    settings.tasks.project,
                    settings.tasks.location,
                    settings.tasks.queue_name,
                    settings.tasks.url,
                    settings.tasks.service_account or "",
                    settings.tasks.audience or settings.tasks.url,
                )
                self._queue = CloudTasksQueue(
                    target, emulator_host=settings.tasks.emulator_host, trace=trace_context.get
                )
            else:
                from shared.adapters.local_task_queue import LocalTaskQueue

                self._queue = LocalTaskQueue(self.store, trace=trace_context.get)
        return self._queue


def build_services(settings: Settings, store: BlobStore | None = None) -> Services:
    """Services for `settings`; tests inject a store, deployments let it be built lazily."""
    return Services(settings, store)


@functools.cache
def services_from_env() -> Services:
    """The process-wide services of a deployed function, read from the environment once."""
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_level, settings.tasks.project)
    return build_services(settings)
