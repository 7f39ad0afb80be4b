"""The deploy plan: every gcloud step that puts tapedeck on Google Cloud, built from the settings. Pure.

APIs, the bucket, four service accounts (functions, recorder, the task queue's token, the
recordings browser), the secrets in Secret Manager, the Cloud Tasks queue, the least-privilege
grants, each function with its own resources, App Engine (the recorder, then the browser behind
Identity-Aware Proxy), and the bucket's lifecycle. A secret's value never appears in a command
line: it is handed to `gcloud secrets versions add --data-file=-` on standard input, and the
functions get it with `--set-secrets`. Creating steps are skipped when their resource exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.adapters.cloud_tasks_queue import DISPATCH_DEADLINE
from shared.config.settings import BROWSER_SECRET_NAMES, SECRET_NAMES, secret_id
from shared.core.tasks import MAX_BACKOFF

__all__ = [
    "ACCOUNTS",
    "BROWSER_SERVICE",
    "IAP_ACCESSOR",
    "PRIVATE_FUNCTIONS",
    "RECORDER_SERVICE",
    "RESOURCES",
    "Resources",
    "Step",
    "account_email",
    "deploy_plan",
]

# Called only by the task queue with its service account's OIDC token: never public.
PRIVATE_FUNCTIONS = ("tasks",)
ACCOUNTS = {
    "functions": "tapedeck-fn",
    "recorder": "tapedeck-rec",
    "tasks": "tapedeck-tasks",
    "browser": "tapedeck-browser",
}
# App Engine services: the recorder is the app's first service, so it must be `default`.
RECORDER_SERVICE = "default"
BROWSER_SERVICE = "browser"
# "IAP-secured Web App User": who may pass Identity-Aware Proxy to a service.
IAP_ACCESSOR = "roles/iap.httpsResourceAccessor"
RUNTIME = "python311"
APIS = (
    "cloudfunctions.googleapis.com",
    "run.googleapis.com",
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudtasks.googleapis.com",
    "secretmanager.googleapis.com",
    "appengine.googleapis.com",
    "iamcredentials.googleapis.com",
)


@dataclass(frozen=True)
class Step:
    """One gcloud command; `stdin` is fed to it (a secret), `unless` skips it when that command succeeds."""

    argv: tuple[str, ...]
    stdin: str | None = None
    unless: tuple[str, ...] | None = None
    # A grant: when the deployer lacks the right, it is printed for an owner to run, and the deploy goes on.
    grant: bool = False
    # Run only once this earlier step has succeeded; when it was refused, printed for an owner after it.
    requires: Step | None = None


@dataclass(frozen=True)
class Resources:
    memory: str
    timeout: int  # seconds
    min_instances: int
    max_instances: int


# Chosen per function: `answer` stays warm because a caller waits on it; `tasks` runs pocketsphinx
# (about 91 MiB of model, a whole decode in memory) for up to 30 minutes, Cloud Tasks' longest
# dispatch deadline, which covers the decode of a two-hour recording at this machine's speed.
RESOURCES = {
    "answer": Resources("256Mi", 10, 1, 100),
    "event": Resources("256Mi", 30, 0, 100),
    "recording": Resources("1Gi", 300, 0, 50),
    "transcription": Resources("512Mi", 300, 0, 20),
    "link": Resources("256Mi", 30, 0, 20),
    "call": Resources("256Mi", 60, 0, 20),
    "prompt": Resources("256Mi", 30, 0, 50),
    "tasks": Resources("2Gi", DISPATCH_DEADLINE, 0, 10),
}
_DEFAULT_RESOURCES = Resources("256Mi", 60, 0, 20)
# gcloud splits list flags on commas unless `^D^` picks another delimiter D that no value contains.
_DELIMITERS = (":", "|", "@", "#", "~", ";", "!", "%", "+")


def account_email(kind: str, project: str) -> str:
    return f"{ACCOUNTS[kind]}@{project}.iam.gserviceaccount.com"


def list_flag(flag: str, pairs: Sequence[str]) -> str:
    """`--flag=a=1,b=2`, with another delimiter when a value holds a comma."""
    if not any("," in pair for pair in pairs):
        return f"{flag}=" + ",".join(pairs)
    for delimiter in _DELIMITERS:
        if not any(delimiter in pair for pair in pairs):
            return f"{flag}=^{delimiter}^" + delimiter.join(pairs)
    raise ValueError(f"no delimiter for {flag}: every one of {''.join(_DELIMITERS)} occurs in a value")


def _member(kind: str, project: str) -> str:
    return f"--member=serviceAccount:{account_email(kind, project)}"


def _grant(resource: Sequence[str], kind: str, role: str, project: str, *flags: str) -> Step:
    """`gcloud <resource> add-iam-policy-binding`, giving the `kind` account `role` on it."""
    argv = ("gcloud", *resource[:-1], "add-iam-policy-binding", resource[-1], *flags)
    return Step((*argv, _member(kind, project), f"--role={role}", f"--project={project}"), grant=True)


def _ensure(create: Sequence[str], describe: Sequence[str], project: str) -> Step:
    """`gcloud ... create`, skipped when `gcloud ... describe` finds the resource."""
    where = f"--project={project}"
    return Step(("gcloud", *create, where), unless=("gcloud", *describe, where))


def _foundation(project: str, region: str, bucket: str | None) -> list[Step]:
    steps = [Step(("gcloud", "services", "enable", *APIS, f"--project={project}"))]
    if bucket:
        created = ("storage", "buckets", "create", f"gs://{bucket}", f"--location={region}")
        found = ("storage", "buckets", "describe", f"gs://{bucket}")
        steps.append(_ensure((*created, "--uniform-bucket-level-access"), found, project))
    for kind, account in ACCOUNTS.items():
        created = ("iam", "service-accounts", "create", account, f"--display-name=tapedeck {kind}")
        steps.append(_ensure(created, ("iam", "service-accounts", "describe", account_email(kind, project)), project))
    return steps


def _secrets(project: str, secrets: Mapping[str, str]) -> list[Step]:
    """Each secret created if missing, its value added as a new version from standard input, and
    read access for the functions and the recorder (whose settings check the same secrets), and
    for the browser only to the few its settings need."""
    steps = []
    for name, value in secrets.items():
        sid = secret_id(name)
        readers = ("functions", "recorder", "browser") if name in BROWSER_SECRET_NAMES else ("functions", "recorder")
        steps += [
            _ensure(
                ("secrets", "create", sid, "--replication-policy=automatic"), ("secrets", "describe", sid), project
            ),
            Step(("gcloud", "secrets", "versions", "add", sid, "--data-file=-", f"--project={project}"), stdin=value),
            *(_grant(("secrets", sid), kind, "roles/secretmanager.secretAccessor", project) for kind in readers),
        ]
    return steps


def _queue(project: str, location: str, queue: str, env: Mapping[str, str]) -> list[Step]:
    """The queue with the retry settings deliveries count on: CALLBACK_ATTEMPTS runs, doubling backoff."""
    retry = (
        f"--max-attempts={env.get('CALLBACK_ATTEMPTS') or '5'}",
        f"--min-backoff={env.get('CALLBACK_BACKOFF') or '2'}s",
        f"--max-backoff={MAX_BACKOFF}s",
        "--max-doublings=8",
        "--max-retry-duration=86400s",
        "--max-concurrent-dispatches=20",
    )
    at = f"--location={location}"
    return [
        _ensure(("tasks", "queues", "create", queue, at), ("tasks", "queues", "describe", queue, at), project),
        Step(("gcloud", "tasks", "queues", "update", queue, at, f"--project={project}", *retry)),
    ]


def _grants(project: str, location: str, queue: str, bucket: str | None) -> list[Step]:
    steps = []
    if bucket:
        steps += [_grant(("storage", "buckets", f"gs://{bucket}"), kind, "roles/storage.objectAdmin", project)
                  for kind in ("functions", "recorder")]  # fmt: skip
        # The browser reads, writes and deletes objects; objectUser has no say over the bucket's IAM.
        steps.append(_grant(("storage", "buckets", f"gs://{bucket}"), "browser", "roles/storage.objectUser", project))
    accounts = ("iam", "service-accounts")
    return [
        *steps,
        # V4 signed URLs without a key file: the functions and the browser sign blobs as themselves.
        *(
            _grant((*accounts, account_email(kind, project)), kind, "roles/iam.serviceAccountTokenCreator", project)
            for kind in ("functions", "browser")
        ),
        # The recorder queues tasks too: a live voicemail's batch transcription, a live transcript's
        # delivery, the stitching of a call recorded in several sessions.
        *(
            _grant(("tasks", "queues", queue), kind, "roles/cloudtasks.enqueuer", project, f"--location={location}")
            for kind in ("functions", "recorder")
        ),
        # A task with an OIDC token of the tasks account needs actAs on that account.
        *(
            _grant((*accounts, account_email("tasks", project)), kind, "roles/iam.serviceAccountUser", project)
            for kind in ("functions", "recorder")
        ),
    ]


def _function(
    entry_point: str, name: str, project: str, region: str, source: Path, flags: Sequence[str | None]
) -> Step:
    size = RESOURCES.get(entry_point, _DEFAULT_RESOURCES)
    # Vonage cannot present Google ID tokens, so its webhooks are public and signed instead.
    access = "--no-allow-unauthenticated" if entry_point in PRIVATE_FUNCTIONS else "--allow-unauthenticated"
    argv = (
        "gcloud", "functions", "deploy", name, "--gen2", f"--region={region}", f"--project={project}",
        f"--runtime={RUNTIME}", f"--source={source}", f"--entry-point={entry_point}", "--trigger-http", access,
        f"--service-account={account_email('functions', project)}",
        f"--memory={size.memory}", f"--timeout={size.timeout}s",
        f"--min-instances={size.min_instances}", f"--max-instances={size.max_instances}",
    )  # fmt: skip
    return Step((*argv, *(flag for flag in flags if flag)))


_ON_APP_ENGINE = "--resource-type=app-engine"


def _iap_access(service: str, member: str, project: str) -> Step:
    """`member` may pass Identity-Aware Proxy to one App Engine service."""
    binding = ("gcloud", "iap", "web", "add-iam-policy-binding", _ON_APP_ENGINE, f"--service={service}")
    return Step((*binding, f"--member={member}", f"--role={IAP_ACCESSOR}", f"--project={project}"), grant=True)


def _browser(project: str, browser_dir: Path, members: Sequence[str]) -> list[Step]:
    """The browser deployed as its own service, then Identity-Aware Proxy over it and not over the recorder.

    Turning IAP on for App Engine covers the whole application: `gcloud iap web enable` documents
    its `--service` for backend services only. Google documents per-service access, "including making only some
    of the services publicly accessible"; that an `allUsers` accessor binding on `default` is how,
    and that it lets Vonage's websocket upgrade through with no Google identity, is unconfirmed. So
    the recorder is opened first, and IAP is turned on only once that grant has gone through.
    """
    where = f"--project={project}"
    recorder_public = _iap_access(RECORDER_SERVICE, "allUsers", project)
    readers = [_iap_access(BROWSER_SERVICE, member, project) for member in members]
    # Needs appengine.applications.update, and without an OAuth client of the deployer's own, a
    # project in an organization (Google's managed client admits the organization's users only).
    enable = Step(("gcloud", "iap", "web", "enable", _ON_APP_ENGINE, where), grant=True, requires=recorder_public)
    deploy = Step(("gcloud", "app", "deploy", str(browser_dir / "app.yaml"), where, "--quiet"))
    return [deploy, recorder_public, *readers, enable]


def deploy_plan(
    *,
    project: str,
    region: str,
    functions_dir: Path,
    recorder_dir: Path,
    browser_dir: Path,
    names: Sequence[tuple[str, str]],
    env: Mapping[str, str],
    members: Sequence[str] = (),
) -> list[Step]:
    """Every step, in order. `names` are (entry point, function name); `env` the settings to deploy;
    `members` who may open the recordings browser (`user:…`, `group:…`)."""
    bucket = env.get("GCS_BUCKET")
    location, queue = env.get("TASKS_LOCATION") or region, env.get("TASKS_QUEUE") or "tapedeck"
    secrets = {name: env[name] for name in SECRET_NAMES if env.get(name)}
    plain = [f"{name}={value}" for name, value in env.items() if name not in SECRET_NAMES]
    env_flag = list_flag("--set-env-vars", plain) if plain else None
    secret_flag = list_flag("--set-secrets", [f"{n}={secret_id(n)}:latest" for n in secrets]) if secrets else None
    steps = [
        *_foundation(project, region, bucket),
        *_secrets(project, secrets),
        *_queue(project, location, queue, env),
        *_grants(project, location, queue, bucket),
    ]
    for entry_point, name in names:
        steps.append(_function(entry_point, name, project, region, functions_dir, (env_flag, secret_flag)))
    for entry_point, name in names:
        if entry_point in PRIVATE_FUNCTIONS:
            # Only the queue's identity may invoke the tasks function.
            invoker = ("gcloud", "functions", "add-invoker-policy-binding", name, f"--region={region}")
            steps.append(Step((*invoker, _member("tasks", project), f"--project={project}"), grant=True))
    steps.append(Step(("gcloud", "app", "deploy", str(recorder_dir / "app.yaml"), f"--project={project}", "--quiet")))
    steps += _browser(project, browser_dir, members)
    if bucket:
        lifecycle = f"--lifecycle-file={functions_dir.parent / 'lifecycle.json'}"
        steps.append(
            Step(("gcloud", "storage", "buckets", "update", f"gs://{bucket}", lifecycle, f"--project={project}"))
        )
    return steps
