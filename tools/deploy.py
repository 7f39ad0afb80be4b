"""Stage the deployables into upload folders and deploy them with gcloud.

`python -m tools.deploy [--dry-run] --project P --region R [--out build]`

Cloud Functions uploads only its `--source` folder, so `functions/main.py` and `shared/` are copied
into one folder first; the recorder and the recordings browser each get their own folder with
`requirements.txt` at its root, as App Engine expects. Only the standard library and tapedeck's
own settings are imported here, so `nox -s deploy` installs nothing. The steps themselves are
built in tools/deploy_plan.py.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from shared.config.settings import (
    BROWSER_ADMINS,
    SECRET_NAMES,
    StorageSettings,
    browser_names,
    check_engines,
    deployed_names,
    secret_id,
)
from shared.core.errors import ConfigError
from shared.core.iap import AUDIENCE, app_engine_audience
from shared.runtime.version import VERSION_FILE, project_version
from tools.cli import exit_status
from tools.deploy_plan import RUNTIME, Step, account_email, deploy_plan
from tools.locks import REQUIREMENTS
from tools.monitoring import POLICIES, alert_policy

__all__ = [
    "BROWSER_ENV_NAMES",
    "CHANNELS_VARIABLE",
    "ENV_NAMES",
    "GCLOUDIGNORE",
    "MEMBERS_VARIABLE",
    "RUNTIME",
    "DeployError",
    "entry_points",
    "format_plan",
    "function_name",
    "lifecycle_rules",
    "main",
    "project_number",
    "read_channels",
    "read_members",
    "run_plan",
    "stage_browser",
    "stage_functions",
    "stage_monitoring",
    "stage_recorder",
]

# Every variable the settings read that a deployment sets; only these are passed on.
ENV_NAMES = deployed_names()
# The few the recordings browser reads; its secrets come from Secret Manager, never from here.
BROWSER_ENV_NAMES = tuple(name for name in browser_names() if name not in SECRET_NAMES)
# Who may open the recordings browser: IAM members, comma separated. Read by the deploy only;
# BROWSER_ADMINS, read by the browser too, get in as well.
MEMBERS_VARIABLE = "BROWSER_MEMBERS"
_MEMBER_KINDS = ("user", "group", "domain", "serviceAccount")
# The Cloud Monitoring notification channels the alert policies notify (ids or
# projects/P/notificationChannels/ID), comma separated. Read by the deploy only.
CHANNELS_VARIABLE = "ALERT_CHANNELS"
_CHANNEL = re.compile(r"(projects/[a-z0-9-]+/notificationChannels/)?[0-9]+", re.ASCII)
# Transaction documents of PIN prompt calls are deleted by the bucket's lifecycle rule after this.
PROMPT_PREFIX = "prompts/"
# gcloud's rule for a function name: a letter, then up to 62 letters, digits, `-` or `_`.
_FUNCTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")
_CACHES = shutil.ignore_patterns("__pycache__", "*.pyc")
# What of appengine/ each App Engine service runs. The rest stays home: the local platform
# (devserver, local_queue), the operator's commands (recover, reindex), the other service's code,
# and both services' requirements, since each bundle carries its own at its root.
RECORDER_FILES = ("__init__.py", "main.py")
BROWSER_FILES = ("__init__.py", "browser.py", "static", "templates")
# Every upload folder carries this as its .gcloudignore, so Cloud Functions, both App Engine
# environments and `gcloud meta list-files-for-upload` leave out the same files: tests, local
# data, virtual environments, caches and keys that a checkout's appengine/ or shared/ may hold.
# `.*` and `*~` keep dotfiles and editor backups out, as App Engine flexible's default skip_files did.
GCLOUDIGNORE = """\
# Written by `nox -s deploy`: what gcloud leaves out of this upload folder.
.*
__pycache__/
*.py[cod]
*~
venv/
tests/
test_*.py
conftest.py
data/
*.pem
*.key
*.p12
"""


class DeployError(Exception):
    """Staging or deploying failed; the message says what to fix.

    Not a TapedeckError: those carry an HTTP status, and this module imports only the standard library.
    """


# --- staging: the only part that touches files -----------------------------------------------


def _fresh_dir(target: Path, root: Path) -> Path:
    """Empty `target` so files deleted from the repo do not linger in a staged folder, and give it
    the .gcloudignore every upload folder carries."""
    target, root = target.resolve(), root.resolve()
    if target == root or root.is_relative_to(target) or target in (root / "functions", root / "appengine"):
        raise DeployError(f"refusing to stage into {target}: it would overwrite the sources; pick another --out")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    (target / ".gcloudignore").write_text(GCLOUDIGNORE, encoding="utf-8")
    return target


def _stage_app_engine(
    root: Path, target: Path, service: tuple[str, str, tuple[str, ...]], env: Mapping[str, str], account: str | None
) -> Path:
    """An App Engine upload folder: the service's app.yaml, the files of appengine/ it runs,
    shared/, and at its root the requirements.txt exported from its dependency group.
    `service` is (its yaml file, its dependency group, its files of appengine/)."""
    app_yaml, group, files = service
    source = (root / app_yaml).read_text(encoding="utf-8")
    (target / "app.yaml").write_text(recorder_app_yaml(source, env, account), encoding="utf-8")
    (target / "appengine").mkdir()
    for name in files:
        path = root / "appengine" / name
        if path.is_dir():
            shutil.copytree(path, target / "appengine" / name, ignore=_CACHES)
        else:
            shutil.copy2(path, target / "appengine" / name)
    shutil.copy2(root / REQUIREMENTS[group], target / "requirements.txt")
    _copy_shared(root, target)
    return target


def _copy_shared(root: Path, target: Path) -> None:
    """shared/ into a bundle, with the version it is (a bundle has no pyproject.toml)."""
    source = root / "shared"
    shutil.copytree(source, target / "shared", ignore=_CACHES)
    (target / "shared" / VERSION_FILE).write_text(project_version(root) + "\n", encoding="utf-8")


def stage_monitoring(out: Path) -> Path:
    """Write each alert policy's JSON into `out/monitoring`, where the plan's `--policy-from-file` reads it."""
    folder = out / "monitoring"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for policy in POLICIES:
        (folder / f"{policy.name}.json").write_text(json.dumps(alert_policy(policy), indent=2) + "\n", encoding="utf-8")
    return folder


def stage_functions(root: Path, out: Path) -> Path:
    """Copy functions/main.py, its requirements.txt and shared/ into `out/functions`, one upload folder."""
    target = _fresh_dir(out / "functions", root)
    shutil.copy2(root / "functions" / "main.py", target / "main.py")
    shutil.copy2(root / REQUIREMENTS["functions"], target / "requirements.txt")
    _copy_shared(root, target)
    return target


def recorder_app_yaml(app_yaml: str, env: Mapping[str, str], service_account: str | None = None) -> str:
    """app.yaml with its closing `env_variables` block holding `env` over the file's own values,
    and the recorder's own service account.

    App Engine has no deploy-time flag for variables, so the staged copy carries them; secrets are
    not among them: the recorder reads those from Secret Manager at start-up (SECRETS_PROJECT).
    """
    head, marker, block = app_yaml.partition("env_variables:")
    if not marker:
        head, block = app_yaml.rstrip("\n") + "\n", ""
    if service_account:
        head = head.rstrip("\n") + f"\nservice_account: {service_account}\n"
    values: dict[str, str] = {}
    for line in block.splitlines():
        name, sep, value = line.strip().partition(":")
        if sep and not name.startswith("#"):
            values[name.strip()] = value.strip()
    values |= {name: json.dumps(value) for name, value in env.items()}
    return head + "env_variables:\n" + "".join(f"  {name}: {value}\n" for name, value in values.items())


def stage_recorder(
    root: Path, out: Path, env: Mapping[str, str] | None = None, service_account: str | None = None
) -> Path:
    """Copy app.yaml, the recorder's files of appengine/ and shared/ into `out/appengine`, with
    requirements.txt at its root."""
    service = ("app.yaml", "recorder", RECORDER_FILES)
    return _stage_app_engine(root, _fresh_dir(out / "appengine", root), service, env or {}, service_account)


def stage_browser(
    root: Path, out: Path, env: Mapping[str, str] | None = None, service_account: str | None = None
) -> Path:
    """Copy browser.yaml (as app.yaml: its `service: browser` names the service), the browser's
    files of appengine/ and shared/ into `out/browser`, with requirements.txt at its root."""
    service = ("browser.yaml", "browser", BROWSER_FILES)
    return _stage_app_engine(root, _fresh_dir(out / "browser", root), service, env or {}, service_account)


# --- command building: pure ---------------------------------------------------------------------


def _all_value(node: ast.stmt) -> ast.expr | None:
    """The value assigned to `__all__` by this statement, if it is that assignment."""
    if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
        return node.value
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "__all__":
        return node.value
    return None


def entry_points(main_source: str) -> list[str]:
    """The names in `__all__` of functions/main.py, read without importing it."""
    for node in ast.parse(main_source).body:
        value = _all_value(node)
        if value is None:
            continue
        try:
            names = ast.literal_eval(value)
        except ValueError as err:
            raise DeployError("functions/main.py: __all__ must be a literal list of names") from err
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            raise DeployError("functions/main.py: __all__ must be a list of strings")
        return list(names)
    raise DeployError("functions/main.py has no __all__ listing its entry points")


def function_name(entry_point: str) -> str:
    """The deployed function's name: the entry point with `_` turned into `-`."""
    name = entry_point.replace("_", "-")
    if not _FUNCTION_NAME.fullmatch(name):
        raise DeployError(f"{entry_point!r} cannot name a Cloud Function (a letter, then letters, digits or -)")
    return name


