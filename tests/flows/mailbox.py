"""A voicemail mailbox with two owners on FakeServices, and the recording webhook of one message."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from shared.config.routes import parse_routes
from shared.config.settings import Settings, StreamSettings, TranscriptionSettings
from shared.core.call_record import Flow
from shared.core.ports import TranscriptionJob
from shared.core.tokens import sign_caller
from shared.flows.jobs import job_name
from shared.flows.transcription import receive_recording
from tests.fakes import FakeServices
from tests.testbed import DATA, TOKEN_SECRET

__all__ = ["CALLER", "CONVERSATION", "JOB", "LINK", "OWNERS", "SPOKEN", "received", "voicemail_services"]

MAILBOX, CALLER, CONVERSATION = "447700900001", "447700900123", "CON-5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
OWNERS = ("447700900111", "447700900222")
ROUTES = f'"{MAILBOX}":\n  flow: voicemail\n  owner: Sam\n  recipients: ["{OWNERS[0]}", "{OWNERS[1]}"]\n'
RECORDING = "7e2d1c0b-9a8f-4e6d-b5c4-3a2b1c0d9e8f"
URL = f"https://api.nexmo.com/v1/files/{RECORDING}"
JOB = job_name(Flow.VOICEMAIL, RECORDING)
SPOKEN = "the production database is down, please call me back"
LINK = re.compile(r"https://fn\.example\.test/link\?id=[\w-]{16}")


def voicemail_services(tmp_path: Path, engine: str = "offline", route: str = "") -> FakeServices:
    """The mailbox transcribed by `engine` (TRANSCRIBER), with `route`'s lines added to its entry."""
    settings = Settings(
        stream=StreamSettings(token_secret=TOKEN_SECRET),
        public_url="https://fn.example.test",
        routes=parse_routes(ROUTES + route, "routes.yaml", default_flow="stream"),
        transcription=TranscriptionSettings(engine=engine),
    )
    services = FakeServices.on(tmp_path, settings)
    services.recordings.files[URL] = (DATA / "voicemail_outage.wav").read_bytes()
    return services


def recording_webhook() -> dict[str, Any]:
    return {
        "recording_url": URL,
        "size": 123_456,
        "recording_uuid": RECORDING,
        "conversation_uuid": CONVERSATION,
        "timestamp": "2026-11-30T09:15:40.426Z",
        "caller": CALLER,
        "to": MAILBOX,
        "sig": sign_caller(TOKEN_SECRET, CONVERSATION, f"{CALLER}|{MAILBOX}"),
    }


def received(services: FakeServices) -> TranscriptionJob:
    """What a recording webhook asks to transcribe, once its message is stored."""
    job = receive_recording(services, recording_webhook(), services.clock())
    assert job is not None and job.name == JOB
    return job
