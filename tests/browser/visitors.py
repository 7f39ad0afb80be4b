"""Who opens the recordings browser in its tests: the local user, or an IAP account as viewer or
admin; the clock it sees; and a local folder that signs URLs as Cloud Storage would."""

from __future__ import annotations

import re
from pathlib import Path

import flask
from flask.testing import FlaskClient

from appengine.browser import Visitor, browser_blueprint
from shared.adapters.local_blob_store import LocalBlobStore
from shared.config.settings import Settings
from shared.runtime.services import Services
from tests.testbed import TOKEN_SECRET

__all__ = [
    "ADMIN",
    "NOW",
    "SAME_ORIGIN",
    "TOKEN",
    "VIEWER",
    "Clock",
    "SigningStore",
    "services_on",
    "signed_in",
    "text_of",
]

NOW = 1796029200.0  # 2026-11-30 09:00 UTC
# What a browser sends with a form posted from the pages (the test client's host is `localhost`).
SAME_ORIGIN = {"Origin": "http://localhost"}
# A form's token: its expiry, then its signature.
TOKEN = r'name="token" value="([0-9]+\.[0-9a-f]{64})"'


def text_of(html: bytes) -> str:
    """A page's words, without its markup."""
    return " ".join(re.sub(r"<[^>]+>", " ", html.decode()).split())


class Clock:
    """The time the browser sees, moved on by a test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class SigningStore(LocalBlobStore):
    """A local folder that signs URLs as Cloud Storage would, and remembers what it signed."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.signed: list[str] = []

    def signed_url(self, key: str, ttl_seconds: int, download_as: str | None = None) -> str:
        self.signed.append(key)
        return f"https://storage.example/{key}?X-Goog-Signature=abc"


def services_on(tmp_path: Path, store: SigningStore, clock: Clock) -> Services:
    env = {"LOCAL_STORAGE_DIR": str(tmp_path / "data"), "STREAM_TOKEN_SECRET": TOKEN_SECRET}
    return Services(Settings.from_env(env), store=store, clock=clock)


def signed_in(tmp_path: Path, store: SigningStore, clock: Clock, visitor: Visitor) -> FlaskClient:
    """The pages as IAP's verifier leaves them, for `visitor`: the verifier is the app's own port."""
    services = services_on(tmp_path, store, clock)
    app = flask.Flask("signed-in")
    app.register_blueprint(browser_blueprint(services, lambda header: visitor))
    return app.test_client()


VIEWER = Visitor("val@example.com", admin=False)
ADMIN = Visitor("alice@example.com", admin=True)
