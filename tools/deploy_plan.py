"""The deploy plan: every gcloud step that puts tapedeck on Google Cloud, built from the settings. Pure.

APIs, the bucket, four service accounts (functions, recorder, the task queue's token, the
recordings browser), the secrets in Secret Manager, the Cloud Tasks queue, the least-privilege
grants, each function with its own resources, App Engine (the recorder, then the browser behind
Identity-Aware Proxy), the bucket's lifecycle, then operations: the Cloud Scheduler job that runs
the sweep, log-based metrics of the outcome lines and alert policies on them (tools/monitoring.py).
A secret's value never appears in a command line: it is handed to `gcloud secrets versions add
--data-file=-` on standard input, and the functions get it with `--set-secrets`. Creating steps
are skipped when their resource exists.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.adapters.cloud_tasks_queue import DISPATCH_DEADLINE
from shared.config.settings import BROWSER_SECRET_NAMES, SECRET_NAMES, secret_id
from shared.core.tasks import MAX_BACKOFF
from tools.monitoring import METRICS, POLICIES

__all__ = [
    "ACCOUNTS",
    "BROWSER_SERVICE",
    "IAP_ACCESSOR",
    "PRIVATE_FUNCTIONS",
    "RECORDER_SERVICE",
    "RESOURCES",
    "SWEEP_JOB",
    "Resources",
    "Step",
    "account_email",
    "deploy_plan",
    "soft_delete_flag",
    "sweep_schedule",
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
    # The sweep's schedule, the metrics counted from log lines, and the alert policies on them.
    "cloudscheduler.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
)
# Cloud Storage's own default soft delete, kept unless SOFT_DELETE_DAYS says otherwise.
DEFAULT_SOFT_DELETE_DAYS = 7
# The Cloud Scheduler job that posts a `sweep` task to the tasks function.
SWEEP_JOB = "tapedeck-sweep"
# How long one sweep may take before Cloud Scheduler counts the run as failed (it is bounded by
# SWEEP_BATCH; the tasks function's own timeout is longer).
SWEEP_DEADLINE = "600s"


@dataclass(frozen=True)
class Step:
    """One gcloud command; `stdin` is fed to it (a secret), `unless` skips it when that command
    succeeds (with `unless_lists`, when it succeeds and prints something: a listing that found one)."""

    argv: tuple[str, ...]
    stdin: str | None = None
    unless: tuple[str, ...] | None = None
    unless_lists: bool = False
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
    """Each identity's roles, on the resources it uses. The functions and the recorder both queue
    tasks (the recorder: a stream's settling, a call's stitching, a live voicemail's transcription, a
    live webhook's transcript), which carry the tasks account's token."""
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


def soft_delete_flag(days: int) -> str:
    """The bucket's soft delete: how long a deleted object can still be restored (0: not at all)."""
    return f"--soft-delete-duration={days}d" if days else "--clear-soft-delete"


def sweep_schedule(seconds: float) -> str:
    """SWEEP_INTERVAL as Cloud Scheduler's cron: every whole number of minutes, rounded up."""
    minutes = max(1, math.ceil(seconds / 60))
    return "0 * * * *" if minutes >= 60 else f"*/{minutes} * * * *"


def _sweep_job(project: str, location: str, env: Mapping[str, str]) -> list[Step]:
    """Cloud Scheduler posts a `sweep` task to the tasks function, with the tasks account's OIDC
    token (the one identity that may invoke it), every SWEEP_INTERVAL. Needs TASKS_URL."""
    url = env.get("TASKS_URL")
    if not url:
        return []
    at, where = f"--location={location}", f"--project={project}"
    body = json.dumps({"kind": "sweep", "key": "scheduled", "payload": {}}, separators=(",", ":"))
    target = (
        f"--schedule={sweep_schedule(float(env.get('SWEEP_INTERVAL') or 300))}",
        "--time-zone=Etc/UTC",
        f"--uri={url}",
        "--http-method=post",
        f"--message-body={body}",
        f"--oidc-service-account-email={account_email('tasks', project)}",
        f"--oidc-token-audience={env.get('TASKS_AUDIENCE') or url}",
        f"--attempt-deadline={SWEEP_DEADLINE}",
    )
    header = "Content-Type=application/json"
    create = ("gcloud", "scheduler", "jobs", "create", "http", SWEEP_JOB, at, *target, f"--headers={header}", where)
    update = ("gcloud", "scheduler", "jobs", "update", "http", SWEEP_JOB, at, *target, f"--update-headers={header}")
    describe = ("gcloud", "scheduler", "jobs", "describe", SWEEP_JOB, at, where)
    return [Step(create, unless=describe), Step((*update, where))]


def _monitoring(project: str, monitoring_dir: Path, channels: Sequence[str]) -> list[Step]:
    """Each log-based metric created (or brought up to date), then each alert policy created unless
    one of its title exists (a policy's id is Google's to choose, so it is found by its title)."""
    where = f"--project={project}"
    steps = []
    for metric in METRICS:
        fields = (f"--description={metric.description}", f"--log-filter={metric.log_filter}")
        steps += [
            _ensure(
                ("logging", "metrics", "create", metric.name, *fields),
                ("logging", "metrics", "describe", metric.name),
                project,
            ),
            Step(("gcloud", "logging", "metrics", "update", metric.name, *fields, where)),
        ]
    notify = [list_flag("--notification-channels", channels)] if channels else []
    policies = ("gcloud", "alpha", "monitoring", "policies")
    for policy in POLICIES:
        create = (*policies, "create", f"--policy-from-file={monitoring_dir / f'{policy.name}.json'}", *notify, where)
        found = (*policies, "list", f'--filter=displayName="{policy.display_name}"', "--format=value(name)", where)
        steps.append(Step(create, unless=found, unless_lists=True))
    return steps


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
    channels: Sequence[str] = (),
) -> list[Step]:
    """Every step, in order. `names` are (entry point, function name); `env` the settings to deploy;
    `members` who may open the recordings browser (`user:…`, `group:…`); `channels` the Cloud
    Monitoring notification channels the alert policies notify. The alert policies' JSON is staged
    in `monitoring/` beside the functions' folder."""
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
        soft_delete = soft_delete_flag(int(env.get("SOFT_DELETE_DAYS") or DEFAULT_SOFT_DELETE_DAYS))
        update = ("gcloud", "storage", "buckets", "update", f"gs://{bucket}", lifecycle, soft_delete)
        steps.append(Step((*update, f"--project={project}")))
    steps += _sweep_job(project, location, env)
    steps += _monitoring(project, functions_dir.parent / "monitoring", channels)
    return steps
