"""The one typed settings object, and the only reader of the environment."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shared.config.routes import FLOWS, Routes, load_routes
from shared.core.errors import ConfigError

__all__ = ["SECRET_NAMES", "STREAM_RATES", "DeliveryPolicy", "Settings", "secret_id"]

STREAM_RATES = (8000, 16000, 24000)
# Settings that are secrets: deployed, they live in Secret Manager, never in a plain variable.
SECRET_NAMES = (
    "VONAGE_PRIVATE_KEY",
    "VONAGE_SIGNATURE_SECRET",
    "STREAM_TOKEN_SECRET",
    "CALLBACK_SECRET",
    "PROMPT_API_KEY",
    "TRANSCRIPTION_API_KEY",
    "VONAGE_API_SECRET",
)


def secret_id(name: str) -> str:
    """The Secret Manager secret holding a setting: `STREAM_TOKEN_SECRET` → `tapedeck-stream-token-secret`."""
    return "tapedeck-" + name.lower().replace("_", "-")


def _missing(name: str) -> str:
    """How to name a missing setting: a secret also by the Secret Manager secret it comes from."""
    return f"{name} (Secret Manager secret {secret_id(name)})" if name in SECRET_NAMES else name


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Cloud Storage needs resumable chunks in multiples of 256 KiB; parts of the same size keep one rule.
_CHUNK_UNIT = 256 * 1024


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard to try: attempts in all and the first backoff (doubled each time), which are the task
    queue's retry settings, and the timeout of one request."""

    attempts: int = 5
    backoff: float = 2.0
    timeout: float = 10.0
    # Local development only: allow http:// and private or loopback addresses.
    allow_private: bool = False


