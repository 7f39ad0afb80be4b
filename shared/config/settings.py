"""The typed settings, in frozen groups, and the only reader of the environment.

Every variable is declared once in shared/config/environment.py, under a heading, with its kind
(shared/config/variables.py), default, range and meaning beside its name; `nox -s docs` writes
docs/reference/settings.md from these declarations. A group's field here names the variable it is
read from (`_setting`), and takes its default from it.
Rules that tie variables together are in `_check_across`. `VARIABLES` lists them all, and
`nox -s deploy` passes on exactly those, so the two cannot drift apart; the recordings browser
gets only those marked `browser`, and checks its own rule with `require_iap`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Self, TypeVar, cast
from urllib.parse import urlsplit

from shared.config.environment import (
    ALLOW_PRIVATE_CALLBACKS,
    AWS_DEADLINE,
    AWS_DEFAULT_REGION,
    AWS_REGION,
    BROWSER_ADMINS,
    BROWSER_SECRET_NAMES,
    CALLBACK_ATTEMPTS,
    CALLBACK_BACKOFF,
    CALLBACK_SECRET,
    CLOUD_TASKS_EMULATOR_HOST,
    DEFAULT_FLOW,
    GCS_BUCKET,
    GOOGLE_CLOUD_PROJECT,
    GOOGLE_DEADLINE,
    GREETING,
    HEADINGS,
    IAP_AUDIENCE,
    IAP_KEYS_URL,
    LINK_TTL_DAYS,
    LIVE_STREAMS_MAX,
    LIVE_TRANSCRIBER,
    LOCAL_STORAGE_DIR,
    LOG_LEVEL,
    MESSENGER,
    PROMPT_API_KEY,
    PROMPT_HANGUP_GRACE,
    PROMPT_INPUT_TIMEOUT,
    PROMPT_TTL_DAYS,
    PUBLIC_URL,
    RECORDER_URL,
    RECORDING_GRACE_SECONDS,
    RETENTION_DAYS,
    ROUTES_FILE,
    SECRET_NAMES,
    SIGNED_URL_TTL,
    SMS_FROM,
    SOFT_DELETE_DAYS,
    STORAGE,
    STREAM_RATE,
    STREAM_RATES,
    STREAM_ROTATE_SECONDS,
    STREAM_TOKEN_SECRET,
    STREAM_TOKEN_TTL,
    SWEEP_BATCH,
    SWEEP_INTERVAL,
    TASK_QUEUE,
    TASKS_AUDIENCE,
    TASKS_LOCATION,
    TASKS_PROJECT,
    TASKS_QUEUE,
    TASKS_SERVICE_ACCOUNT,
    TASKS_URL,
    TRANSCRIBE_BUCKET,
    TRANSCRIBER,
    TRANSCRIPTION_API_KEY,
    UPLOAD_CHUNK_BYTES,
    VARIABLES,
    VONAGE_API_HOST,
    VONAGE_API_KEY,
    VONAGE_API_SECRET,
    VONAGE_APPLICATION_ID,
    VONAGE_PRIVATE_KEY,
    VONAGE_REST_HOST,
    VONAGE_SIGNATURE_SECRET,
    browser_names,
    deployed_names,
)
from shared.config.routes import Routes, load_routes
from shared.config.variables import LOOPBACK, Variable, secret_id
from shared.core.errors import ConfigError
from shared.core.iap import KEYS_URL

__all__ = [
    "BROWSER_ADMINS",
    "BROWSER_SECRET_NAMES",
    "HEADINGS",
    "SECRET_NAMES",
    "STREAM_RATES",
    "VARIABLES",
    "BrowserSettings",
    "DeliveryPolicy",
    "LiveSettings",
    "PromptSettings",
    "Settings",
    "StorageSettings",
    "StreamSettings",
    "SweepSettings",
    "TaskSettings",
    "TranscriptionSettings",
    "Variable",
    "VonageSettings",
    "browser_names",
    "deployed_names",
    "engines_in_use",
    "require_iap",
    "secret_id",
]


# --- the groups ----------------------------------------------------------------------------------

# Where a group's field keeps how its value is read.
_READ = "read"
_G = TypeVar("_G")


def _setting(variable: Variable, then: Callable[[Any], Any] = lambda value: value, *, secret: bool = False) -> Any:
    """A group's field read from `variable` and passed through `then`; its default is the variable's,
    passed through `then` too. A secret's value is left out of the group's repr."""
    return field(
        default=then(getattr(variable, "default", None)),
        repr=not secret,
        metadata={_READ: lambda env: then(variable.read(env))},
    )


def _read_group(cls: Callable[..., _G], env: Mapping[str, str], **given: Any) -> _G:
    """A group: each `_setting` field read from its variable, in the order the group declares them,
    but those `given`; a field that is neither keeps its default."""
    read = {
        each.name: each.metadata[_READ](env)
        for each in fields(cast(Any, cls))
        if _READ in each.metadata and each.name not in given
    }
    return cls(**read, **given)


class _VariableGroup:
    """A group whose every field is a `_setting`."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Self:
        return _read_group(cls, env)


