"""moto as a real AWS stand-in on loopback: start it once, point boto3 at it, reset it between tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.servers import BIN, free_port, running

REGION = "us-east-1"
TRANSCRIPTION_JOB = "transcribe::transcriptionjob"


@contextmanager
def moto_server(log: Path) -> Iterator[str]:
    """`moto_server` in a subprocess on a free port; yields its URL and stops it afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with running(command, {}, f"{url}/moto-api/", log):
        yield url


def reset(url: str) -> None:
    """Wipe every resource and restore Transcribe's step-per-call state machine."""
    requests.post(f"{url}/moto-api/reset", timeout=5).raise_for_status()
    requests.post(
        f"{url}/moto-api/state-manager/unset-transition", json={"model_name": TRANSCRIPTION_JOB}, timeout=5
    ).raise_for_status()


def finish_jobs_immediately(url: str) -> None:
    """Make every transcription job COMPLETED on its first GetTranscriptionJob."""
    requests.post(
        f"{url}/moto-api/state-manager/set-transition",
        json={"model_name": TRANSCRIPTION_JOB, "transition": {"progression": "immediate"}},
        timeout=5,
    ).raise_for_status()


def point_boto3_at(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 reads these itself: every client built afterwards talks to moto with fake credentials."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
