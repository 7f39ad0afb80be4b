"""The real Google Cloud CLI reads the deploy: every command of the dry-run plan gets through gcloud's
own parsing and stops only for want of an account, each staged app.yaml passes App Engine's
validation, and each upload folder holds what its deployable needs and nothing else.

gcloud runs with an empty configuration, no account and no project, no prompts, no metadata
server to take an identity from, and a proxy on a closed local port, so no command reaches
Google Cloud or waits on the network. Without an account gcloud answers a command it has parsed
with status 1 and "You do not currently have an active account selected"; a flag it does not
know, or a value its parser refuses, gets status 2 and the flag's name. What a command checks only
after it has an account (a runtime's name, a memory size, a service account's existence) stays
unchecked here. The commands go through tests/tools/gcloud_batch.py, which pays gcloud's one-second
start-up once instead of once per command.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tools.deploy import GCLOUDIGNORE, main, stage_browser, stage_functions, stage_recorder
from tools.deploy_plan import soft_delete_flag

ROOT = Path(__file__).resolve().parents[2]
BATCH = Path(__file__).with_name("gcloud_batch.py")
GCLOUD = shutil.which("gcloud")
needs_gcloud = pytest.mark.skipif(GCLOUD is None, reason="the Google Cloud CLI (gcloud) is not on PATH")
PROJECT, REGION = "demo-project", "europe-west1"
# A command takes about a second on its own and a fraction of one in the batch: far longer means
# it is waiting on something.
COMMAND_TIMEOUT = 30
BATCH_SECONDS_PER_COMMAND = 3
NO_ACCOUNT = "You do not currently have an active account selected."
_ERROR = re.compile(r"^ERROR: \((gcloud[\w.-]*)\) (.*)$", re.MULTILINE)


class Outcome(TypedDict):
    status: int
    stdout: str
    stderr: str


# --- gcloud with nothing to reach ---------------------------------------------------------------


@pytest.fixture
def gcloud_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a gcloud that has no account and cannot wait on the network."""
    home = tmp_path / "gcloud-home"
    home.mkdir()
    with socket.socket() as closed:
        # Bound and never listening: a connection to it is refused at once.
        closed.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"
        yield {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "CLOUDSDK_CONFIG": str(home / "config"),
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
            # On a Google Cloud machine the metadata server would lend gcloud that machine's account.
            "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
            "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
            "CLOUDSDK_SURVEY_DISABLE_PROMPTS": "true",
            **{name: proxy for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")},
        }


def _communicate(argv: Sequence[str], env: dict[str, str], stdin: str, timeout: float) -> tuple[int, str, str]:
    with subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    ) as process:  # fmt: skip
        try:
            out, err = process.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            pytest.fail(f"{shlex.join(argv)} still ran after {timeout} s")
        return process.returncode, out, err


def run_batch(jobs: Sequence[dict[str, Any]], env: dict[str, str]) -> list[Outcome]:
    """Each job (a command line without `gcloud`, or an app.yaml to check) run by the real gcloud."""
    assert GCLOUD is not None
    assert not any(c.isspace() for c in str(BATCH)), f"gcloud's launcher splits {BATCH} at its spaces"
    request = json.dumps({"jobs": list(jobs), "parallel": os.cpu_count() or 2, "timeout": COMMAND_TIMEOUT})
    batch_env = {**env, "CLOUDSDK_PYTHON_ARGS": str(BATCH)}
    timeout = COMMAND_TIMEOUT + BATCH_SECONDS_PER_COMMAND * len(jobs)
    status, out, err = _communicate([GCLOUD], batch_env, request, timeout)
    assert status == 0, f"the gcloud batch failed with {status}:\n{err}"
    outcomes: list[Outcome] = json.loads(out)
    return outcomes


def errors_of(outcome: Outcome) -> list[tuple[str, str]]:
    """gcloud's `ERROR: (gcloud.group.command) message` lines: (command path, message)."""
    return _ERROR.findall(outcome["stderr"])