def _soft_delete_days(days: int) -> int:
    if 0 < days < 7:
        raise ConfigError(f"SOFT_DELETE_DAYS must be 0 or from 7 to 90 days (Cloud Storage's range), got {days}")
    return days


def _private_key(key: str | None) -> str | None:
    if key and "-----BEGIN" not in key:
        # A path to a PEM file; read now so a missing file fails at start-up.
        try:
            return Path(key).read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"VONAGE_PRIVATE_KEY {key} cannot be read: {err.strerror}") from err
    return key


@dataclass(frozen=True)
class StorageSettings(_VariableGroup):
    """Where calls, jobs and links are kept: a local folder, or a Cloud Storage bucket."""

    kind: str = _setting(STORAGE)
    local_dir: Path = _setting(LOCAL_STORAGE_DIR, Path)  # noqa: RUF009 - a dataclasses.Field, as field() returns
    bucket: str | None = _setting(GCS_BUCKET)
    upload_chunk_bytes: int = _setting(UPLOAD_CHUNK_BYTES)
    signed_url_ttl: int = _setting(SIGNED_URL_TTL)
    link_ttl_days: int = _setting(LINK_TTL_DAYS)
    retention_days: int = _setting(RETENTION_DAYS)
    soft_delete_days: int = _setting(SOFT_DELETE_DAYS, _soft_delete_days)


@dataclass(frozen=True)
class StreamSettings:
    """The recorder's websocket, and the secret that seals its tokens and tapedeck's own URLs."""

    recorder_url: str = _setting(RECORDER_URL)
    rate: int = _setting(STREAM_RATE)
    greeting: str = _setting(GREETING)
    token_secret: str = field(default="", repr=False)
    token_ttl: int = _setting(STREAM_TOKEN_TTL)
    # True when no STREAM_TOKEN_SECRET was given and a per-process one was made up.
    token_secret_generated: bool = False
    rotate_seconds: int = _setting(STREAM_ROTATE_SECONDS)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StreamSettings:
        secret = STREAM_TOKEN_SECRET.read(env)
        # One local process both mints and checks tokens, so a per-process secret is enough.
        return _read_group(
            cls, env, token_secret=secret or secrets.token_urlsafe(32), token_secret_generated=secret is None
        )


@dataclass(frozen=True)
class LiveSettings(_VariableGroup):
    """Transcribing streams as they come: which engine, and how many streams at once per instance;
    a stream past the limit is recorded as usual."""

    engine: str = _setting(LIVE_TRANSCRIBER)
    max_streams: int = _setting(LIVE_STREAMS_MAX)


@dataclass(frozen=True)
class VonageSettings(_VariableGroup):
    """The Vonage application: its key for recordings and calls, the API account for SMS, hosts."""

    application_id: str | None = _setting(VONAGE_APPLICATION_ID)
    private_key: str | None = _setting(VONAGE_PRIVATE_KEY, _private_key, secret=True)
    api_key: str | None = _setting(VONAGE_API_KEY)
    api_secret: str | None = _setting(VONAGE_API_SECRET, secret=True)
    api_host: str = _setting(VONAGE_API_HOST)
    rest_host: str = _setting(VONAGE_REST_HOST)
    signature_secret: str | None = _setting(VONAGE_SIGNATURE_SECRET, secret=True)
    sms_from: str = _setting(SMS_FROM)


