"""The typed settings, in frozen groups, and the only reader of the environment.

Every variable is declared once below, under a heading, with its kind, default, range and meaning
beside its name; `nox -s docs` writes docs/reference/settings.md from these declarations. A
group's field names the variable it is read from (`_setting`), and takes its default from it.
Rules that tie variables together are in `_check_across`. `VARIABLES` lists them all, and
`nox -s deploy` passes on exactly those, so the two cannot drift apart; the recordings browser
gets only those marked `browser`, and checks its own rule with `require_iap`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar, cast
from urllib.parse import urlsplit

from shared.config.routes import Flow, Routes, load_routes
from shared.core.errors import ConfigError
from shared.core.iap import AUDIENCE, KEYS_URL, admin_member
from shared.core.vonage_limits import INPUT_SECONDS, TALK_LIMIT, WEBSOCKET_RATES, check_talk_text

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

STREAM_RATES = WEBSOCKET_RATES
# Cloud Storage needs resumable chunks in multiples of 256 KiB; parts of the same size keep one rule.
_CHUNK_UNIT = 256 * 1024
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_HOST = re.compile(r"[A-Za-z0-9.-]+(:\d+)?")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")
# What a URL may hold (RFC 3986): Vonage refuses an NCCO whose URLs are not URIs.
_URI = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+", re.ASCII)


def secret_id(name: str) -> str:
    """The Secret Manager secret holding a setting: `STREAM_TOKEN_SECRET` → `tapedeck-stream-token-secret`."""
    return "tapedeck-" + name.lower().replace("_", "-")


# --- the variables: one reader per kind of value -------------------------------------------------

_N = TypeVar("_N", int, float)
_DECLARED: list[Variable] = []
# Each heading of docs/reference/settings.md, and where its variables start in _DECLARED.
_HEADINGS: list[tuple[str, int]] = []


def _heading(title: str) -> None:
    """The variables declared from here on go under `title`."""
    _HEADINGS.append((title, len(_DECLARED)))


@dataclass(frozen=True)
class Variable:
    """One environment variable. `secret`: deployed from Secret Manager, never as a plain variable.
    `deployed`: passed on to the deployed functions and recorder (not those the platform or a local
    run sets). `browser`: passed on to the recordings browser, which gets nothing else. `meaning`:
    what it sets, in a sentence; `unset`: what leaving it unset means, where that is not a default."""

    name: str
    secret: bool = field(default=False, kw_only=True)
    deployed: bool = field(default=True, kw_only=True)
    browser: bool = field(default=False, kw_only=True)
    meaning: str = field(kw_only=True)
    unset: str = field(default="", kw_only=True)
    # What every variable of a kind takes, in words, where that does not depend on the variable.
    takes: ClassVar[str] = ""

    def __post_init__(self) -> None:
        _DECLARED.append(self)

    @property
    def deployables(self) -> tuple[str, ...]:
        """The deployables `nox -s deploy` passes it on to."""
        deployed = ("functions", "recorder") if self.deployed else ()
        return deployed + (("browser",) if self.browser else ())

    @property
    def accepts(self) -> str:
        """What values it takes, in words; empty where any text goes."""
        return self.takes

    @property
    def shown_default(self) -> str | None:
        """Its default as it would be written, or None without one."""
        value = getattr(self, "default", None)
        if value is None or value == "":
            return None
        return f"{value:g}" if isinstance(value, float) else str(value)

    @property
    def label(self) -> str:
        """How an error names it: a secret also by the Secret Manager secret it comes from."""
        return f"{self.name} (Secret Manager secret {secret_id(self.name)})" if self.secret else self.name

    def raw(self, env: Mapping[str, str]) -> str | None:
        """The value as given, or None when unset or empty."""
        return env.get(self.name) or None

    def read(self, env: Mapping[str, str]) -> Any:
        """The value, checked as its kind checks it; each kind reads its own."""
        raise NotImplementedError

    def parsed(self, env: Mapping[str, str], parse: Callable[[str], _N], noun: str) -> _N | None:
        """The value as `parse` reads it, or None when unset; one it cannot read is refused as not `noun`."""
        raw = self.raw(env)
        if raw is None:
            return None
        try:
            return parse(raw)
        except ValueError as err:
            raise ConfigError(f"{self.name} must be {noun}, got {raw!r}") from err


@dataclass(frozen=True)
class Text(Variable):
    default: str | None = None
    # The whole value's shape, when it has one, and what it looks like.
    shape: re.Pattern[str] | None = field(default=None, kw_only=True)
    why: str = field(default="", kw_only=True)

    @property
    def accepts(self) -> str:
        return f"like `{self.why}`" if self.shape is not None else ""

    def read(self, env: Mapping[str, str]) -> str | None:
        value = self.raw(env) or self.default
        if self.shape is not None and value is not None and not self.shape.fullmatch(value):
            raise ConfigError(f"{self.name} must look like {self.why}, got {value!r}")
        return value


@dataclass(frozen=True)
class Choice(Variable):
    options: tuple[str, ...] = ()
    default: str = ""
    upper: bool = field(default=False, kw_only=True)
    why: str = field(default="", kw_only=True)

    @property
    def accepts(self) -> str:
        return ", ".join(self.options) + self.why

    def read(self, env: Mapping[str, str]) -> str:
        given = self.raw(env) or self.default
        value = given.upper() if self.upper else given.lower()
        if value not in self.options:
            raise ConfigError(f"{self.name} must be one of {self.accepts}, got {env.get(self.name)!r}")
        return value


@dataclass(frozen=True)
class Speech(Variable):
    """Text Vonage reads out in a talk action, checked as Vonage checks it."""

    default: str = ""
    takes = f"text to speak, at most {TALK_LIMIT:,} characters (SSML tags not counted)"

    def read(self, env: Mapping[str, str]) -> str:
        # Checked as given: set but empty says nothing.
        value = env.get(self.name, self.default)
        fault = check_talk_text(value)
        if fault is not None:
            raise ConfigError(f"{self.name} {fault}")
        return value


@dataclass(frozen=True)
class Whole(Variable):
    """A whole number from `low` to `high`, one of `allowed`, or a positive multiple of `multiple`."""

    default: int = 0
    low: int | None = None
    high: int | None = None
    unit: str = ""
    allowed: tuple[int, ...] = field(default=(), kw_only=True)
    multiple: int | None = field(default=None, kw_only=True)
    why: str = field(default="", kw_only=True)

    @property
    def accepts(self) -> str:
        if self.allowed:
            return ", ".join(str(value) for value in self.allowed)
        if self.multiple:
            return f"a positive multiple of {self.multiple}"
        return self.span

    @property
    def span(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.low} to {self.high}{unit}{self.why}"

    def read(self, env: Mapping[str, str]) -> int:
        value = self.parsed(env, int, "a whole number")
        if value is None:
            return self.default
        if self.allowed and value not in self.allowed:
            raise ConfigError(f"{self.name} must be one of {self.allowed}, got {value}")
        if self.multiple and (value <= 0 or value % self.multiple):
            raise ConfigError(f"{self.name} must be a positive multiple of {self.multiple}, got {value}")
        if self.low is not None and self.high is not None and not self.low <= value <= self.high:
            raise ConfigError(f"{self.name} must be from {self.span}, got {value}")
        return value


@dataclass(frozen=True)
class Seconds(Variable):
    default: float = 0.0
    low: float = 0.0
    high: float = 0.0

    @property
    def accepts(self) -> str:
        return f"{self.low:g} to {self.high:g} seconds"

    def read(self, env: Mapping[str, str]) -> float:
        value = self.parsed(env, float, "a number of seconds")
        if value is None:
            return self.default
        if not self.low <= value <= self.high:
            raise ConfigError(f"{self.name} must be from {self.accepts}")
        return value


@dataclass(frozen=True)
class Url(Variable):
    """A URL of one of `schemes`. `base`: tapedeck adds paths to it, so it has no query or fragment."""

    schemes: tuple[str, ...] = ("http", "https")
    default: str | None = None
    base: bool = field(default=False, kw_only=True)

    @property
    def accepts(self) -> str:
        wanted = " or ".join(f"`{scheme}://`" for scheme in self.schemes)
        return f"{wanted} URL" + (", without query or fragment" if self.base else "")

    def read(self, env: Mapping[str, str], default: str | None = None) -> str:
        value = self.raw(env) or default or self.default or ""
        wanted = " or ".join(s + "://" for s in self.schemes)
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises on a port out of range
        except ValueError as err:
            raise ConfigError(f"{self.name} must be a {wanted} URL, got {value!r}: {err}") from err
        if parts.scheme not in self.schemes or not parts.netloc:
            raise ConfigError(f"{self.name} must be a {wanted} URL, got {value!r}")
        if not _URI.fullmatch(value):
            raise ConfigError(f"{self.name} must be a URL without spaces or characters outside RFC 3986, got {value!r}")
        if self.base and (parts.query or parts.fragment or "?" in value or "#" in value):
            raise ConfigError(f"{self.name} must have no query or fragment (tapedeck adds paths to it), got {value!r}")
        return value


@dataclass(frozen=True)
class Host(Variable):
    default: str = ""
    takes = "host[:port]"

    def read(self, env: Mapping[str, str]) -> str:
        host = self.raw(env) or self.default
        if not _HOST.fullmatch(host):
            raise ConfigError(f"{self.name} must be a {self.takes}, got {host!r}")
        return host


@dataclass(frozen=True)
class Accounts(Variable):
    """Accounts separated by commas, each an email or an IAM member of one account (`user:…`,
    `serviceAccount:…`), read as IAM members."""

    takes = "accounts separated by commas: an email, `user:EMAIL` or `serviceAccount:EMAIL` (no groups)"

    def read(self, env: Mapping[str, str]) -> tuple[str, ...]:
        entries = [part.strip() for part in (self.raw(env) or "").split(",") if part.strip()]
        try:
            return tuple(dict.fromkeys(admin_member(entry) for entry in entries))
        except ValueError as err:
            raise ConfigError(f"{self.name}: {err}") from err


_heading("Storage")
STORAGE = Choice(
    "STORAGE",
    ("local", "gcs"),
    "local",
    browser=True,
    meaning="Where calls, jobs and links are kept: a folder or a bucket.",
)
# Deployed calls are kept on Cloud Storage (the deploy refuses STORAGE=local): a folder is local only.
LOCAL_STORAGE_DIR = Text(
    "LOCAL_STORAGE_DIR", "./data", meaning="The folder calls are kept in, for `STORAGE=local`.", deployed=False
)
GCS_BUCKET = Text("GCS_BUCKET", browser=True, meaning="The Cloud Storage bucket; required for `STORAGE=gcs`.")
UPLOAD_CHUNK_BYTES = Whole(
    "UPLOAD_CHUNK_BYTES", _CHUNK_UNIT, multiple=_CHUNK_UNIT, meaning="Audio flushed to storage per part, in bytes."
)
SIGNED_URL_TTL = Whole(
    "SIGNED_URL_TTL",
    900,
    60,
    7 * 24 * 3600,
    "seconds",
    why=" (Cloud Storage's limit is 7 days)",
    browser=True,
    meaning="Lifetime of a signed audio URL.",
)
LINK_TTL_DAYS = Whole("LINK_TTL_DAYS", 30, 1, 3650, "days", browser=True, meaning="Lifetime of a short link.")
RETENTION_DAYS = Whole(
    "RETENTION_DAYS",
    0,
    0,
    36500,
    "days",
    meaning="How long a call is kept before the sweep erases it, when its route has no `retention_days` "
    "(0: until deleted).",
)
SOFT_DELETE_DAYS = Whole(
    "SOFT_DELETE_DAYS",
    7,
    0,
    90,
    "days",
    why=" (0 turns it off; Cloud Storage takes 7 to 90)",
    meaning="How long Cloud Storage keeps a deleted object restorable (the bucket's soft delete, set by the deploy).",
)
_heading("The public side")
PUBLIC_URL = Url(
    "PUBLIC_URL",
    ("http", "https"),
    "http://localhost:8080",
    base=True,
    browser=True,
    meaning="The base URL Vonage reaches the functions at (`<PUBLIC_URL>/event`).",
)
LOG_LEVEL = Choice(
    "LOG_LEVEL",
    _LOG_LEVELS,
    "INFO",
    upper=True,
    browser=True,
    meaning="The least severity logged; logs are JSON lines with `severity` and `message`.",
)
ROUTES_FILE = Text(
    "ROUTES_FILE",
    meaning="The routes file (YAML or JSON): which flow each called number gets ([routes.md](routes.md)).",
)
DEFAULT_FLOW = Choice(
    "DEFAULT_FLOW",
    (Flow.STREAM, Flow.VOICEMAIL),
    "stream",
    why=" (a conversation needs numbers to connect, which only a route entry has)",
    meaning="The flow of the numbers the routes file does not list.",
)
MESSENGER = Choice(
    "MESSENGER",
    ("outbox", "vonage"),
    "outbox",
    meaning="How text messages go out: kept in storage's outbox, or sent as SMS by Vonage.",
)
_heading("Streams")
RECORDER_URL = Url(
    "RECORDER_URL",
    ("ws", "wss"),
    "ws://localhost:8080/socket",
    meaning="The URL of the recorder's `/socket`, where Vonage streams calls (`wss://` deployed).",
)
STREAM_RATE = Whole("STREAM_RATE", 16000, allowed=STREAM_RATES, meaning="The sample rate of a stream's audio, in Hz.")
GREETING = Speech(
    "GREETING", "Hello. This call is recorded.", meaning="Spoken to the caller before a call is streamed."
)
# The browser mints no token, but every process on gcs must hold it (see _check_across).
STREAM_TOKEN_SECRET = Text(
    "STREAM_TOKEN_SECRET",
    secret=True,
    browser=True,
    unset="random per process (`local` only)",
    meaning="The HMAC key of stream tokens and tapedeck's own URLs: the same for every deployable, "
    "required for `STORAGE=gcs`.",
)
STREAM_TOKEN_TTL = Whole("STREAM_TOKEN_TTL", 300, 10, 3600, "seconds", meaning="How long a stream token stays valid.")
STREAM_ROTATE_SECONDS = Whole(
    "STREAM_ROTATE_SECONDS",
    3300,
    2,
    3540,
    "seconds",
    why=" (App Engine closes a websocket after 3600)",
    meaning="How long the recorder keeps one socket of a call before it closes it, at a quiet moment, "
    "and the call reconnects into a new session.",
)
_heading("Live transcription of streams")
LIVE_TRANSCRIBER = Choice(
    "LIVE_TRANSCRIBER",
    ("none", "pocketsphinx", "google"),
    "none",
    meaning="The engine that transcribes streams while the call goes on.",
)
# Each live pocketsphinx stream is a child process of about 117 MiB and a quarter of a core (measured,
# docs/benchmarks.md: about four per core); a Google
# stream is one gRPC stream and a little buffering, so with `google` a larger value suits.
LIVE_STREAMS_MAX = Whole(
    "LIVE_STREAMS_MAX",
    2,
    0,
    64,
    meaning="Streams transcribed live at once per recorder instance; later ones are only recorded.",
)
_heading("Vonage")
VONAGE_APPLICATION_ID = Text(
    "VONAGE_APPLICATION_ID", meaning="The Vonage application's id, to fetch recordings; required when a route records."
)
VONAGE_PRIVATE_KEY = Text(
    "VONAGE_PRIVATE_KEY",
    secret=True,
    meaning="The application's private key (PEM, or a path to one), to fetch recordings; required when a route "
    "records.",
)
VONAGE_API_KEY = Text("VONAGE_API_KEY", meaning="The API account's key, for SMS; required when `MESSENGER=vonage`.")
VONAGE_API_SECRET = Text(
    "VONAGE_API_SECRET", secret=True, meaning="The API account's secret, for SMS; required when `MESSENGER=vonage`."
)
VONAGE_API_HOST = Host("VONAGE_API_HOST", "api.nexmo.com", meaning="Vonage's API host (the stand-in, locally).")
VONAGE_REST_HOST = Host(
    "VONAGE_REST_HOST", "rest.nexmo.com", meaning="Vonage's REST host, which sends SMS (the stand-in, locally)."
)
VONAGE_SIGNATURE_SECRET = Text(
    "VONAGE_SIGNATURE_SECRET", secret=True, meaning="When set, every webhook must carry Vonage's signed JWT."
)
SMS_FROM = Text("SMS_FROM", "tapedeck", meaning="Who the SMS tapedeck sends are from.")
_heading("Transcription")
TRANSCRIBER = Choice(
    "TRANSCRIBER",
    ("offline", "aws", "google"),
    "offline",
    meaning="The engine that transcribes the recordings of routes that name none.",
)
TRANSCRIBE_BUCKET = Text(
    "TRANSCRIBE_BUCKET",
    meaning="The S3 bucket audio is staged in for Amazon Transcribe; required when `aws` transcribes.",
)
AWS_DEADLINE = Whole(
    "AWS_DEADLINE",
    900,
    1,
    86400,
    "seconds",
    meaning="How long a route's fallback chain waits for Amazon Transcribe (whose result comes by EventBridge) "
    "before it runs the next engine; with no engine after it, it waits on.",
)
GOOGLE_DEADLINE = Whole(
    "GOOGLE_DEADLINE",
    120,
    1,
    1500,
    "seconds",
    why=" (the tasks function has 1800)",
    meaning="How long one Google recognition may take within its task before the next engine runs.",
)
TRANSCRIPTION_API_KEY = Text(
    "TRANSCRIPTION_API_KEY",
    secret=True,
    meaning="The API key EventBridge delivers Amazon Transcribe's results with; required when `aws` transcribes.",
)
AWS_REGION = Text(
    "AWS_REGION", unset="`AWS_DEFAULT_REGION`", meaning="The AWS region of Amazon Transcribe and its bucket."
)
AWS_DEFAULT_REGION = Text(
    "AWS_DEFAULT_REGION", "us-east-1", deployed=False, meaning="AWS's standard region, when `AWS_REGION` is unset."
)
_heading("Deliveries: result webhooks and PIN callbacks")
CALLBACK_SECRET = Text(
    "CALLBACK_SECRET",
    secret=True,
    unset="random per process (`local` only)",
    meaning="The HMAC key that signs webhooks and callbacks; required on `gcs` when a route has a result, live "
    "or recording webhook, or with `PROMPT_API_KEY`.",
)
CALLBACK_ATTEMPTS = Whole("CALLBACK_ATTEMPTS", 5, 1, 20, meaning="Deliveries of one webhook or callback in all.")
CALLBACK_BACKOFF = Seconds(
    "CALLBACK_BACKOFF", 2.0, 0, 600, meaning="The wait before a delivery's first retry, doubled each retry."
)
ALLOW_PRIVATE_CALLBACKS = Choice(
    "ALLOW_PRIVATE_CALLBACKS",
    ("false", "true"),
    "false",
    meaning="`true` lets deliveries go to http:// and private or loopback addresses (local development only).",
)
_heading("PIN prompt calls")
PROMPT_API_KEY = Text(
    "PROMPT_API_KEY",
    secret=True,
    meaning="The `X-Tapedeck-Key` that places PIN prompt calls with tapedeck's own application.",
)
PROMPT_TTL_DAYS = Whole("PROMPT_TTL_DAYS", 7, 1, 3650, "days", meaning="How long a PIN prompt transaction is kept.")
# Vonage takes 0 too, which would end each input before a key could be pressed.
PROMPT_INPUT_TIMEOUT = Whole(
    "PROMPT_INPUT_TIMEOUT",
    8,
    1,
    INPUT_SECONDS[1],
    "seconds",
    why=" (Vonage's dtmf.timeOut range)",
    meaning="How long a PIN prompt waits for digits.",
)
# At most an hour: the longest a queued task waits (MAX_BACKOFF in shared/core/tasks.py).
PROMPT_HANGUP_GRACE = Seconds(
    "PROMPT_HANGUP_GRACE", 5.0, 0, 3600, meaning="How long a PIN prompt's hang-up waits for a late input."
)
_heading("Deferred work")
TASK_QUEUE = Choice(
    "TASK_QUEUE",
    ("local", "cloud-tasks"),
    "local",
    meaning="Where deferred work goes: the embedded queue, or Cloud Tasks.",
)
TASKS_URL = Url(
    "TASKS_URL",
    unset="`<PUBLIC_URL>/tasks`",
    meaning="Where the queue calls the `tasks` function (deployed, its `run.app` URL).",
)
TASKS_PROJECT = Text(
    "TASKS_PROJECT", unset="`GOOGLE_CLOUD_PROJECT`", meaning="The Cloud Tasks queue's project, for `cloud-tasks`."
)
GOOGLE_CLOUD_PROJECT = Text("GOOGLE_CLOUD_PROJECT", deployed=False, meaning="Google Cloud's standard project variable.")
TASKS_LOCATION = Text("TASKS_LOCATION", meaning="The Cloud Tasks queue's location, for `cloud-tasks`.")
TASKS_QUEUE = Text("TASKS_QUEUE", "tapedeck", meaning="The Cloud Tasks queue's name.")
TASKS_SERVICE_ACCOUNT = Text(
    "TASKS_SERVICE_ACCOUNT",
    meaning="The identity whose OIDC token tasks carry; required for `cloud-tasks`, except with the emulator.",
)
TASKS_AUDIENCE = Text("TASKS_AUDIENCE", unset="`TASKS_URL`", meaning="The audience of the tasks' OIDC token.")
CLOUD_TASKS_EMULATOR_HOST = Text(
    "CLOUD_TASKS_EMULATOR_HOST", deployed=False, meaning="The `host:port` of gcloud-tasks-emulator (tests)."
)
_heading("The sweep")
RECORDING_GRACE_SECONDS = Seconds(
    "RECORDING_GRACE_SECONDS",
    120.0,
    0,
    86400,
    meaning="How long after a call's end a recording still `streaming` (and an answered call with no stream) is "
    "waited for before the sweep recovers it (or reports it failed).",
)
SWEEP_INTERVAL = Seconds(
    "SWEEP_INTERVAL",
    300.0,
    0.1,
    3600,
    meaning="The time between two sweeps; deployed, Cloud Scheduler runs it every whole number of minutes "
    "(rounded up).",
)
SWEEP_BATCH = Whole("SWEEP_BATCH", 100, 1, 1000, "calls", meaning="The waiting calls one sweep looks at.")
_heading("The recordings browser, behind Identity-Aware Proxy")
IAP_AUDIENCE = Text(
    "IAP_AUDIENCE",
    shape=AUDIENCE,
    why="/projects/PROJECT_NUMBER/apps/PROJECT_ID",
    deployed=False,
    browser=True,
    unset="unset (`nox -s deploy` looks it up)",
    meaning="The audience IAP signs its header for; on `gcs` the browser refuses to start without it.",
)
IAP_KEYS_URL = Url(
    "IAP_KEYS_URL",
    ("https", "http"),
    KEYS_URL,
    deployed=False,
    browser=True,
    meaning="Where Google's keys for IAP's signed header are (`http://` only on loopback).",
)
BROWSER_ADMINS = Accounts(
    "BROWSER_ADMINS",
    deployed=False,
    browser=True,
    meaning="Who may change what the browser shows (delete calls, set legal holds, forget numbers, act on "
    "problems); everyone else IAP lets in may only look. `nox -s deploy` lets them through IAP too.",
)

# Every variable the settings read, in the order above.
VARIABLES: tuple[Variable, ...] = tuple(_DECLARED)
# The variables under each heading above, in order.
HEADINGS: tuple[tuple[str, tuple[Variable, ...]], ...] = tuple(
    (title, tuple(_DECLARED[start:end]))
    for (title, start), end in zip(_HEADINGS, [start for _, start in _HEADINGS[1:]] + [len(_DECLARED)], strict=True)
)
# Settings that are secrets: deployed, they live in Secret Manager, never in a plain variable.
SECRET_NAMES = tuple(v.name for v in VARIABLES if v.secret)
# The secrets the recordings browser reads from Secret Manager at start-up, and may read at all.
BROWSER_SECRET_NAMES = tuple(v.name for v in VARIABLES if v.secret and v.browser)


def deployed_names() -> tuple[str, ...]:
    """The variables `nox -s deploy` passes on to the deployables, secrets included."""
    return tuple(v.name for v in VARIABLES if v.deployed)


def browser_names() -> tuple[str, ...]:
    """The variables `nox -s deploy` passes on to the recordings browser, secrets included."""
    return tuple(v.name for v in VARIABLES if v.browser)


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
        if parts.scheme != "https" and parts.hostname not in _LOOPBACK:
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