def stopped_for_want_of_an_account(argv: Sequence[str], outcome: Outcome) -> bool:
    """gcloud parsed `argv` as the command it names and ran it as far as the account it needs."""
    errors = errors_of(outcome)
    if outcome["status"] != 1 or len(errors) != 1:
        return False
    path, message = errors[0]
    words = path.split(".")
    return message == NO_ACCOUNT and words == list(argv[: len(words)])


def _describe(argv: Sequence[str], outcome: Outcome) -> str:
    found = errors_of(outcome) or [("", outcome["stderr"].strip()[-300:])]
    return f"{shlex.join(argv)}\n  -> status {outcome['status']}: {found[0][1]}"


# --- the plan as the dry run prints it ------------------------------------------------------------


def realistic_environ(tmp_path: Path) -> dict[str, str]:
    """What an operator's shell holds for a full deployment: every secret, URLs, a greeting with
    commas, a routes file, who may open the recordings browser and who may change what it shows."""
    routes = tmp_path / "routes.yaml"
    routes.write_text('"447700900004":\n  flow: voicemail\n  recipients: ["447700900111"]\n')
    return {
        "STORAGE": "gcs",
        "GCS_BUCKET": "demo-project-calls",
        "PUBLIC_URL": "https://europe-west1-demo-project.cloudfunctions.net",
        "RECORDER_URL": "wss://demo-project.ew.r.appspot.com/socket",
        "GREETING": "Hello, this call is recorded: please, speak after the tone.",
        "ROUTES_FILE": str(routes),
        "LOG_LEVEL": "INFO",
        "MESSENGER": "vonage",
        "SMS_FROM": "447700900000",
        "VONAGE_APPLICATION_ID": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
        "VONAGE_API_KEY": "abcd1234",
        "VONAGE_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nMIIEv...\n-----END PRIVATE KEY-----\n",
        "VONAGE_API_SECRET": "api-s3cr3t",
        "VONAGE_SIGNATURE_SECRET": "sig-s3cr3t",
        "STREAM_TOKEN_SECRET": "tok-s3cr3t",
        "CALLBACK_SECRET": "cb-s3cr3t",
        "PROMPT_API_KEY": "prompt-s3cr3t",
        "CALLBACK_ATTEMPTS": "8",
        "CALLBACK_BACKOFF": "1.5",
        "PROMPT_TTL_DAYS": "14",
        "TASK_QUEUE": "cloud-tasks",
        "TASKS_URL": "https://tasks-abc123-ew.a.run.app",
        "TASKS_AUDIENCE": "https://tasks-abc123-ew.a.run.app",
        "SWEEP_INTERVAL": "150",
        "BROWSER_MEMBERS": "user:sam@example.com,group:ops@example.com",
        "BROWSER_ADMINS": "user:alice@example.com",
        "ALERT_CHANNELS": "projects/demo-project/notificationChannels/1234567890,9876543210",
        "IAP_AUDIENCE": f"/projects/123456789012/apps/{PROJECT}",
    }


