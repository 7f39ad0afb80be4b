"""Stage the deployables into upload folders and deploy them with gcloud.

`python -m shared.deploy [--dry-run] --project P --region R [--out build]`

Cloud Functions uploads only its `--source` folder, so `functions/main.py` and `shared/` are copied
into one folder first; the recorder gets its own folder with `requirements.txt` at its root, as
App Engine flexible expects. Only the standard library is imported here, so `nox -s deploy`
installs nothing.
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

__all__ = [
    "ENV_NAMES",
    "RUNTIME",
    "DeployError",
    "entry_points",
    "env_vars_flag",
    "format_commands",
    "function_name",
    "gcloud_commands",
    "lifecycle_rules",
    "main",
    "mask_secrets",
    "run_commands",
    "stage_functions",
    "stage_recorder",
]

# Every variable Settings.from_env reads; only these are passed on to the functions.
ENV_NAMES = (
    "STORAGE",
    "LOCAL_STORAGE_DIR",
    "GCS_BUCKET",
    "PUBLIC_URL",
    "RECORDER_URL",
    "STREAM_RATE",
    "GREETING",
    "VONAGE_SIGNATURE_SECRET",
    "STREAM_TOKEN_SECRET",
    "STREAM_TOKEN_TTL",
    "UPLOAD_CHUNK_BYTES",
    "LOG_LEVEL",
    "ROUTES_FILE",
    "DEFAULT_FLOW",
    "TRANSCRIBER",
    "MESSENGER",
    "VONAGE_APPLICATION_ID",
    "VONAGE_PRIVATE_KEY",
    "VONAGE_API_KEY",
    "VONAGE_API_SECRET",
    "VONAGE_API_HOST",
    "VONAGE_REST_HOST",
    "SMS_FROM",
    "TRANSCRIBE_BUCKET",
    "TRANSCRIPTION_API_KEY",
    "AWS_REGION",
    "SIGNED_URL_TTL",
    "LINK_TTL_DAYS",
    "CALLBACK_SECRET",
    "CALLBACK_ATTEMPTS",
    "CALLBACK_BACKOFF",
    "PROMPT_API_KEY",
    "PROMPT_TTL_DAYS",
    "PROMPT_INPUT_TIMEOUT",
    "PROMPT_HANGUP_GRACE",
    "ALLOW_PRIVATE_CALLBACKS",
    "TASK_QUEUE",
    "TASKS_URL",
    "TASKS_PROJECT",
    "TASKS_LOCATION",
    "TASKS_QUEUE",
    "TASKS_SERVICE_ACCOUNT",
    "TASKS_AUDIENCE",
)
# Called only by the task queue with its service account's OIDC token: never public.
PRIVATE_FUNCTIONS = ("tasks",)
# Transaction documents of PIN prompt calls are deleted by the bucket's lifecycle rule after this.
PROMPT_PREFIX = "prompts/"
RUNTIME = "python311"
MASK = "***"
# gcloud splits --set-env-vars on commas unless `^D^` picks another delimiter D that no value contains.
_DELIMITERS = (":", "|", "@", "#", "~", ";", "!", "%", "+")
# gcloud's rule for a function name: a letter, then up to 62 letters, digits, `-` or `_`.
_FUNCTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")
_CACHES = shutil.ignore_patterns("__pycache__", "*.pyc")


class DeployError(Exception):
    """Staging or deploying failed; the message says what to fix.

    Not a TapedeckError: those carry an HTTP status, and this module imports only the standard library.
    """


# --- staging: the only part that touches files -----------------------------------------------


def _ignore_for_shared(source: Path) -> Callable[[str, list[str]], set[str]]:
    """copytree's ignore: caches everywhere, and the local Vonage stand-in, which no deployable runs."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = set(_CACHES(directory, names))
        if Path(directory) == source:
            skipped.add("standin")
        return skipped

    return ignore


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
    shutil.copytree(source, target / "shared", ignore=_ignore_for_shared(source))


def stage_functions(root: Path, out: Path) -> Path:
    """Copy functions/main.py, its requirements.txt and shared/ into `out/functions`, one upload folder."""
    target = _fresh_dir(out / "functions", root)
    for name in ("main.py", "requirements.txt"):
        shutil.copy2(root / "functions" / name, target / name)
    _copy_shared(root, target)
    return target


