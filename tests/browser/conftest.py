"""The recordings browser as `nox -s serve` runs it, for the tests that do not build their own:
a folder that signs URLs, a clock an hour after the calls, and the loopback client."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from appengine.browser import create_app
from tests.browser.test_pages import NOW
from tests.browser.visitors import Clock, SigningStore, services_on


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
