"""Transcriber on Amazon Transcribe (batch): audio staged in S3, results collected once EventBridge says so.

A route's vocabulary becomes an Amazon custom vocabulary, named after its phrases and language
(`<prefix>vocab-<hash>`), created the first time a job needs it. Amazon takes minutes to make
one READY, and tapedeck never waits in a request (nor holds a job's task for that long, which
would hold the voicemail's page too), so a job that finds its vocabulary still PENDING starts
without it and says so in the log; the jobs after it use it once READY. A FAILED vocabulary is
logged and left: its name follows the phrases, so only changed phrases (a new name) try again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from shared.core.errors import BadRequest, Conflict, NotFound
from shared.core.ports import BINARY, BlobStore, Transcript, TranscriptionJob
from shared.core.vocabulary import amazon_phrases, vocabulary_name

__all__ = [
    "MEDIA_FORMATS",
    "PII_ENTITY_TYPES",
    "REDACTION_LANGUAGES",
    "AwsTranscriber",
    "content_redaction",
    "media_key",
    "parse_transcript",
    "transcript_key",
]

log = logging.getLogger(__name__)

# The formats StartTranscriptionJob accepts.
MEDIA_FORMATS = frozenset({"mp3", "mp4", "wav", "flac", "ogg", "amr", "webm", "m4a"})
# Channel identification labels at most two channels (ch_0, ch_1).
MAX_CHANNELS = 2
_CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg"}
_FINISHED = ("COMPLETED", "FAILED")
# The languages batch jobs can redact PII in (Amazon Transcribe developer guide, "Redacting PII in
# your batch job", and its document history for the languages added in May 2026).
REDACTION_LANGUAGES = frozenset({"en-US", "es-US", "fr-FR", "fr-CA", "de-DE", "de-CH", "it-IT", "pt-PT", "pt-BR"})
# Amazon's PII types for each kind a route redacts.
PII_ENTITY_TYPES = {
    "card": ("CREDIT_DEBIT_NUMBER", "CREDIT_DEBIT_CVV", "CREDIT_DEBIT_EXPIRY"),
    "digits": ("PIN", "BANK_ACCOUNT_NUMBER", "BANK_ROUTING"),
    "phone": ("PHONE",),
    "email": ("EMAIL",),
}


def media_key(job_name: str, media_format: str) -> str:
    """Where a job's audio is staged in the staging bucket."""
    return f"media/{job_name}.{media_format}"


def transcript_key(job_name: str) -> str:
    """Where Amazon Transcribe writes a job's transcript in the staging bucket."""
    return f"transcripts/{job_name}.json"


def content_redaction(job: TranscriptionJob) -> dict[str, Any] | None:
    """Amazon's own PII redaction for what the route redacts, where Amazon offers it for the
    language; None otherwise (tapedeck's own redaction runs on the transcript either way)."""
    types = sorted({entity for kind in job.redact for entity in PII_ENTITY_TYPES.get(kind, ())})
    # With languages to identify, only if Amazon redacts in each (the one it hears is not known yet).
    if not types or not REDACTION_LANGUAGES.issuperset(job.languages or (job.language,)):
        return None
    return {"RedactionType": "PII", "RedactionOutput": "redacted", "PiiEntityTypes": types}


