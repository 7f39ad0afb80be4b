"""moto as a real AWS stand-in on loopback: start it once, point boto3 at it, reset it between tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.servers import BIN, free_port, running

REGION = "us-east-1"
TRANSCRIPTION_JOB = "transcribe::transcriptionjob"
VOCABULARY = "transcribe::vocabulary"


@contextmanager
def moto_server(log: Path) -> Iterator[str]:
    """`moto_server` in a subprocess on a free port; yields its URL and stops it afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with running(command, {}, f"{url}/moto-api/", log):
        yield url


def reset(url: str) -> None:
    """Wipe every resource and restore Transcribe's step-per-call state machines (jobs, vocabularies)."""
    requests.post(f"{url}/moto-api/reset", timeout=5).raise_for_status()
    for model in (TRANSCRIPTION_JOB, VOCABULARY):
        requests.post(
            f"{url}/moto-api/state-manager/unset-transition", json={"model_name": model}, timeout=5
        ).raise_for_status()


def _transition(url: str, model: str, progression: dict[str, str | int]) -> None:
    """How moto moves every resource of `model` through its states from now on."""
    requests.post(
        f"{url}/moto-api/state-manager/set-transition",
        json={"model_name": model, "transition": progression},
        timeout=5,
    ).raise_for_status()


def make_vocabularies_ready_immediately(url: str) -> None:
    """Make every custom vocabulary READY as soon as it is created."""
    _transition(url, VOCABULARY, {"progression": "immediate"})


def finish_jobs_immediately(url: str) -> None:
    """Make every transcription job COMPLETED on its first GetTranscriptionJob."""
    _transition(url, TRANSCRIPTION_JOB, {"progression": "immediate"})


def step_jobs_each_read(url: str) -> None:
    """Move every transcription job one step (QUEUED, IN_PROGRESS, COMPLETED) per GetTranscriptionJob."""
    _transition(url, TRANSCRIPTION_JOB, {"progression": "manual", "times": 1})


def point_boto3_at(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 reads these itself: every client built afterwards talks to moto with fake credentials."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


def amazon_transcript(job_name: str, audio: bytes, media_format: str, store_folder: Path) -> dict[str, Any]:
    """What Amazon Transcribe would write for a 2-channel job, in its documented shape
    (channel_labels, items, punctuation), with the words and times the offline engine hears in
    each channel of `audio`: moto accepts jobs but recognises nothing."""
    from shared.adapters.local_blob_store import LocalBlobStore
    from shared.adapters.pocketsphinx_transcriber import PocketsphinxTranscriber
    from shared.core.ports import TranscriptionJob

    store = LocalBlobStore(store_folder)
    store.write(f"audio.{media_format}", audio)
    offline = PocketsphinxTranscriber(store).start(
        TranscriptionJob(job_name, f"audio.{media_format}", media_format, "en-US", 2)
    )
    assert offline.document is not None, offline.failure
    channels: list[dict[str, Any]] = []
    for channel in offline.document["channels"]:
        label = f"ch_{channel['channel']}"
        items: list[dict[str, Any]] = [
            {
                "type": "pronunciation",
                "start_time": f"{word['start']:.2f}",
                "end_time": f"{word['end']:.2f}",
                "alternatives": [{"content": word["word"], "confidence": f"{word['confidence']:.3f}"}],
            }
            for word in channel["words"]
        ]
        if items:
            items.append({"type": "punctuation", "alternatives": [{"content": ".", "confidence": "0.0"}]})
        channels.append({"channel_label": label, "items": items})
    merged = sorted(
        (
            {**item, "channel_label": c["channel_label"]}
            for c in channels
            for item in c["items"]
            if "start_time" in item
        ),
        key=lambda item: float(item["start_time"]),
    )
    text = " ".join(item["alternatives"][0]["content"] for item in merged)
    return {
        "jobName": job_name,
        "accountId": "111122223333",
        "status": "COMPLETED",
        "results": {
            "transcripts": [{"transcript": text}],
            "items": merged,
            "channel_labels": {"number_of_channels": len(channels), "channels": channels},
        },
    }


TRANSCRIBE_BUCKET = "tapedeck-transcribe-staging"
TRANSCRIPTION_API_KEY = "eventbridge-api-key"


def aws_transcriber_env(url: str) -> dict[str, str]:
    """Settings of a server that transcribes on moto: the staging bucket is made, jobs finish at once."""
    import boto3

    boto3.client("s3", region_name=REGION).create_bucket(Bucket=TRANSCRIBE_BUCKET)
    finish_jobs_immediately(url)
    return {
        "TRANSCRIBER": "aws",
        "TRANSCRIBE_BUCKET": TRANSCRIBE_BUCKET,
        "TRANSCRIPTION_API_KEY": TRANSCRIPTION_API_KEY,
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }


def started_job(name: str, timeout: float = 20) -> dict[str, Any]:
    """The transcription job once the server has started it."""
    import time

    import boto3

    transcribe = boto3.client("transcribe", region_name=REGION)
    deadline = time.monotonic() + timeout
    while not transcribe.list_transcription_jobs()["TranscriptionJobSummaries"] and time.monotonic() < deadline:
        time.sleep(0.1)
    return dict(transcribe.get_transcription_job(TranscriptionJobName=name)["TranscriptionJob"])


def job_state_change(name: str) -> dict[str, Any]:
    """EventBridge's "Transcribe Job State Change" event for a completed job."""
    return {
        "version": "0",
        "source": "aws.transcribe",
        "detail-type": "Transcribe Job State Change",
        "detail": {"TranscriptionJobName": name, "TranscriptionJobStatus": "COMPLETED"},
    }