@dataclass(frozen=True)
class TranscriptionSettings:
    """Which engine turns recordings into text, and what Amazon Transcribe needs."""

    engine: str = "offline"
    bucket: str | None = None
    aws_region: str = "us-east-1"
    api_key: str | None = field(default=None, repr=False)
    # Seconds each engine is given before a route's chain moves on (AWS_DEADLINE, GOOGLE_DEADLINE).
    deadlines: Mapping[str, int] = field(default_factory=lambda: {"aws": 900, "google": 120})

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TranscriptionSettings:
        return cls(
            engine=TRANSCRIBER.read(env),
            bucket=TRANSCRIBE_BUCKET.read(env),
            aws_region=AWS_REGION.read(env) or AWS_DEFAULT_REGION.read(env) or "us-east-1",
            api_key=TRANSCRIPTION_API_KEY.read(env),
            deadlines={"aws": AWS_DEADLINE.read(env), "google": GOOGLE_DEADLINE.read(env)},
        )


@dataclass(frozen=True)
class DeliveryPolicy:
    """How result webhooks and callbacks are sent: attempts in all and the first backoff (doubled
    each time), which are the task queue's retry settings, the timeout of one request, and the
    secret that signs them."""

    attempts: int = _setting(CALLBACK_ATTEMPTS)
    backoff: float = _setting(CALLBACK_BACKOFF)
    timeout: float = 10.0
    allow_private: bool = _setting(ALLOW_PRIVATE_CALLBACKS, lambda value: value == "true")
    secret: str = field(default="", repr=False)
    # True when no CALLBACK_SECRET was given and a per-process one was made up.
    secret_generated: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DeliveryPolicy:
        secret = CALLBACK_SECRET.read(env)
        # Locally, one process signs; a receiver that checks needs the secret set in both.
        return _read_group(cls, env, secret=secret or secrets.token_urlsafe(32), secret_generated=secret is None)


@dataclass(frozen=True)
class PromptSettings(_VariableGroup):
    """PIN prompt calls: the API key that may place them, and their timing."""

    api_key: str | None = _setting(PROMPT_API_KEY, secret=True)
    ttl_days: int = _setting(PROMPT_TTL_DAYS)
    input_timeout: int = _setting(PROMPT_INPUT_TIMEOUT)
    hangup_grace: float = _setting(PROMPT_HANGUP_GRACE)


@dataclass(frozen=True)
class TaskSettings:
    """Where deferred work goes: the embedded queue, or Cloud Tasks (or its emulator)."""

    queue: str = _setting(TASK_QUEUE)
    url: str = "http://localhost:8080/tasks"
    project: str | None = None
    location: str | None = _setting(TASKS_LOCATION)
    queue_name: str = _setting(TASKS_QUEUE)
    service_account: str | None = _setting(TASKS_SERVICE_ACCOUNT)
    audience: str | None = None
    emulator_host: str | None = _setting(CLOUD_TASKS_EMULATOR_HOST)

    @classmethod
    def from_env(cls, env: Mapping[str, str], public_url: str) -> TaskSettings:
        url = TASKS_URL.read(env, default=f"{public_url}/tasks")
        project = TASKS_PROJECT.read(env) or GOOGLE_CLOUD_PROJECT.read(env)
        return _read_group(cls, env, url=url, project=project, audience=TASKS_AUDIENCE.read(env) or url)


@dataclass(frozen=True)
class SweepSettings(_VariableGroup):
    """The sweep: how long after a call's end a recording still `streaming` is taken for one whose
    recorder died (and an answered call with no stream for a failed one), how often it runs, and
    how many waiting calls one run looks at."""

    grace: float = _setting(RECORDING_GRACE_SECONDS)
    interval: float = _setting(SWEEP_INTERVAL)
    batch: int = _setting(SWEEP_BATCH)


