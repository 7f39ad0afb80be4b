"""What the tests share: the speech fixtures, the test secrets, and one Cloud Function as
functions-framework serves it, driven in-process."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from functions_framework import create_app

from tests.servers import ROOT

DATA = Path(__file__).parent / "data"
SECRET = "test-signature-secret"
TOKEN_SECRET = "test-stream-token-secret"
FUNCTIONS_SOURCE = str(ROOT / "functions" / "main.py")


def client(target: str) -> FlaskClient:
    """One Cloud Function as functions-framework serves it, driven in-process."""
    app: Flask = create_app(target=target, source=FUNCTIONS_SOURCE)
    return app.test_client()
