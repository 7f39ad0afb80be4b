"""The end-to-end tests' platform: a deck on the test module's ROUTES, its calls to the module's
MAILBOX; a module that needs more (a receiver, its own routes per test) defines its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deck import DeckFactory, deck_fixture


@pytest.fixture
def deck_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[DeckFactory]:
    yield from deck_fixture(tmp_path, request.module.ROUTES, request.module.MAILBOX)
