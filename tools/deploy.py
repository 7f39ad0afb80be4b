"""Stage the deployables into upload folders and deploy them with gcloud.

`python -m tools.deploy [--dry-run] --project P --region R [--out build]`

Cloud Functions uploads only its `--source` folder, so `functions/main.py` and `shared/` are copied
into one folder first; the recorder gets its own folder with `requirements.txt` at its root, as
App Engine flexible expects. Only the standard library and tapedeck's own settings are imported
here, so `nox -s deploy` installs nothing. The steps themselves are built in tools/deploy_plan.py.
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

from shared.config.settings import SECRET_NAMES, deployed_names, secret_id
from tools.deploy_plan import RUNTIME, Step, account_email, deploy_plan

__all__ = [
    "ENV_NAMES",
    "RUNTIME",
    "DeployError",
    "entry_points",
    "format_plan",
    "function_name",
    "lifecycle_rules",
    "main",
    "run_plan",
    "stage_functions",
    "stage_recorder",
]

# Every variable the settings read that a deployment sets; only these are passed on.
ENV_NAMES = deployed_names()
# Transaction documents of PIN prompt calls are deleted by the bucket's lifecycle rule after this.
PROMPT_PREFIX = "prompts/"
# gcloud's rule for a function name: a letter, then up to 62 letters, digits, `-` or `_`.
_FUNCTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")
_CACHES = shutil.ignore_patterns("__pycache__", "*.pyc")


class DeployError(Exception):
    """Staging or deploying failed; the message says what to fix.

    Not a TapedeckError: those carry an HTTP status, and this module imports only the standard library.
    """


# --- staging: the only part that touches files -----------------------------------------------


def _fresh_dir(target: Path, root: Path) -> Path:
    """Empty `target` so files deleted from the repo do not linger in a staged folder."""
    target, root = target.resolve(), root.resolve()
    if target == root or root.is_relative_to(target) or target in (root / "functions", root / "appengine"):
        raise DeployError(f"refusing to stage into {target}: it would overwrite the sources; pick another --out")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    return target


def _copy_shared(root: Path, target: Path) -> None:
    source = root / "shared"
    shutil.copytree(source, target / "shared", ignore=_CACHES)


def stage_functions(root: Path, out: Path) -> Path:
    """Copy functions/main.py, its requirements.txt and shared/ into `out/functions`, one upload folder."""
    target = _fresh_dir(out / "functions", root)
    for name in ("main.py", "requirements.txt"):
        shutil.copy2(root / "functions" / name, target / name)
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
    """Copy app.yaml, appengine/ and shared/ into `out/appengine`, with requirements.txt at its root."""
    target = _fresh_dir(out / "appengine", root)
    app_yaml = (root / "app.yaml").read_text(encoding="utf-8")
    (target / "app.yaml").write_text(recorder_app_yaml(app_yaml, env or {}, service_account), encoding="utf-8")
    shutil.copytree(root / "appengine", target / "appengine", ignore=_CACHES)
    shutil.copy2(root / "appengine" / "requirements.txt", target / "requirements.txt")
    _copy_shared(root, target)
    return target


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
    """The plan as shell lines: a skipped-if-present step as `describe || create`, a secret as a
    variable piped in (its value is never printed)."""
    lines = []
    for step in steps:
        line = shlex.join(step.argv)
        if step.unless:
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
    Returns the grants that failed; any other failure stops the deploy."""
    if which("gcloud") is None:
        raise DeployError("gcloud is not on PATH: install the Google Cloud CLI, or use --dry-run")
    refused = []
    for step in steps:
        if step.unless and run(step.unless, capture_output=True).returncode == 0:
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


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.deploy", description="Stage and deploy tapedeck.")
    parser.add_argument("--project", required=True, help="Google Cloud project id")
    parser.add_argument("--region", required=True, help="Cloud Functions region, e.g. europe-west1")
    parser.add_argument("--out", type=Path, default=None, help="staging folder (default: build/ in the repo)")
    parser.add_argument("--dry-run", action="store_true", help="stage, then print the commands instead of running")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Stage both deployables, then print (--dry-run) or run the plan."""
    args = _parse(argv)
    source_env = os.environ if environ is None else environ
    env = {name: source_env[name] for name in ENV_NAMES if source_env.get(name)}
    # Deployed functions have no embedded queue's worker beside them: Cloud Tasks runs their tasks.
    if env.setdefault("TASK_QUEUE", "cloud-tasks") != "cloud-tasks":
        print("deploy: deployed functions need TASK_QUEUE=cloud-tasks", file=sys.stderr)
        return 1
    env.setdefault("TASKS_PROJECT", args.project)
    env.setdefault("TASKS_LOCATION", args.region)
    env.setdefault("TASKS_SERVICE_ACCOUNT", account_email("tasks", args.project))
    root = Path(__file__).resolve().parents[1]
    out = args.out if args.out is not None else root / "build"
    try:
        functions_dir = stage_functions(root, out)
        routes_file = env.get("ROUTES_FILE")
        if routes_file:
            # Each deployable sees only its uploaded folder, so the routes file travels inside both:
            # the recorder reads it too, for a stream's live_webhook.
            env["ROUTES_FILE"] = "routes.yaml"
        lifecycle = lifecycle_rules(int(env.get("PROMPT_TTL_DAYS") or 7))
        (out / "lifecycle.json").write_text(json.dumps(lifecycle, indent=2), encoding="utf-8")
        recorder_env = {k: v for k, v in env.items() if k != "LOCAL_STORAGE_DIR" and k not in SECRET_NAMES}
        recorder_env["SECRETS_PROJECT"] = args.project
        recorder_dir = stage_recorder(root, out, recorder_env, account_email("recorder", args.project))
        if routes_file:
            _copy_routes(routes_file, (functions_dir, recorder_dir))
        names = entry_points((root / "functions" / "main.py").read_text(encoding="utf-8"))
        steps = deploy_plan(
            project=args.project,
            region=args.region,
            functions_dir=functions_dir,
            recorder_dir=recorder_dir,
            names=[(name, function_name(name)) for name in names],
            env=env,
        )
        if args.dry_run:
            print(format_plan(steps))
        else:
            run_plan(steps)
    except (DeployError, ValueError) as err:
        print(f"deploy: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