def recorder_app_yaml(app_yaml: str, env: Mapping[str, str]) -> str:
    """app.yaml with its closing `env_variables` block holding `env` over the file's own values.

    App Engine has no deploy-time flag for variables, so the staged copy carries them; the
    recorder needs the same STREAM_TOKEN_SECRET as the functions to accept their streams.
    """
    head, marker, block = app_yaml.partition("env_variables:")
    if not marker:
        head, block = app_yaml.rstrip("\n") + "\n", ""
    values: dict[str, str] = {}
    for line in block.splitlines():
        name, sep, value = line.strip().partition(":")
        if sep and not name.startswith("#"):
            values[name.strip()] = value.strip()
    values |= {name: json.dumps(value) for name, value in env.items()}
    return head + "env_variables:\n" + "".join(f"  {name}: {value}\n" for name, value in values.items())


def stage_recorder(root: Path, out: Path, env: Mapping[str, str] | None = None) -> Path:
    """Copy app.yaml, appengine/ and shared/ into `out/appengine`, with requirements.txt at its root."""
    target = _fresh_dir(out / "appengine", root)
    app_yaml = (root / "app.yaml").read_text(encoding="utf-8")
    (target / "app.yaml").write_text(recorder_app_yaml(app_yaml, env or {}), encoding="utf-8")
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


def mask_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with the value of every secret (a SECRET or KEY name) replaced by ***, for printing."""
    return {name: MASK if "SECRET" in name or name.endswith("KEY") else value for name, value in env.items()}


def env_vars_flag(env: Mapping[str, str]) -> str | None:
    """The --set-env-vars flag for the tapedeck variables set in `env`, or None when there are none."""
    pairs = [f"{name}={env[name]}" for name in ENV_NAMES if env.get(name)]
    if not pairs:
        return None
    if not any("," in pair for pair in pairs):
        return "--set-env-vars=" + ",".join(pairs)
    # URLs contain ':', so `^:^` is used only when no value has a colon; otherwise the next free one.
    for delimiter in _DELIMITERS:
        if not any(delimiter in pair for pair in pairs):
            return f"--set-env-vars=^{delimiter}^" + delimiter.join(pairs)
    raise DeployError(f"no delimiter for --set-env-vars: every one of {''.join(_DELIMITERS)} occurs in a value")


def gcloud_commands(
    *,
    project: str,
    region: str,
    functions_dir: Path,
    recorder_dir: Path,
    names: Sequence[str],
    env: Mapping[str, str],
) -> list[list[str]]:
    """The task queue, one `gcloud functions deploy` per entry point in `names`, then `gcloud app deploy`
    for the recorder."""
    env_flag = env_vars_flag(env)
    commands = [queue_command(project, region, env)]
    for entry_point in names:
        command = [
            "gcloud",
            "functions",
            "deploy",
            function_name(entry_point),
            "--gen2",
            f"--region={region}",
            f"--project={project}",
            f"--runtime={RUNTIME}",
            f"--source={functions_dir}",
            f"--entry-point={entry_point}",
            "--trigger-http",
            # Vonage cannot present Google ID tokens, so its webhooks are public and signed instead.
            "--no-allow-unauthenticated" if entry_point in PRIVATE_FUNCTIONS else "--allow-unauthenticated",
        ]
        if env_flag:
            command.append(env_flag)
        commands.append(command)
    commands.append(["gcloud", "app", "deploy", str(recorder_dir / "app.yaml"), f"--project={project}", "--quiet"])
    if env.get("GCS_BUCKET"):
        commands.append(
            [
                "gcloud",
                "storage",
                "buckets",
                "update",
                f"gs://{env['GCS_BUCKET']}",
                f"--lifecycle-file={functions_dir.parent / 'lifecycle.json'}",
                f"--project={project}",
            ]
        )
    return commands


def queue_command(project: str, region: str, env: Mapping[str, str]) -> list[str]:
    """Create the Cloud Tasks queue with the retry settings deliveries count on.

    Its attempts are CALLBACK_ATTEMPTS (the tasks function knows a run is the last by them) and
    its backoff doubles from CALLBACK_BACKOFF. On a second deploy use `queues update` with the
    same flags; `create` fails when the queue exists.
    """
    attempts = env.get("CALLBACK_ATTEMPTS") or "5"
    backoff = env.get("CALLBACK_BACKOFF") or "2"
    return [
        "gcloud",
        "tasks",
        "queues",
        "create",
        env.get("TASKS_QUEUE") or "tapedeck",
        f"--location={env.get('TASKS_LOCATION') or region}",
        f"--project={project}",
        f"--max-attempts={attempts}",
        f"--min-backoff={backoff}s",
        "--max-backoff=3600s",
        "--max-doublings=8",
        "--max-retry-duration=86400s",
        "--max-concurrent-dispatches=20",
    ]


def lifecycle_rules(prompt_ttl_days: int) -> dict[str, object]:
    """The bucket's lifecycle: PIN prompt transactions are deleted after `prompt_ttl_days`."""
    return {
        "rule": [
            {"action": {"type": "Delete"}, "condition": {"age": prompt_ttl_days, "matchesPrefix": [PROMPT_PREFIX]}}
        ]
    }


