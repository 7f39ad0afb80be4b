"""AwsTranscriber against moto running as a real server on loopback."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from shared.adapters.aws_transcriber import AwsTranscriber
from shared.adapters.local_blob_store import LocalBlobStore
from shared.core.errors import BadRequest, Conflict, NotFound
from shared.core.ports import TranscriptionJob
from shared.core.vocabulary import vocabulary_name
from tests.aws import REGION, finish_jobs_immediately, make_vocabularies_ready_immediately, step_jobs_each_read

# Real servers or emulators on loopback, started by the tests.
pytestmark = pytest.mark.slow

BUCKET = "tapedeck-staging-test"
AUDIO_KEY = "calls/CON-7f3a/message.mp3"
AUDIO = b"ID3\x04\x00fake mp3 frames"
JOB = TranscriptionJob("tapedeck-CON-7f3a", AUDIO_KEY, "mp3", "en-US", channels=2)
# A transcript file as Amazon Transcribe writes it, channel identification on (reference notes, section 3).
TRANSCRIPT = {
    "jobName": JOB.name,
    "accountId": "123456789012",
    "status": "COMPLETED",
    "results": {
        "transcripts": [{"transcript": "Hello, it's Ana. Hi Ana."}],
        "items": [
            {
                "type": "pronunciation",
                "channel_label": "ch_0",
                "start_time": "0.40",
                "end_time": "0.71",
                "alternatives": [{"content": "Hello", "confidence": "0.998"}],
            },
            {"type": "punctuation", "alternatives": [{"content": ",", "confidence": "0.0"}]},
        ],
        "channel_labels": {
            "number_of_channels": 2,
            "channels": [
                {
                    "channel_label": "ch_0",
                    "items": [
                        {
                            "type": "pronunciation",
                            "start_time": "0.40",
                            "end_time": "0.71",
                            "alternatives": [{"content": "Hello", "confidence": "0.998"}],
                        }
                    ],
                },
                {
                    "channel_label": "ch_1",
                    "items": [
                        {
                            "type": "pronunciation",
                            "start_time": "2.10",
                            "end_time": "2.32",
                            "alternatives": [{"content": "Hi", "confidence": "0.951"}],
                        }
                    ],
                },
            ],
        },
    },
}


@pytest.fixture
def s3(aws: str) -> Any:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def transcriber(s3: Any, tmp_path: Path) -> AwsTranscriber:
    store = LocalBlobStore(tmp_path / "store")
    store.write(AUDIO_KEY, AUDIO, "audio/mpeg")
    # No clients injected: the adapter builds its own, as it does when deployed.
    return AwsTranscriber(store, BUCKET, REGION)


def staged(s3: Any) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def put_transcript(s3: Any, body: bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key=f"transcripts/{JOB.name}.json", Body=body)


# --- AwsTranscriber.start ------------------------------------------------------------------------


def test_start_stages_the_audio_and_starts_a_channel_identified_job(transcriber: AwsTranscriber, s3: Any) -> None:
    assert transcriber.start(JOB) is None

    assert s3.get_object(Bucket=BUCKET, Key="media/tapedeck-CON-7f3a.mp3")["Body"].read() == AUDIO
    transcribe = boto3.client("transcribe", region_name=REGION)
    # moto moves one step per call (QUEUED, IN_PROGRESS, COMPLETED) and names the transcript only on
    # that last step; its "immediate" progression skips the step and never names it.
    for _ in range(3):
        details = transcribe.get_transcription_job(TranscriptionJobName=JOB.name)["TranscriptionJob"]
    assert details["TranscriptionJobStatus"] == "COMPLETED"
    assert details["Media"]["MediaFileUri"] == f"s3://{BUCKET}/media/tapedeck-CON-7f3a.mp3"
    assert details["LanguageCode"] == "en-US"
    assert details["Settings"]["ChannelIdentification"] is True
    assert details["Transcript"]["TranscriptFileUri"].endswith(f"/{BUCKET}/transcripts/tapedeck-CON-7f3a.json")


def test_mono_jobs_do_not_ask_for_channel_identification(transcriber: AwsTranscriber) -> None:
    transcriber.start(TranscriptionJob(JOB.name, AUDIO_KEY, "mp3", "en-US"))
    job = boto3.client("transcribe", region_name=REGION).get_transcription_job(TranscriptionJobName=JOB.name)
    assert not job["TranscriptionJob"]["Settings"].get("ChannelIdentification")


def test_starting_a_job_twice_is_not_an_error(transcriber: AwsTranscriber) -> None:
    assert transcriber.start(JOB) is None
    assert transcriber.start(JOB) is None


def test_more_than_two_channels_is_refused_before_anything_is_staged(transcriber: AwsTranscriber, s3: Any) -> None:
    with pytest.raises(BadRequest, match="supports 2 channels"):
        transcriber.start(TranscriptionJob(JOB.name, AUDIO_KEY, "mp3", "en-US", channels=3))
    assert staged(s3) == []


def test_a_name_without_the_prefix_is_refused(transcriber: AwsTranscriber) -> None:
    assert transcriber.is_ours("tapedeck-x") and not transcriber.is_ours("other-x")
    with pytest.raises(ValueError, match="tapedeck-"):
        transcriber.start(TranscriptionJob("CON-7f3a", AUDIO_KEY, "mp3", "en-US"))


def test_missing_audio_is_not_found(transcriber: AwsTranscriber) -> None:
    with pytest.raises(NotFound):
        transcriber.start(TranscriptionJob(JOB.name, "calls/nobody/message.mp3", "mp3", "en-US"))


# --- AwsTranscriber.collect ----------------------------------------------------------------------


def test_collect_returns_the_text_and_document_then_deletes_the_staged_objects(
    transcriber: AwsTranscriber, s3: Any, aws: str
) -> None:
    finish_jobs_immediately(aws)
    transcriber.start(JOB)
    put_transcript(s3, json.dumps(TRANSCRIPT).encode())

    transcript = transcriber.collect(JOB.name)

    assert transcript.status == "completed"
    assert transcript.text == "Hello, it's Ana. Hi Ana."
    assert transcript.document == TRANSCRIPT
    assert transcript.failure is None
    assert staged(s3) == []


def test_a_silent_recording_gives_an_empty_completed_transcript(transcriber: AwsTranscriber, s3: Any, aws: str) -> None:
    finish_jobs_immediately(aws)
    transcriber.start(JOB)
    put_transcript(s3, json.dumps({"jobName": JOB.name, "results": {"transcripts": [{"transcript": ""}]}}).encode())
    transcript = transcriber.collect(JOB.name)
    assert (transcript.status, transcript.text) == ("completed", "")


@pytest.mark.parametrize(
    "body",
    [b"<html>not json</html>", b'{"jobName": "tapedeck-CON-7f3a"}', b"[]"],
    ids=["not-json", "no-results", "list"],
)
def test_a_malformed_transcript_file_gives_a_failed_transcript(
    transcriber: AwsTranscriber, s3: Any, aws: str, body: bytes
) -> None:
    finish_jobs_immediately(aws)
    transcriber.start(JOB)
    put_transcript(s3, body)

    transcript = transcriber.collect(JOB.name)

    assert transcript.status == "failed"
    assert transcript.failure is not None and transcript.failure.startswith("malformed transcript")
    assert staged(s3) == []


def test_collect_before_the_job_finishes_is_a_conflict(transcriber: AwsTranscriber, s3: Any) -> None:
    transcriber.start(JOB)
    with pytest.raises(Conflict, match="not finished"):
        transcriber.collect(JOB.name)  # moto's first answer is QUEUED
    assert staged(s3) == ["media/tapedeck-CON-7f3a.mp3"]


def test_collect_of_an_unknown_job_is_not_found(transcriber: AwsTranscriber) -> None:
    with pytest.raises(NotFound):
        transcriber.collect("tapedeck-nobody")


def test_collecting_twice_is_not_found_the_second_time(transcriber: AwsTranscriber, s3: Any, aws: str) -> None:
    finish_jobs_immediately(aws)
    transcriber.start(JOB)
    put_transcript(s3, json.dumps(TRANSCRIPT).encode())
    transcriber.collect(JOB.name)
    with pytest.raises(NotFound, match="collected already"):
        transcriber.collect(JOB.name)


class FailedJobs:
    """Transcribe where every job has failed: moto never reaches FAILED."""

    def get_transcription_job(self, TranscriptionJobName: str) -> dict[str, Any]:
        return {
            "TranscriptionJob": {
                "TranscriptionJobName": TranscriptionJobName,
                "TranscriptionJobStatus": "FAILED",
                "FailureReason": "The media file length is too small.",
                "Media": {"MediaFileUri": f"s3://{BUCKET}/media/{TranscriptionJobName}.mp3"},
            }
        }


def test_a_failed_job_gives_its_reason_and_deletes_the_staged_audio(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key=f"media/{JOB.name}.mp3", Body=AUDIO)
    transcriber = AwsTranscriber(LocalBlobStore(tmp_path), BUCKET, REGION, s3=s3, transcribe=FailedJobs())

    transcript = transcriber.collect(JOB.name)

    assert (transcript.status, transcript.text) == ("failed", "")
    assert transcript.failure == "The media file length is too small."
    assert staged(s3) == []


# --- a route's vocabulary ------------------------------------------------------------------------

PHRASES = ("Tapedeck", "Kubernetes", "Sam O'Neil")
VOCABULARY_JOB = replace(JOB, name="tapedeck-CON-8c1d", language="en-GB", vocabulary=PHRASES)


def vocabulary_phrases(moto: str, name: str) -> list[str]:
    """The phrases moto holds for a vocabulary, from its own record of what was created."""
    data = requests.get(f"{moto}/moto-api/data.json", timeout=5).json()
    [found] = [v for v in data["transcribe"]["FakeVocabulary"] if v["vocabulary_name"] == name]
    return list(found["phrases"])


def job_settings(name: str) -> dict[str, Any]:
    found = boto3.client("transcribe", region_name=REGION).get_transcription_job(TranscriptionJobName=name)
    return dict(found["TranscriptionJob"])


def test_a_ready_vocabulary_is_created_from_the_route_and_named_in_the_job(
    transcriber: AwsTranscriber, aws: str
) -> None:
    make_vocabularies_ready_immediately(aws)
    assert transcriber.start(VOCABULARY_JOB) is None

    name = vocabulary_name("tapedeck-", "en-GB", PHRASES)
    vocabulary = boto3.client("transcribe", region_name=REGION).get_vocabulary(VocabularyName=name)
    assert (vocabulary["LanguageCode"], vocabulary["VocabularyState"]) == ("en-GB", "READY")
    # Amazon's list vocabulary: the words of a phrase joined by hyphens.
    assert vocabulary_phrases(aws, name) == ["Tapedeck", "Kubernetes", "Sam-O'Neil"]
    started = job_settings(VOCABULARY_JOB.name)
    assert started["LanguageCode"] == "en-GB"
    assert started["Settings"] == {"ChannelIdentification": True, "VocabularyName": name}


def test_a_job_starts_without_its_vocabulary_until_amazon_has_it_ready(
    transcriber: AwsTranscriber, caplog: pytest.LogCaptureFixture
) -> None:
    """moto's vocabulary is PENDING once asked about after its creation, READY the time after."""
    name = vocabulary_name("tapedeck-", "en-GB", PHRASES)
    names = [f"tapedeck-CON-{n}" for n in ("a1", "a2", "a3", "a4")]
    for job_name in names:
        assert transcriber.start(replace(VOCABULARY_JOB, name=job_name)) is None

    used = [job_settings(job_name)["Settings"].get("VocabularyName") for job_name in names]
    assert used == [None, None, name, name]
    waiting = [r for r in caplog.records if r.getMessage() == "vocabulary not ready: job started without it"]
    assert [r.__dict__["job"] for r in waiting] == names[:2]
    assert all(r.__dict__["vocabulary"] == name for r in waiting)