@dataclass(frozen=True)
class BrowserSettings:
    """The recordings browser: the audience Identity-Aware Proxy signs its header for, where
    Google's keys for that header are, and the accounts that may change what it shows."""

    iap_audience: str | None = None
    iap_keys_url: str = KEYS_URL
    admins: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BrowserSettings:
        keys_url = IAP_KEYS_URL.read(env)
        parts = urlsplit(keys_url)
        # A key list anyone on the path could swap would let them sign in as anyone.
        if parts.scheme != "https" and parts.hostname not in LOOPBACK:
            raise ConfigError(f"IAP_KEYS_URL must be https:// (http:// only on loopback), got {keys_url!r}")
        return cls(iap_audience=IAP_AUDIENCE.read(env), iap_keys_url=keys_url, admins=BROWSER_ADMINS.read(env))


@dataclass(frozen=True)
class Settings:
    """Everything tapedeck reads from the environment, validated once at start-up."""

    public_url: str = "http://localhost:8080"
    log_level: str = "INFO"
    routes: Routes = field(default_factory=Routes)
    messenger: str = "outbox"
    storage: StorageSettings = field(default_factory=StorageSettings)
    stream: StreamSettings = field(default_factory=StreamSettings)
    live: LiveSettings = field(default_factory=LiveSettings)
    vonage: VonageSettings = field(default_factory=VonageSettings)
    transcription: TranscriptionSettings = field(default_factory=TranscriptionSettings)
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    prompt: PromptSettings = field(default_factory=PromptSettings)
    tasks: TaskSettings = field(default_factory=TaskSettings)
    sweep: SweepSettings = field(default_factory=SweepSettings)
    browser: BrowserSettings = field(default_factory=BrowserSettings)

    @property
    def local_queue_key(self) -> str:
        """What the embedded queue shows the tasks function: derived from the stream-token secret,
        which every local process of one deployment shares."""
        return hmac.new(self.stream.token_secret.encode(), b"local-task-queue", hashlib.sha256).hexdigest()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read and check every variable; a bad or missing one raises ConfigError naming it."""
        public_url = PUBLIC_URL.read(env).rstrip("/")
        routes_file = ROUTES_FILE.read(env)
        settings = cls(
            public_url=public_url,
            log_level=LOG_LEVEL.read(env),
            routes=load_routes(Path(routes_file) if routes_file else None, DEFAULT_FLOW.read(env)),
            messenger=MESSENGER.read(env),
            storage=StorageSettings.from_env(env),
            stream=StreamSettings.from_env(env),
            live=LiveSettings.from_env(env),
            vonage=VonageSettings.from_env(env),
            transcription=TranscriptionSettings.from_env(env),
            delivery=DeliveryPolicy.from_env(env),
            prompt=PromptSettings.from_env(env),
            tasks=TaskSettings.from_env(env, public_url),
            sweep=SweepSettings.from_env(env),
            browser=BrowserSettings.from_env(env),
        )
        _check_across(settings)
        return settings


def check_engines(env: Mapping[str, str]) -> None:
    """The checks of the routes' engines and languages alone, as `nox -s deploy` runs them before it
    stages anything: deployed, settings are read at an instance's first request, where a refusal
    would answer every call with an error."""
    routes_file = ROUTES_FILE.read(env)
    routes = load_routes(Path(routes_file) if routes_file else None, DEFAULT_FLOW.read(env))
    _check_languages(
        Settings(routes=routes, transcription=TranscriptionSettings.from_env(env), live=LiveSettings.from_env(env))
    )


def require_iap(settings: Settings) -> str | None:
    """The audience the recordings browser checks IAP's header against, or None locally without one.

    On Cloud Storage the pages show every call, so they refuse to start without an audience. Not in
    `_check_across`: the functions and the recorder never see IAP.
    """
    if settings.storage.kind == "gcs" and not settings.browser.iap_audience:
        raise _required(IAP_AUDIENCE, "for the recordings browser when STORAGE=gcs")
    return settings.browser.iap_audience


def _required(variable: Variable, when: str) -> ConfigError:
    return ConfigError(f"{variable.label} is required {when}")


def _check_across(settings: Settings) -> None:
    """The rules that tie one variable to another, in one place."""
    storage, stream, vonage, routes = settings.storage, settings.stream, settings.vonage, settings.routes
    if storage.kind == "gcs" and not storage.bucket:
        raise _required(GCS_BUCKET, "when STORAGE=gcs")
    if storage.kind == "gcs" and stream.token_secret_generated:
        raise _required(STREAM_TOKEN_SECRET, "when STORAGE=gcs")
    records = routes.default_flow == "voicemail" or any(
        r.flow in ("voicemail", "conversation") for r in routes.by_number.values()
    )
    if records and not (vonage.application_id and vonage.private_key):
        raise ConfigError(f"VONAGE_APPLICATION_ID and {VONAGE_PRIVATE_KEY.label} are required to fetch call recordings")
    if "aws" in engines_in_use(settings):
        _check_aws(settings)
    _check_languages(settings)
    if storage.kind == "gcs" and settings.delivery.secret_generated:
        if any(r.result_webhook or r.live_webhook or r.recording_webhook for r in routes.by_number.values()):
            raise ConfigError(
                f"{CALLBACK_SECRET.label} is required for result, live and recording webhooks: receivers check it"
            )
        if settings.prompt.api_key:
            raise ConfigError(f"{CALLBACK_SECRET.label} is required with PROMPT_API_KEY: receivers check it")
    live_hooked = [number for number, r in routes.by_number.items() if r.live_webhook]
    if live_hooked and settings.live.engine == "none":
        raise ConfigError(f"ROUTES_FILE: {live_hooked[0]} has a live_webhook, which needs LIVE_TRANSCRIBER set")
    if settings.messenger == "vonage" and not (vonage.api_key and vonage.api_secret):
        raise ConfigError(f"VONAGE_API_KEY and {VONAGE_API_SECRET.label} are required when MESSENGER=vonage")
    tasks = settings.tasks
    if tasks.queue == "cloud-tasks":
        needed = {TASKS_PROJECT: tasks.project, TASKS_LOCATION: tasks.location}
        if not tasks.emulator_host:
            needed[TASKS_SERVICE_ACCOUNT] = tasks.service_account
        for variable, value in needed.items():
            if not value:
                raise _required(variable, "when TASK_QUEUE=cloud-tasks")


def engines_in_use(settings: Settings) -> tuple[str, ...]:
    """Every engine that may transcribe stored audio here: TRANSCRIBER, then the routes' chains."""
    default = settings.transcription.engine
    chains = (route.engine_chain(default) for route in settings.routes.by_number.values())
    return tuple(dict.fromkeys((default, *(engine for chain in chains for engine in chain if engine != "vonage"))))