def format_plan(steps: Sequence[Step]) -> str:
    """The plan as shell lines: a skipped-if-present step as `describe || create` (or `list | grep
    -q . || create`), a secret as a variable piped in (its value is never printed)."""
    lines = []
    for step in steps:
        line = shlex.join(step.argv)
        if step.unless and step.unless_lists:
            line = f"{shlex.join(step.unless)} | grep -q . || {line}"
        elif step.unless:
            line = f"{shlex.join(step.unless)} >/dev/null 2>&1 || {line}"
        if step.stdin is not None:
            line = f'printf %s "${_secret_of(step)}" | {line}'
        lines.append(line)
    return "\n".join(lines)


def _secret_of(step: Step) -> str:
    """The setting whose value a `versions add` step reads from standard input."""
    sid = step.argv[4]
    return next(name for name in SECRET_NAMES if secret_id(name) == sid)


def run_plan(
    steps: Sequence[Step], which: Callable[[str], str | None] = shutil.which, run: Callable[..., Any] = subprocess.run
) -> list[Step]:
    """Run each step in turn, echoing it as `format_plan` prints it. A step whose `unless` succeeds
    is skipped; a grant the deployer may not give is printed for an owner and the rest goes on.
    A step that requires a refused grant is not run but printed after it. Returns the grants that
    failed and the steps left for an owner; any other failure stops the deploy."""
    if which("gcloud") is None:
        raise DeployError("gcloud is not on PATH: install the Google Cloud CLI, or use --dry-run")
    refused: list[Step] = []
    for step in steps:
        if step.unless and _found(step, run(step.unless, capture_output=True)):
            continue
        if step.requires is not None and any(step.requires is earlier for earlier in refused):
            print(f"! not run until that grant is given; then run:\n  {shlex.join(step.argv)}", file=sys.stderr)
            refused.append(step)
            continue
        print(f"+ {format_plan([step])}", file=sys.stderr, flush=True)
        done = run(step.argv, input=step.stdin.encode() if step.stdin is not None else None)
        if done.returncode == 0:
            continue
        if step.grant:
            print(f"! could not grant; ask a project owner to run:\n  {shlex.join(step.argv)}", file=sys.stderr)
            refused.append(step)
            continue
        raise DeployError(f"{' '.join(step.argv[:4])} failed with exit status {done.returncode}")
    return refused