def test_a_job_without_phrases_creates_no_vocabulary(transcriber: AwsTranscriber) -> None:
    transcriber.start(JOB)
    assert boto3.client("transcribe", region_name=REGION).list_vocabularies()["Vocabularies"] == []
    assert "VocabularyName" not in job_settings(JOB.name)["Settings"]


# --- a route's languages -------------------------------------------------------------------------


def test_a_route_with_languages_asks_amazon_to_identify_one_and_the_transcript_records_it(
    transcriber: AwsTranscriber, s3: Any, aws: str
) -> None:
    """moto identifies the first of the LanguageOptions as its job goes IN_PROGRESS (one step per
    GetTranscriptionJob here); botocore checks the request's shape (LanguageIdSettings included)
    against Amazon's own model before it is sent."""
    make_vocabularies_ready_immediately(aws)
    step_jobs_each_read(aws)
    asked = replace(JOB, language="en-US", languages=("es-US", "en-US"), vocabulary=PHRASES)
    transcriber.start(asked)

    started = job_settings(JOB.name)
    assert started["IdentifyLanguage"] is True
    assert started["LanguageOptions"] == ["es-US", "en-US"]
    # The vocabulary is made in the route's own language.
    name = vocabulary_name("tapedeck-", "en-US", PHRASES)
    assert boto3.client("transcribe", region_name=REGION).get_vocabulary(VocabularyName=name)["LanguageCode"] == "en-US"
    put_transcript(s3, json.dumps(TRANSCRIPT).encode())
    # moto's next steps: a few reads on, the job is COMPLETED.
    assert "COMPLETED" in [job_settings(JOB.name)["TranscriptionJobStatus"] for _ in range(4)]
    assert transcriber.collect(JOB.name).language == "es-US"


def test_a_job_without_languages_names_its_language_and_identifies_none(
    transcriber: AwsTranscriber, s3: Any, aws: str
) -> None:
    finish_jobs_immediately(aws)
    transcriber.start(JOB)
    started = job_settings(JOB.name)
    assert started["LanguageCode"] == JOB.language and "IdentifyLanguage" not in started
    put_transcript(s3, json.dumps(TRANSCRIPT).encode())
    assert transcriber.collect(JOB.name).language is None
