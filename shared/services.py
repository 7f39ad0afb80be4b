"""The composition root: services built from settings, each created on first use."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

from shared.logs import configure_logging
from shared.ports import BlobStore
from shared.settings import Settings

__all__ = ["Services", "build_services", "services_from_env"]


@dataclass
class Services:
    settings: Settings
    _store: BlobStore | None = field(default=None, repr=False)

    @property
    def store(self) -> BlobStore:
        if self._store is None:
            if self.settings.storage == "gcs":
                from shared.adapters.gcs_blob_store import GcsBlobStore

                assert self.settings.gcs_bucket
                self._store = GcsBlobStore(self.settings.gcs_bucket)
            else:
                from shared.adapters.local_blob_store import LocalBlobStore

                self._store = LocalBlobStore(self.settings.local_storage_dir)
        return self._store


def build_services(settings: Settings, store: BlobStore | None = None) -> Services:
    """Services for `settings`; tests inject a store, deployments let it be built lazily."""
    return Services(settings, store)


@functools.cache
def services_from_env() -> Services:
    """The process-wide services of a deployed function, read from the environment once."""
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_level)
    return build_services(settings)
