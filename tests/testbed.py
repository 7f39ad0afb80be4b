"""What the tests share: the speech fixtures, the test secrets, Cloud Storage's failures as the
tests put them in front of the emulator, and one Cloud Function as functions-framework serves
it, driven in-process."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from functions_framework import create_app

from shared.adapters.gcs_blob_store import StorageRetry
from tests.faultproxy import FaultRates
from tests.servers import ROOT

DATA = Path(__file__).parent / "data"
SECRET = "test-signature-secret"
TOKEN_SECRET = "test-stream-token-secret"
FUNCTIONS_SOURCE = str(ROOT / "functions" / "main.py")
# Cloud Storage failing often: every fifth request answered with an error, every tenth applied
# and its answer lost, some answers late.
CONTRACT_FAULTS = FaultRates(errors=0.2, resets=0.1, slow=0.05, slow_seconds=(0.01, 0.05))
# Retries fast enough for tests; the deadline still far off.
QUICK_RETRY = StorageRetry(initial=0.01, maximum=0.05, deadline=20.0)
# What voicemail_outage.wav says, with word times close to the recording's.
OUTAGE_WORDS = [
    ("hi", 0.45, 0.7),
    ("this", 0.7, 0.9),
    ("is", 0.9, 1.0),
    ("sam", 1.0, 1.4),
    ("from", 1.4, 1.6),
    ("operations", 1.6, 2.3),
    ("the", 2.9, 3.0),
    ("production", 3.0, 3.6),
    ("database", 3.6, 4.2),
    ("is", 4.2, 4.4),
    ("down", 4.4, 4.9),
    ("please", 7.2, 7.5),
    ("call", 7.5, 7.8),
    ("me", 7.8, 7.9),
    ("back", 7.9, 8.3),
]


def platform_env(folder: Path, application: str = "standin-application") -> dict[str, str]:
    """The settings of a local platform on `folder`: its storage, the test secrets, and the routes
    file and Vonage application key written there."""
    return {
        "LOCAL_STORAGE_DIR": str(folder / "data"),
        "STREAM_TOKEN_SECRET": TOKEN_SECRET,
        "VONAGE_SIGNATURE_SECRET": SECRET,
        "ROUTES_FILE": str(folder / "routes.yaml"),
        "VONAGE_APPLICATION_ID": application,
        "VONAGE_PRIVATE_KEY": str(folder / "application.pem"),
    }


def routes_env(folder: Path, routes: str) -> dict[str, str]:
    """What start-up reads to check a routes file: `routes` written into `folder`, and a Vonage
    application (a key that is never used)."""
    path = folder / "routes.yaml"
    path.write_text(routes, encoding="utf-8")
    return {
        "ROUTES_FILE": str(path),
        "VONAGE_APPLICATION_ID": "app",
        "VONAGE_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----",
    }


def client(target: str) -> FlaskClient:
    """One Cloud Function as functions-framework serves it, driven in-process."""
    app: Flask = create_app(target=target, source=FUNCTIONS_SOURCE)
    return app.test_client()