def format_commands(commands: Sequence[Sequence[str]]) -> str:
    """The commands as shell lines, one per line."""
    return "\n".join(shlex.join(command) for command in commands)


# --- running ------------------------------------------------------------------------------------


def run_commands(
    commands: Sequence[Sequence[str]],
    shown: Sequence[Sequence[str]],
    which: Callable[[str], str | None] = shutil.which,
) -> None:
    """Run each command in turn, echoing its masked twin from `shown`; stop at the first failure."""
    if which("gcloud") is None:
        raise DeployError("gcloud is not on PATH: install the Google Cloud CLI, or use --dry-run")
    for command, display in zip(commands, shown, strict=True):
        print(f"+ {shlex.join(display)}", file=sys.stderr, flush=True)
        try:
            subprocess.run(command, check=True)
        except subprocess.CalledProcessError as err:
            # Name the step, not the whole command: its env flag holds secrets.
            raise DeployError(f"{' '.join(command[:4])} failed with exit status {err.returncode}") from err


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m shared.deploy", description="Stage and deploy tapedeck.")
    parser.add_argument("--project", required=True, help="Google Cloud project id")
    parser.add_argument("--region", required=True, help="Cloud Functions region, e.g. europe-west1")
    parser.add_argument("--out", type=Path, default=None, help="staging folder (default: build/ in the repo)")
    parser.add_argument("--dry-run", action="store_true", help="stage, then print the commands instead of running")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Stage both deployables, then print (--dry-run) or run the gcloud commands."""
    args = _parse(argv)
    source_env = os.environ if environ is None else environ
    env = {name: source_env[name] for name in ENV_NAMES if source_env.get(name)}
    root = Path(__file__).resolve().parents[1]
    out = args.out if args.out is not None else root / "build"
    try:
        functions_dir = stage_functions(root, out)
        if env.get("ROUTES_FILE"):
            # Cloud Functions sees only its uploaded folder, so the routes file travels inside it.
            try:
                shutil.copyfile(env["ROUTES_FILE"], functions_dir / "routes.yaml")
            except OSError as err:
                raise DeployError(f"ROUTES_FILE {env['ROUTES_FILE']} cannot be read: {err.strerror}") from err
            env["ROUTES_FILE"] = "routes.yaml"
        lifecycle = lifecycle_rules(int(env.get("PROMPT_TTL_DAYS") or 7))
        (out / "lifecycle.json").write_text(json.dumps(lifecycle, indent=2), encoding="utf-8")
        recorder_dir = stage_recorder(root, out, {k: v for k, v in env.items() if k != "LOCAL_STORAGE_DIR"})
        names = entry_points((root / "functions" / "main.py").read_text(encoding="utf-8"))

        def build(values: Mapping[str, str]) -> list[list[str]]:
            return gcloud_commands(
                project=args.project,
                region=args.region,
                functions_dir=functions_dir,
                recorder_dir=recorder_dir,
                names=names,
                env=values,
            )

        shown = build(mask_secrets(env))
        if args.dry_run:
            print(format_commands(shown))
        else:
            run_commands(build(env), shown)
    except DeployError as err:
        print(f"deploy: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