@dataclass(frozen=True)
class Settings:
    """Everything tapedeck reads from the environment, validated once at start-up."""

    storage: str = "local"
    local_storage_dir: Path = Path("./data")
    gcs_bucket: str | None = None
    public_url: str = "http://localhost:8080"
    recorder_url: str = "ws://localhost:8080/socket"
    stream_rate: int = 16000
    greeting: str = "Hello. This call is recorded."
    vonage_signature_secret: str | None = None
    stream_token_secret: str = field(default="", repr=False)
    stream_token_ttl: int = 300
    upload_chunk_bytes: int = _CHUNK_UNIT
    log_level: str = "INFO"
    stream_token_secret_generated: bool = False
    routes: Routes = field(default_factory=Routes)
    transcriber: str = "offline"
    messenger: str = "outbox"
    vonage_application_id: str | None = None
    vonage_private_key: str | None = field(default=None, repr=False)
    vonage_api_key: str | None = None
    vonage_api_secret: str | None = field(default=None, repr=False)
    vonage_api_host: str = "api.nexmo.com"
    vonage_rest_host: str = "rest.nexmo.com"
    sms_from: str = "tapedeck"
    transcribe_bucket: str | None = None
    aws_region: str = "us-east-1"
    transcription_api_key: str | None = field(default=None, repr=False)
    signed_url_ttl: int = 900
    link_ttl_days: int = 30
    callback_secret: str = field(default="", repr=False)
    callback_attempts: int = 5
    callback_backoff: float = 2.0
    allow_private_callbacks: bool = False
    prompt_api_key: str | None = field(default=None, repr=False)
    prompt_ttl_days: int = 7
    prompt_input_timeout: int = 8
    prompt_hangup_grace: float = 5.0
    task_queue: str = "local"
    tasks_url: str = "http://localhost:8080/tasks"
    tasks_project: str | None = None
    tasks_location: str | None = None
    tasks_queue_name: str = "tapedeck"
    tasks_service_account: str | None = None
    tasks_audience: str | None = None
    tasks_emulator_host: str | None = None

    @property
    def local_queue_key(self) -> str:
        """What the embedded queue shows the tasks function: derived from the stream-token secret,
        which every local process of one deployment shares."""
        import hashlib
        import hmac

        return hmac.new(self.stream_token_secret.encode(), b"local-task-queue", hashlib.sha256).hexdigest()

    @property
    def delivery_policy(self) -> DeliveryPolicy:
        """How result webhooks and callbacks are sent."""
        return DeliveryPolicy(self.callback_attempts, self.callback_backoff, allow_private=self.allow_private_callbacks)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read and check every variable; a bad or missing one raises ConfigError naming it."""
        storage = _choice(env, "STORAGE", ("local", "gcs"), "local")
        bucket = env.get("GCS_BUCKET") or None
        if storage == "gcs" and not bucket:
            raise ConfigError("GCS_BUCKET is required when STORAGE=gcs")
        token_secret = env.get("STREAM_TOKEN_SECRET", "")
        if not token_secret:
            if storage == "gcs":
                raise ConfigError(f"{_missing('STREAM_TOKEN_SECRET')} is required when STORAGE=gcs")
            # One local process both mints and checks tokens, so a per-process secret is enough.
            token_secret = secrets.token_urlsafe(32)
        chunk = _integer(env, "UPLOAD_CHUNK_BYTES", _CHUNK_UNIT)
        if chunk <= 0 or chunk % _CHUNK_UNIT:
            raise ConfigError(f"UPLOAD_CHUNK_BYTES must be a positive multiple of {_CHUNK_UNIT}, got {chunk}")
        ttl = _integer(env, "STREAM_TOKEN_TTL", 300)
        if not 10 <= ttl <= 3600:
            raise ConfigError(f"STREAM_TOKEN_TTL must be between 10 and 3600 seconds, got {ttl}")
        rate = _integer(env, "STREAM_RATE", 16000)
        if rate not in STREAM_RATES:
            raise ConfigError(f"STREAM_RATE must be one of {STREAM_RATES}, got {rate}")
        greeting = env.get("GREETING", cls.greeting)
        if not 0 < len(greeting) <= 1500:
            raise ConfigError("GREETING must be 1 to 1500 characters (Vonage's talk limit)")
        vonage = _vonage_settings(env)
        routes = load_routes(
            Path(env["ROUTES_FILE"]) if env.get("ROUTES_FILE") else None,
            _choice(env, "DEFAULT_FLOW", FLOWS, "stream"),
        )
        records = routes.default_flow == "voicemail" or any(
            r.flow in ("voicemail", "conversation") for r in routes.by_number.values()
        )
        if records and not (vonage["vonage_application_id"] and vonage["vonage_private_key"]):
            raise ConfigError(
                f"VONAGE_APPLICATION_ID and {_missing('VONAGE_PRIVATE_KEY')} are required to fetch call recordings"
            )
        transcriber = _choice(env, "TRANSCRIBER", ("offline", "aws", "google"), "offline")
        if transcriber == "aws":
            for name in ("TRANSCRIBE_BUCKET", "TRANSCRIPTION_API_KEY"):
                if not env.get(name):
                    raise ConfigError(f"{_missing(name)} is required when TRANSCRIBER=aws")
            for number, route in routes.by_number.items():
                if route.flow == "conversation" and route.channels > 2:
                    raise ConfigError(
                        f"ROUTES_FILE: {number} records {route.channels} channels, but Amazon Transcribe tells apart "
                        "at most 2: connect one party, or use TRANSCRIBER=google or offline"
                    )
        callback_secret = env.get("CALLBACK_SECRET", "")
        if not callback_secret:
            if storage == "gcs" and any(r.result_webhook for r in routes.by_number.values()):
                raise ConfigError(f"{_missing('CALLBACK_SECRET')} is required for result webhooks: receivers check it")
            if storage == "gcs" and env.get("PROMPT_API_KEY"):
                raise ConfigError(f"{_missing('CALLBACK_SECRET')} is required with PROMPT_API_KEY: receivers check it")
            # Locally, one process signs; a receiver that checks needs the secret set in both.
            callback_secret = secrets.token_urlsafe(32)
        callback_attempts = _integer(env, "CALLBACK_ATTEMPTS", 5)
        if not 1 <= callback_attempts <= 20:
            raise ConfigError(f"CALLBACK_ATTEMPTS must be from 1 to 20, got {callback_attempts}")
        callback_backoff = _seconds(env, "CALLBACK_BACKOFF", 2.0)
        if not 0 <= callback_backoff <= 600:
            raise ConfigError("CALLBACK_BACKOFF must be from 0 to 600 seconds")
        messenger = _choice(env, "MESSENGER", ("outbox", "vonage"), "outbox")
        if messenger == "vonage" and not (vonage["vonage_api_key"] and vonage["vonage_api_secret"]):
            raise ConfigError(f"VONAGE_API_KEY and {_missing('VONAGE_API_SECRET')} are required when MESSENGER=vonage")
        signed_url_ttl = _integer(env, "SIGNED_URL_TTL", 900)
        if not 60 <= signed_url_ttl <= 7 * 24 * 3600:
            raise ConfigError("SIGNED_URL_TTL must be from 60 seconds to 7 days (Cloud Storage's limit)")
        link_ttl_days = _integer(env, "LINK_TTL_DAYS", 30)
        if not 1 <= link_ttl_days <= 3650:
            raise ConfigError("LINK_TTL_DAYS must be from 1 to 3650")
        prompt_ttl_days = _integer(env, "PROMPT_TTL_DAYS", 7)
        if not 1 <= prompt_ttl_days <= 3650:
            raise ConfigError("PROMPT_TTL_DAYS must be from 1 to 3650")
        prompt_input_timeout = _integer(env, "PROMPT_INPUT_TIMEOUT", 8)
        if not 1 <= prompt_input_timeout <= 10:
            raise ConfigError("PROMPT_INPUT_TIMEOUT must be from 1 to 10 seconds (Vonage's dtmf.timeOut range)")
        grace = _seconds(env, "PROMPT_HANGUP_GRACE", 5.0)
        public_url = _url(env, "PUBLIC_URL", ("http", "https"), cls.public_url).rstrip("/")
        return cls(
            **_task_settings(env, public_url),
            prompt_api_key=env.get("PROMPT_API_KEY") or None,
            prompt_ttl_days=prompt_ttl_days,
            prompt_input_timeout=prompt_input_timeout,
            prompt_hangup_grace=grace,
            callback_secret=callback_secret,
            callback_attempts=callback_attempts,
            callback_backoff=callback_backoff,
            allow_private_callbacks=_choice(env, "ALLOW_PRIVATE_CALLBACKS", ("false", "true"), "false") == "true",
            routes=routes,
            transcriber=transcriber,
            messenger=messenger,
            transcribe_bucket=env.get("TRANSCRIBE_BUCKET") or None,
            aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            transcription_api_key=env.get("TRANSCRIPTION_API_KEY") or None,
            signed_url_ttl=signed_url_ttl,
            link_ttl_days=link_ttl_days,
            sms_from=env.get("SMS_FROM") or "tapedeck",
            **vonage,
            storage=storage,
            local_storage_dir=Path(env.get("LOCAL_STORAGE_DIR") or "./data"),
            gcs_bucket=bucket,
            public_url=public_url,
            recorder_url=_url(env, "RECORDER_URL", ("ws", "wss"), cls.recorder_url),
            stream_rate=rate,
            greeting=greeting,
            vonage_signature_secret=env.get("VONAGE_SIGNATURE_SECRET") or None,
            stream_token_secret=token_secret,
            stream_token_secret_generated=not env.get("STREAM_TOKEN_SECRET"),
            stream_token_ttl=ttl,
            upload_chunk_bytes=chunk,
            log_level=_choice(env, "LOG_LEVEL", _LOG_LEVELS, "INFO", upper=True),
        )


def _task_settings(env: Mapping[str, str], public_url: str) -> dict[str, Any]:
    """Where deferred work goes: the embedded queue, or Cloud Tasks (or its emulator)."""
    queue = _choice(env, "TASK_QUEUE", ("local", "cloud-tasks"), "local")
    tasks_url = _url(env, "TASKS_URL", ("http", "https"), f"{public_url}/tasks")
    project = env.get("TASKS_PROJECT") or env.get("GOOGLE_CLOUD_PROJECT") or None
    emulator = env.get("CLOUD_TASKS_EMULATOR_HOST") or None
    settings = {
        "task_queue": queue,
        "tasks_url": tasks_url,
        "tasks_project": project,
        "tasks_location": env.get("TASKS_LOCATION") or None,
        "tasks_queue_name": env.get("TASKS_QUEUE") or "tapedeck",
        "tasks_service_account": env.get("TASKS_SERVICE_ACCOUNT") or None,
        "tasks_audience": env.get("TASKS_AUDIENCE") or tasks_url,
        "tasks_emulator_host": emulator,
    }
    if queue == "cloud-tasks":
        needed = {"TASKS_PROJECT": project, "TASKS_LOCATION": settings["tasks_location"]}
        if not emulator:
            needed["TASKS_SERVICE_ACCOUNT"] = settings["tasks_service_account"]
        for name, value in needed.items():
            if not value:
                raise ConfigError(f"{name} is required when TASK_QUEUE=cloud-tasks")
    return settings


def _vonage_settings(env: Mapping[str, str]) -> dict[str, Any]:
    key = env.get("VONAGE_PRIVATE_KEY") or None
    if key and "-----BEGIN" not in key:
        # A path to a PEM file; read now so a missing file fails at start-up.
        try:
            key = Path(key).read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"VONAGE_PRIVATE_KEY {key} cannot be read: {err.strerror}") from err
    hosts = {}
    for name, default in (("VONAGE_API_HOST", "api.nexmo.com"), ("VONAGE_REST_HOST", "rest.nexmo.com")):
        host = env.get(name) or default
        if not re.match(r"^[A-Za-z0-9.-]+(:\d+)?$", host):
            raise ConfigError(f"{name} must be a host[:port], got {host!r}")
        hosts[name.lower()] = host
    return {
        "vonage_application_id": env.get("VONAGE_APPLICATION_ID") or None,
        "vonage_private_key": key,
        "vonage_api_key": env.get("VONAGE_API_KEY") or None,
        "vonage_api_secret": env.get("VONAGE_API_SECRET") or None,
        **hosts,
    }


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str, upper: bool = False) -> str:
    value = env.get(name) or default
    value = value.upper() if upper else value.lower()
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {env.get(name)!r}")
    return value


def _integer(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as err:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from err


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as err:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from err


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...], default: str) -> str:
    value = env.get(name) or default
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise ConfigError(f"{name} must be a {' or '.join(s + '://' for s in schemes)} URL, got {value!r}")
    return value