def _found(step: Step, done: Any) -> bool:
    """Whether the step's `unless` found what the step would create."""
    if done.returncode != 0:
        return False
    return not step.unless_lists or bool((done.stdout or b"").strip())


def read_channels(value: str | None) -> list[str]:
    """ALERT_CHANNELS as notification channels (`12345`, `projects/P/notificationChannels/12345`)."""
    channels = [part.strip() for part in (value or "").split(",") if part.strip()]
    for channel in channels:
        if not _CHANNEL.fullmatch(channel):
            raise DeployError(f"{CHANNELS_VARIABLE}: {channel!r} is not a notification channel's id or name")
    return channels


def read_members(value: str | None) -> list[str]:
    """BROWSER_MEMBERS as IAM members (`user:sam@example.com,group:ops@example.com`); never everyone."""
    members = [part.strip() for part in (value or "").split(",") if part.strip()]
    for member in members:
        kind, sep, who = member.partition(":")
        if not sep or kind not in _MEMBER_KINDS or not who:
            kinds = ", ".join(f"{k}:" for k in _MEMBER_KINDS)
            raise DeployError(f"{MEMBERS_VARIABLE}: {member!r} is not a member; start each with one of {kinds}")
    return members


def project_number(project: str, run: Callable[..., Any] = subprocess.run) -> str:
    """The project's number, which IAP's audience names, from `gcloud projects describe`."""
    argv = ["gcloud", "projects", "describe", project, "--format=value(projectNumber)"]
    done = run(argv, capture_output=True, text=True)
    number = str(done.stdout).strip() if done.returncode == 0 else ""
    if not number.isdigit():
        raise DeployError(f"{shlex.join(argv)} gave no project number: {str(done.stderr).strip()}")
    return number