def _check_aws(settings: Settings) -> None:
    transcription = settings.transcription
    when = "when TRANSCRIBER=aws or a route's engines name aws"
    for variable, value in ((TRANSCRIBE_BUCKET, transcription.bucket), (TRANSCRIPTION_API_KEY, transcription.api_key)):
        if not value:
            raise _required(variable, when)
    for number, route in settings.routes.by_number.items():
        chain = route.engine_chain(transcription.engine)
        # A later engine may take what Amazon refuses; alone, it would fail every call.
        if route.flow == "conversation" and route.channels > 2 and chain == ("aws",):
            raise ConfigError(
                f"ROUTES_FILE: {number} records {route.channels} channels, but Amazon Transcribe tells apart "
                "at most 2: connect one party, or use TRANSCRIBER=google or offline"
            )


def _check_languages(settings: Settings) -> None:
    """Refuse a route whose language an engine that would transcribe it cannot do, naming both."""
    from shared.core.engine_languages import IDENTIFYING_ENGINES, engine_language_fault

    default, live = settings.transcription.engine, settings.live.engine
    for number, route in settings.routes.by_number.items():
        heard: list[tuple[str, str]] = []
        if route.flow != "stream":
            for engine in route.engine_chain(default):
                languages = route.languages if engine in IDENTIFYING_ENGINES and route.languages else (route.language,)
                heard += [(engine, language) for language in languages]
        if route.streams_live and live == "pocketsphinx":
            heard.append(("offline", route.language))
        for engine, language in heard:
            fault = engine_language_fault(engine, language)
            if fault is not None:
                raise ConfigError(
                    f"ROUTES_FILE: {number} has language {language}, which the {engine} engine cannot do: {fault}"
                )