def dry_run(out: Path, environ: dict[str, str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The plan `nox -s deploy -- --dry-run` prints, one shell line a step; staged into `out`."""
    assert main(["--dry-run", "--project", PROJECT, "--region", REGION, "--out", str(out)], environ) == 0
    return capsys.readouterr().out.splitlines()


@pytest.fixture
def lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The dry-run plan of a realistic deployment, one shell line a step."""
    return dry_run(tmp_path / "build", realistic_environ(tmp_path), capsys)


def commands_of(line: str) -> list[list[str]]:
    """The gcloud commands of one printed step: `describe … >/dev/null 2>&1 || create …`, `list … |
    grep -q . || create …`, or `printf %s "$SECRET" | gcloud …` (whose secret the tests leave out:
    stdin is empty), or one."""
    words = shlex.split(line)
    if words[:2] == ["printf", "%s"] and words[3] == "|":
        words = words[4:]
    if "||" in words:
        at = words.index("||")
        checked = words[at - 4 : at] == ["|", "grep", "-q", "."]
        assert checked or words[at - 2 : at] == [">/dev/null", "2>&1"], line
        commands = [words[: at - (4 if checked else 2)], words[at + 1 :]]
    else:
        commands = [words]
    assert all(command[0] == "gcloud" and "|" not in command for command in commands), line
    return commands


# --- the tests ----------------------------------------------------------------------------------


def test_every_upload_folder_carries_the_gcloudignore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dry_run(tmp_path, realistic_environ(tmp_path), capsys)
    for folder in ("functions", "appengine", "browser"):
        assert (tmp_path / folder / ".gcloudignore").read_text() == GCLOUDIGNORE


@needs_gcloud
@pytest.mark.slow
def test_a_flag_gcloud_does_not_know_or_a_value_it_refuses_is_caught(
    gcloud_env: dict[str, str], lines: list[str]
) -> None:
    (answer,) = (
        words for line in lines for words in commands_of(line) if words[1:4] == ["functions", "deploy", "answer"]
    )
    unknown = [*answer, "--no-such-flag"]
    refused = [word.replace("--timeout=10s", "--timeout=ten") for word in answer]
    assert refused != answer
    # Checked after parsing, before any account is needed: still not a stop for want of an account.
    late = ["gcloud", "iap", "web", "enable", "--resource-type=app-engine", "--service=default", f"--project={PROJECT}"]
    cases = [answer, unknown, refused, late]

    batch = run_batch([{"argv": argv[1:]} for argv in cases], gcloud_env)
    with ThreadPoolExecutor(2) as pool:
        itself = list(pool.map(lambda argv: _communicate(argv, gcloud_env, "", COMMAND_TIMEOUT), (answer, unknown)))

    assert [stopped_for_want_of_an_account(argv, o) for argv, o in zip(cases, batch, strict=True)] == [
        True, False, False, False,
    ]  # fmt: skip
    assert [o["status"] for o in batch] == [1, 2, 2, 1]
    assert errors_of(batch[1])[0][1].startswith("unrecognized arguments: --no-such-flag")
    assert errors_of(batch[2])[0][1].startswith("argument --timeout: Failed to parse duration")
    assert errors_of(batch[3])[0][1].startswith("Invalid value for [--service]")
    # The batch answers as the gcloud command does.
    for (status, _, err), outcome in zip(itself, batch[:2], strict=True):
        assert (status, _ERROR.findall(err)) == (outcome["status"], errors_of(outcome))


@needs_gcloud
@pytest.mark.slow
def test_every_command_of_the_plan_stops_only_for_want_of_an_account(
    gcloud_env: dict[str, str], lines: list[str]
) -> None:
    commands = [words for line in lines for words in commands_of(line)]
    groups = {tuple(words[1:3]) for words in commands}
    assert {("functions", "deploy"), ("app", "deploy"), ("secrets", "versions"), ("iap", "web")} <= groups
    assert {("scheduler", "jobs"), ("logging", "metrics"), ("alpha", "monitoring")} <= groups
    checks = sum("describe" in words or "list" in words for words in commands)
    assert checks == sum("||" in line for line in lines) > 0
    # The bucket's soft delete turned off (SOFT_DELETE_DAYS=0) instead of kept for its days.
    (update,) = [words for words in commands if words[1:4] == ["storage", "buckets", "update"]]
    assert "--soft-delete-duration=7d" in update
    commands.append([soft_delete_flag(0) if word.startswith("--soft-delete") else word for word in update])

    outcomes = run_batch([{"argv": words[1:]} for words in commands], gcloud_env)

    failed = [_describe(argv, o) for argv, o in zip(commands, outcomes, strict=True)
              if not stopped_for_want_of_an_account(argv, o)]  # fmt: skip
    assert not failed, "gcloud refused these commands of the plan:\n" + "\n".join(failed)


@needs_gcloud
@pytest.mark.slow
def test_each_staged_app_yaml_passes_app_engine_validation(
    tmp_path: Path, gcloud_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "build"
    dry_run(out, realistic_environ(tmp_path), capsys)
    recorder, browser = out / "appengine" / "app.yaml", out / "browser" / "app.yaml"
    unknown_key, bad_value = tmp_path / "unknown" / "app.yaml", tmp_path / "bad" / "app.yaml"
    for broken in (unknown_key, bad_value):
        broken.parent.mkdir()
    unknown_key.write_text(recorder.read_text().replace("network:", "netwerk:"))
    bad_value.write_text(browser.read_text().replace("max_instances: 2", "max_instances: two"))
    assert unknown_key.read_text() != recorder.read_text() and bad_value.read_text() != browser.read_text()

    checked = run_batch([{"app_yaml": str(path)} for path in (recorder, browser, unknown_key, bad_value)], gcloud_env)

    assert [o["status"] for o in checked] == [0, 0, 1, 1], [o["stderr"] for o in checked]
    assert [json.loads(o["stdout"]) for o in checked[:2]] == [
        [{"service": "default", "env": "FLEX", "runtime": "python"}],
        [{"service": "browser", "env": "STANDARD", "runtime": "python311"}],
    ]
    assert [o["stderr"] for o in checked[:2]] == ["", ""]  # not even a warning
    assert "Unexpected attribute 'netwerk'" in checked[2]["stderr"]
    assert "Value 'two' for max_instances could not be converted" in checked[3]["stderr"]


# What no upload folder may hold, however it got into the checkout or the staged folder.
DECOYS = (
    "tests/test_pages.py",
    "conftest.py",
    "test_settings.py",
    "data/calls/CON-1/audio.wav",
    ".venv/bin/python",
    "venv/pyvenv.cfg",
    "__pycache__/main.cpython-311.pyc",
    "main.pyc",
    ".nox/tests/bin/python",
    ".pytest_cache/v/cache/lastfailed",
    ".mypy_cache/3.11/main.meta.json",
    ".env",
    "tapedeck-rec.pem",
    "signing.key",
    "service-account.p12",
    "main.py~",
)
_FORBIDDEN_PARTS = {"tests", "data", "venv", "__pycache__"}
_FORBIDDEN_SUFFIXES = (".pem", ".key", ".p12", ".pyc", "~")


def forbidden(path: str) -> bool:
    """A test, local data, a virtual environment, a cache, a key or a dotfile."""
    parts = path.split("/")
    name = parts[-1]
    return (
        bool(_FORBIDDEN_PARTS & set(parts[:-1]))
        or any(part.startswith(".") for part in parts)
        or name.endswith(_FORBIDDEN_SUFFIXES)
        or name == "conftest.py"
        or name.startswith("test_")
    )


def _plant(folder: Path) -> None:
    for decoy in DECOYS:
        path = folder / decoy
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("not for upload\n")


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@needs_gcloud
@pytest.mark.slow
def test_the_upload_folders_leave_out_tests_data_environments_caches_and_keys(
    tmp_path: Path, gcloud_env: dict[str, str]
) -> None:
    # A checkout with decoys in the folders that are copied whole, and more in each staged folder.
    root = tmp_path / "repo"
    for name in ("functions", "shared", "appengine"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("app.yaml", "browser.yaml", "pyproject.toml"):
        shutil.copy2(ROOT / name, root / name)
    for copied in ("appengine", "appengine/templates", "shared", "shared/core"):
        _plant(root / copied)
    out = tmp_path / "build"
    folders = [stage(root, out) for stage in (stage_functions, stage_recorder, stage_browser)]
    for folder in folders:
        _plant(folder)

    listed = run_batch([{"argv": ["meta", "list-files-for-upload", str(f)]} for f in folders], gcloud_env)

    for folder, outcome in zip(folders, listed, strict=True):
        assert outcome["status"] == 0, outcome["stderr"]
        uploaded = set(outcome["stdout"].split())
        assert not {path for path in uploaded if forbidden(path)}, folder.name
        assert uploaded == {path for path in _files(folder) if not forbidden(path)}, folder.name
        assert "shared/config/settings.py" in uploaded and "requirements.txt" in uploaded
        assert "shared/version.txt" in uploaded
    functions, recorder, browser = (set(o["stdout"].split()) for o in listed)
    assert "main.py" in functions
    assert {"app.yaml", "appengine/main.py"} <= recorder
    assert {"app.yaml", "appengine/browser.py", "appengine/static/browser.css"} <= browser
    assert "appengine/templates/browser/calls.html" in browser
