"""Every environment variable tapedeck reads, declared once, under a heading, with its kind,
default, range and meaning beside its name: `nox -s docs` writes docs/reference/settings.md from
these declarations, shared/config/settings.py reads them into groups, and `nox -s deploy` passes
on exactly those marked deployed (the recordings browser only those marked `browser`)."""

from __future__ import annotations

from shared.config.routes import Flow
from shared.config.variables import (
    DECLARED,
    HEADING_STARTS,
    Accounts,
    Choice,
    Host,
    Seconds,
    Speech,
    Text,
    Url,
    Variable,
    Whole,
    heading,
)
from shared.core.iap import AUDIENCE, KEYS_URL
from shared.core.vonage_limits import INPUT_SECONDS, WEBSOCKET_RATES

__all__ = [
    "ALLOW_PRIVATE_CALLBACKS",
    "AWS_DEADLINE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "BROWSER_ADMINS",
    "BROWSER_SECRET_NAMES",
    "CALLBACK_ATTEMPTS",
    "CALLBACK_BACKOFF",
    "CALLBACK_SECRET",
    "CLOUD_TASKS_EMULATOR_HOST",
    "DEFAULT_FLOW",
    "GCS_BUCKET",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_DEADLINE",
    "GREETING",
    "HEADINGS",
    "IAP_AUDIENCE",
    "IAP_KEYS_URL",
    "LINK_TTL_DAYS",
    "LIVE_STREAMS_MAX",
    "LIVE_TRANSCRIBER",
    "LOCAL_STORAGE_DIR",
    "LOG_LEVEL",
    "MESSENGER",
    "PROMPT_API_KEY",
    "PROMPT_HANGUP_GRACE",
    "PROMPT_INPUT_TIMEOUT",
    "PROMPT_TTL_DAYS",
    "PUBLIC_URL",
    "RECORDER_URL",
    "RECORDING_GRACE_SECONDS",
    "RETENTION_DAYS",
    "ROUTES_FILE",
    "SECRET_NAMES",
    "SIGNED_URL_TTL",
    "SMS_FROM",
    "SOFT_DELETE_DAYS",
    "STORAGE",
    "STREAM_RATE",
    "STREAM_RATES",
    "STREAM_ROTATE_SECONDS",
    "STREAM_TOKEN_SECRET",
    "STREAM_TOKEN_TTL",
    "SWEEP_BATCH",
    "SWEEP_INTERVAL",
    "TASKS_AUDIENCE",
    "TASKS_LOCATION",
    "TASKS_PROJECT",
    "TASKS_QUEUE",
    "TASKS_SERVICE_ACCOUNT",
    "TASKS_URL",
    "TASK_QUEUE",
    "TRANSCRIBER",
    "TRANSCRIBE_BUCKET",
    "TRANSCRIPTION_API_KEY",
    "UPLOAD_CHUNK_BYTES",
    "VARIABLES",
    "VONAGE_API_HOST",
    "VONAGE_API_KEY",
    "VONAGE_API_SECRET",
    "VONAGE_APPLICATION_ID",
    "VONAGE_PRIVATE_KEY",
    "VONAGE_REST_HOST",
    "VONAGE_SIGNATURE_SECRET",
    "browser_names",
    "deployed_names",
]

STREAM_RATES = WEBSOCKET_RATES
# Cloud Storage needs resumable chunks in multiples of 256 KiB; parts of the same size keep one rule.
_CHUNK_UNIT = 256 * 1024
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

heading("Storage")
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
heading("The public side")
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
heading("Streams")
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
heading("Live transcription of streams")
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
heading("Vonage")
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
heading("Transcription")
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
heading("Deliveries: result webhooks and PIN callbacks")
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
heading("PIN prompt calls")
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
heading("Deferred work")
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
heading("The sweep")
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
heading("The recordings browser, behind Identity-Aware Proxy")
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
VARIABLES: tuple[Variable, ...] = tuple(DECLARED)
# The variables under each heading above, in order.
_ENDS = [start for _, start in HEADING_STARTS[1:]] + [len(DECLARED)]
HEADINGS: tuple[tuple[str, tuple[Variable, ...]], ...] = tuple(
    (title, tuple(DECLARED[start:end])) for (title, start), end in zip(HEADING_STARTS, _ENDS, strict=True)
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
