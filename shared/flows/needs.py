"""One Protocol per service a flow may reach, each declared once; a flow's own Protocol names
the narrow set it needs by composing these (`class EraseServices(HasSettings, HasStore, ...)`).

Name them in the order they are declared here: a Protocol that joins several flows' Protocols
(the task dispatcher's) needs one order of bases that agrees with all of them.
"""

from __future__ import annotations

from typing import Protocol

from shared.config.settings import Settings
from shared.core.ports import BlobStore, CallControl, Messenger, Recordings, TaskQueue, Transcriber
from shared.flows.delivery import HttpClient

__all__ = [
    "HasCalls",
    "HasEngines",
    "HasHttp",
    "HasMessenger",
    "HasQueue",
    "HasRecordings",
    "HasSettings",
    "HasStore",
]


class HasSettings(Protocol):
    @property
    def settings(self) -> Settings: ...


class HasStore(Protocol):
    @property
    def store(self) -> BlobStore: ...


class HasMessenger(Protocol):
    @property
    def messenger(self) -> Messenger: ...


class HasRecordings(Protocol):
    @property
    def recordings(self) -> Recordings: ...


class HasHttp(Protocol):
    @property
    def http(self) -> HttpClient: ...


class HasQueue(Protocol):
    @property
    def queue(self) -> TaskQueue: ...


class HasCalls(Protocol):
    @property
    def calls(self) -> CallControl: ...


class HasEngines(Protocol):
    """The transcription engines, by the name a route's chain gives them."""

    def transcriber_for(self, engine: str) -> Transcriber: ...