def _iap_audience(project: str, given: str | None, dry_run: bool) -> str | None:
    """IAP_AUDIENCE as given, else looked up; a dry run does not call gcloud and says how instead."""
    if given:
        if not AUDIENCE.fullmatch(given):
            raise DeployError(f"IAP_AUDIENCE must look like /projects/PROJECT_NUMBER/apps/{project}, got {given!r}")
        return given
    if dry_run:
        how = f"/projects/$(gcloud projects describe {project} --format='value(projectNumber)')/apps/{project}"
        print(f"deploy: IAP_AUDIENCE is looked up when the deploy runs: {how}", file=sys.stderr)
        return None
    if shutil.which("gcloud") is None:
        raise DeployError("gcloud is not on PATH: install the Google Cloud CLI, or use --dry-run")
    return app_engine_audience(project_number(project), project)


def retention_note(storage: StorageSettings) -> str:
    """What the deploy says of how long calls are kept, and of the bucket's soft delete."""
    kept = (
        f"calls are erased {storage.retention_days} days after they begin (RETENTION_DAYS)"
        if storage.retention_days
        else "calls are kept until deleted (RETENTION_DAYS=0)"
    )
    restorable = (
        f"a deleted object can be restored for {storage.soft_delete_days} days "
        "(SOFT_DELETE_DAYS: the bucket's soft delete)"
        if storage.soft_delete_days
        else "a deleted object is gone at once (SOFT_DELETE_DAYS=0: soft delete off)"
    )
    return f"{kept}, unless a route's retention_days says otherwise; {restorable}"


def lifecycle_rules(prompt_ttl_days: int) -> dict[str, object]:
    """The bucket's lifecycle: PIN prompt transactions are deleted after `prompt_ttl_days`."""
    return {
        "rule": [
            {"action": {"type": "Delete"}, "condition": {"age": prompt_ttl_days, "matchesPrefix": [PROMPT_PREFIX]}}
        ]
    }


def _copy_routes(routes_file: str, folders: Sequence[Path]) -> None:
    for folder in folders:
        try:
            shutil.copyfile(routes_file, folder / "routes.yaml")
        except OSError as err:
            raise DeployError(f"ROUTES_FILE {routes_file} cannot be read: {err.strerror}") from err