def _error_code(err: Exception) -> str:
    response = getattr(err, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


@dataclass(eq=False)
class AwsTranscriber:
    """Amazon Transcribe batch jobs. The S3 and Transcribe clients are built on first use unless injected."""

    store: BlobStore
    staging_bucket: str
    region: str
    job_prefix: str = "tapedeck-"
    s3: Any = None
    transcribe: Any = None
    # Vocabularies seen READY: a READY vocabulary stays so, and need not be asked about again.
    _ready: set[str] = field(default_factory=set, init=False, repr=False)

    @cached_property
    def _s3(self) -> Any:
        return self.s3 if self.s3 is not None else self._boto3_client("s3")

    @cached_property
    def _transcribe(self) -> Any:
        return self.transcribe if self.transcribe is not None else self._boto3_client("transcribe")

    def _boto3_client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=self.region)

    def is_ours(self, job_name: str) -> bool:
        """Whether this deployment named the job; EventBridge rules can match other jobs too."""
        return job_name.startswith(self.job_prefix)

    def start(self, job: TranscriptionJob) -> Transcript | None:
        """Stage the audio in S3 and start the job; a job that already exists is left running."""
        from botocore.exceptions import ClientError

        if not self.is_ours(job.name):
            raise ValueError(f"job name {job.name!r} does not start with {self.job_prefix!r}")
        if job.channels > MAX_CHANNELS:
            raise BadRequest(
                f"Amazon Transcribe channel identification supports {MAX_CHANNELS} channels, "
                f"not {job.channels}: record in mono or stereo"
            )
        if job.media_format not in MEDIA_FORMATS:
            raise BadRequest(f"Amazon Transcribe does not take {job.media_format!r} audio")
        audio = self.store.read(job.audio_key)
        if audio is None:
            raise NotFound(f"no audio at {job.audio_key}")

        key = media_key(job.name, job.media_format)
        content_type = _CONTENT_TYPES.get(job.media_format, BINARY)
        self._s3.put_object(Bucket=self.staging_bucket, Key=key, Body=audio.data, ContentType=content_type)
        request: dict[str, Any] = {
            "TranscriptionJobName": job.name,
            "MediaFormat": job.media_format,
            "Media": {"MediaFileUri": f"s3://{self.staging_bucket}/{key}"},
            "OutputBucketName": self.staging_bucket,
            "OutputKey": transcript_key(job.name),
        }
        settings: dict[str, Any] = {}
        if job.channels == MAX_CHANNELS:
            settings["ChannelIdentification"] = True
        vocabulary = self._ready_vocabulary(job)
        if job.languages:
            # Amazon identifies the language among the route's; a vocabulary (made in the route's
            # own language) then goes with that language in LanguageIdSettings.
            request |= {"IdentifyLanguage": True, "LanguageOptions": list(job.languages)}
            if vocabulary is not None:
                request["LanguageIdSettings"] = {job.language: {"VocabularyName": vocabulary}}
        else:
            request["LanguageCode"] = job.language
            if vocabulary is not None:
                settings["VocabularyName"] = vocabulary
        if settings:
            request["Settings"] = settings
        redaction = content_redaction(job)
        if redaction is not None:
            request["ContentRedaction"] = redaction
        try:
            response = self._transcribe.start_transcription_job(**request)
        except ClientError as err:
            if _error_code(err) == "ConflictException":
                # Names are deterministic, so this is a retried start of a job already under way.
                log.info("transcription job already exists", extra={"job": job.name})
                return None
            raise
        # The real service answers IN_PROGRESS; moto leaves the status out.
        status = response.get("TranscriptionJob", {}).get("TranscriptionJobStatus")
        log.info("transcription job started", extra={"job": job.name, "status": status, "bytes": len(audio.data)})
        return None

    def _ready_vocabulary(self, job: TranscriptionJob) -> str | None:
        """The name of the job's vocabulary if Amazon has it READY; None without phrases, or while
        it is not (created here if absent). Trouble with it never stops the job."""
        from botocore.exceptions import ClientError

        if not job.vocabulary:
            return None
        name = vocabulary_name(self.job_prefix, job.language, job.vocabulary)
        if name in self._ready:
            return name
        try:
            found = self._vocabulary_state(name, job)
        except ClientError as err:
            log.warning("vocabulary unavailable: job started without it", extra={"job": job.name, "error": str(err)})
            return None
        state = found.get("VocabularyState") or "PENDING"
        if state == "READY":
            self._ready.add(name)
            return name
        extra = {"job": job.name, "vocabulary": name, "state": state, "reason": found.get("FailureReason")}
        log.warning("vocabulary not ready: job started without it", extra=extra)
        return None

    def _vocabulary_state(self, name: str, job: TranscriptionJob) -> dict[str, Any]:
        """GetVocabulary's answer, or CreateVocabulary's for one that was absent."""
        from botocore.exceptions import ClientError

        try:
            return dict(self._transcribe.get_vocabulary(VocabularyName=name))
        except ClientError as err:
            if _error_code(err) not in ("BadRequestException", "NotFoundException"):
                raise
        phrases = amazon_phrases(job.vocabulary)
        try:
            created = self._transcribe.create_vocabulary(
                VocabularyName=name, LanguageCode=job.language, Phrases=phrases
            )
        except ClientError as err:
            if _error_code(err) != "ConflictException":
                raise
            # Another job created it a moment ago.
            return {"VocabularyState": "PENDING"}
        log.info("vocabulary created", extra={"vocabulary": name, "phrases": len(phrases), "language": job.language})
        return dict(created)

    def collect(self, job_name: str) -> Transcript:
        """The finished job's transcript; the staged audio and transcript are deleted once read."""
        from botocore.exceptions import ClientError

        try:
            found = self._transcribe.get_transcription_job(TranscriptionJobName=job_name)
        except ClientError as err:
            if _error_code(err) in ("BadRequestException", "NotFoundException"):
                raise NotFound(f"no transcription job {job_name}") from err
            raise
        details = found.get("TranscriptionJob", {})
        status = details.get("TranscriptionJobStatus")
        if status not in _FINISHED:
            raise Conflict(f"transcription job {job_name} not finished: {status or 'no status yet'}")

        if status == "FAILED":
            transcript = Transcript(job_name, "failed", "", failure=details.get("FailureReason") or "unknown failure")
        else:
            transcript = self._read_transcript(job_name)
            if details.get("IdentifyLanguage") and isinstance(details.get("LanguageCode"), str):
                transcript = replace(transcript, language=details["LanguageCode"])
        self._delete_staged(job_name, details)
        log.info("transcription job collected", extra={"job": job_name, "status": transcript.status})
        return transcript

    def _read_transcript(self, job_name: str) -> Transcript:
        from botocore.exceptions import ClientError

        key = transcript_key(job_name)
        try:
            body = self._s3.get_object(Bucket=self.staging_bucket, Key=key)["Body"].read()
        except ClientError as err:
            if _error_code(err) in ("NoSuchKey", "404"):
                # Transcribe writes the file before reporting COMPLETED, so it was collected already.
                raise NotFound(f"no transcript at s3://{self.staging_bucket}/{key}: collected already?") from err
            raise
        return parse_transcript(job_name, body)

    def _delete_staged(self, job_name: str, details: dict[str, Any]) -> None:
        from botocore.exceptions import ClientError

        keys = [transcript_key(job_name)]
        uri = str(details.get("Media", {}).get("MediaFileUri", ""))
        ours = f"s3://{self.staging_bucket}/"
        if uri.startswith(ours):
            keys.append(uri[len(ours) :])
        try:
            response = self._s3.delete_objects(
                Bucket=self.staging_bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
            )
        except ClientError as err:
            # The bucket's lifecycle rule expires what is left, so the transcript is not lost over this.
            log.warning("staged objects not deleted", extra={"job": job_name, "error": str(err)})
            return
        if response.get("Errors"):
            log.warning("staged objects not deleted", extra={"job": job_name, "errors": response["Errors"]})

    def discard(self, job_name: str) -> int:
        """Delete the job's staged audio and transcript from the staging bucket, and the job from
        Amazon Transcribe (which otherwise keeps its record for 90 days)."""
        from botocore.exceptions import ClientError

        if not self.is_ours(job_name):
            return 0
        removed = 0
        for prefix in (f"media/{job_name}.", transcript_key(job_name)):
            listed = self._s3.list_objects_v2(Bucket=self.staging_bucket, Prefix=prefix)
            for found in listed.get("Contents", []):
                self._s3.delete_object(Bucket=self.staging_bucket, Key=found["Key"])
                removed += 1
        try:
            self._transcribe.delete_transcription_job(TranscriptionJobName=job_name)
        except ClientError as err:
            if _error_code(err) not in ("BadRequestException", "NotFoundException"):
                raise
        else:
            removed += 1
        log.info("transcription job discarded", extra={"job": job_name, "removed": removed})
        return removed


def parse_transcript(job_name: str, body: bytes) -> Transcript:
    """A completed job's transcript file as a Transcript; a malformed file gives a failed one."""
    try:
        document = json.loads(body)
    except ValueError as err:
        return Transcript(job_name, "failed", "", failure=f"malformed transcript: not JSON ({err})")
    results = document.get("results") if isinstance(document, dict) else None
    if not isinstance(results, dict):
        return Transcript(job_name, "failed", "", failure="malformed transcript: no results object")
    transcripts = results.get("transcripts")
    first = transcripts[0] if isinstance(transcripts, list) and transcripts else None
    text = first.get("transcript") if isinstance(first, dict) else None
    # A silent recording gives an empty transcript, which is a result and not a failure.
    return Transcript(job_name, "completed", text if isinstance(text, str) else "", document=document)
