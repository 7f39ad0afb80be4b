"""The recordings browser as `nox -s serve` runs it, for the tests that do not build their own:
a folder that signs URLs, a clock an hour after the calls, and the loopback client; and the
browser on a plain folder, serving its audio itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from appengine.browser import create_app
from shared.config.settings import Settings
from shared.runtime.services import Services
from tests.browser.visitors import NOW, Clock, SigningStore, services_on
from tests.testbed import TOKEN_SECRET


@pytest.fixture
def store(tmp_path: Path) -> SigningStore:
    return SigningStore(tmp_path / "data")


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW + 3600)


@pytest.fixture
def local(tmp_path: Path, store: SigningStore, clock: Clock) -> FlaskClient:
    """The browser as `nox -s serve` runs it: loopback only, the local user its admin."""
    services = services_on(tmp_path, store, clock)
    return create_app(services.settings, services).test_client()


@pytest.fixture
def browser(tmp_path: Path) -> FlaskClient:
    """The browser on the same folder as `store`, building its own store, which signs nothing."""
    env = {"LOCAL_STORAGE_DIR": str(tmp_path / "data"), "STREAM_TOKEN_SECRET": TOKEN_SECRET}
    services = Services(Settings.from_env(env), clock=lambda: NOW + 3600)
    return create_app(services.settings, services).test_client()