def _browser_bundle(
    root: Path, out: Path, project: str, source_env: Mapping[str, str], dry_run: bool
) -> tuple[Path, list[str]]:
    """The recordings browser staged with its own few settings, and who may open it: its members,
    and its admins, who the browser itself lets change what it shows."""
    try:
        admins = BROWSER_ADMINS.read(source_env)
    except ConfigError as err:
        raise DeployError(str(err)) from err
    members = list(dict.fromkeys([*read_members(source_env.get(MEMBERS_VARIABLE)), *admins]))
    if not members:
        print(f"deploy: {MEMBERS_VARIABLE} is empty: nobody can open the recordings browser", file=sys.stderr)
    env = {name: source_env[name] for name in BROWSER_ENV_NAMES if source_env.get(name)}
    audience = _iap_audience(project, env.get("IAP_AUDIENCE"), dry_run)
    env |= {"IAP_AUDIENCE": audience} if audience else {}
    env["SECRETS_PROJECT"] = project
    return stage_browser(root, out, env, account_email("browser", project)), members


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.deploy", description="Stage and deploy tapedeck.")
    parser.add_argument("--project", required=True, help="Google Cloud project id")
    parser.add_argument("--region", required=True, help="Cloud Functions region, e.g. europe-west1")
    parser.add_argument("--out", type=Path, default=None, help="staging folder (default: build/ in the repo)")
    parser.add_argument("--dry-run", action="store_true", help="stage, then print the commands instead of running")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Stage the deployables, then print (--dry-run) or run the plan."""
    args = _parse(argv)
    source_env = os.environ if environ is None else environ
    return exit_status("deploy", lambda: _deploy(args, source_env), (DeployError, ConfigError, ValueError))


def _deploy(args: argparse.Namespace, source_env: Mapping[str, str]) -> None:
    env = {name: source_env[name] for name in ENV_NAMES if source_env.get(name)}
    # Deployed functions have no embedded queue's worker beside them: Cloud Tasks runs their tasks.
    if env.setdefault("TASK_QUEUE", "cloud-tasks") != "cloud-tasks":
        raise DeployError("deployed functions need TASK_QUEUE=cloud-tasks")
    # A function's disk is its instance's memory, gone with it, and no two instances share one.
    if env.setdefault("STORAGE", "gcs") != "gcs" or not env.get("GCS_BUCKET"):
        raise DeployError("deployed calls are kept on Cloud Storage: set GCS_BUCKET (and STORAGE=gcs)")
    env.setdefault("TASKS_PROJECT", args.project)
    env.setdefault("TASKS_LOCATION", args.region)
    env.setdefault("TASKS_SERVICE_ACCOUNT", account_email("tasks", args.project))
    root = Path(__file__).resolve().parents[1]
    out = args.out if args.out is not None else root / "build"
    check_engines(env)
    print(f"deploy: tapedeck {project_version(root)} to {args.project} ({args.region})", file=sys.stderr)
    functions_dir = stage_functions(root, out)
    routes_file = env.get("ROUTES_FILE")
    if routes_file:
        # Each deployable sees only its uploaded folder, so the routes file travels inside both:
        # the recorder reads it too, for a stream's live_webhook.
        env["ROUTES_FILE"] = "routes.yaml"
    lifecycle = lifecycle_rules(int(env.get("PROMPT_TTL_DAYS") or 7))
    (out / "lifecycle.json").write_text(json.dumps(lifecycle, indent=2), encoding="utf-8")
    recorder_env = {k: v for k, v in env.items() if k not in SECRET_NAMES}
    recorder_env["SECRETS_PROJECT"] = args.project
    recorder_dir = stage_recorder(root, out, recorder_env, account_email("recorder", args.project))
    if routes_file:
        _copy_routes(routes_file, (functions_dir, recorder_dir))
    browser_dir, members = _browser_bundle(root, out, args.project, source_env, args.dry_run)
    stage_monitoring(out)
    channels = read_channels(source_env.get(CHANNELS_VARIABLE))
    if not channels:
        print(f"deploy: {CHANNELS_VARIABLE} is empty: the alert policies notify nobody", file=sys.stderr)
    if not env.get("TASKS_URL"):
        print("deploy: TASKS_URL is not set: no schedule runs the sweep until it is", file=sys.stderr)
    print(f"deploy: {retention_note(StorageSettings.from_env(env))}", file=sys.stderr)
    names = entry_points((root / "functions" / "main.py").read_text(encoding="utf-8"))
    steps = deploy_plan(
        project=args.project,
        region=args.region,
        functions_dir=functions_dir,
        recorder_dir=recorder_dir,
        browser_dir=browser_dir,
        names=[(name, function_name(name)) for name in names],
        env=env,
        members=members,
        channels=channels,
    )
    if args.dry_run:
        print(format_plan(steps))
    else:
        run_plan(steps)


if __name__ == "__main__":
    sys.exit(main())
