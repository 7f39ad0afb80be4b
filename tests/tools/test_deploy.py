"""The deploy step: staged upload folders, the gcloud commands, and a staged bundle served on its own."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from shared.config.settings import secret_id
from tools.deploy import (
    ENV_NAMES,
    DeployError,
    entry_points,
    format_plan,
    lifecycle_rules,
    main,
    project_number,
    read_members,
    run_plan,
    stage_browser,
    stage_functions,
    stage_recorder,
)
from tools.deploy_plan import Step, deploy_plan

ROOT = Path(__file__).resolve().parents[2]
RECORDER_URL = "wss://rec.example.test/socket"


def _files(folder: Path) -> set[str]:
    """What a staged folder holds besides the .gcloudignore every one carries."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != ".gcloudignore"}


def _write(path: Path, text: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    """A small tree shaped like the repo, with the caches and tools a bundle must leave out."""
    root = tmp_path / "repo"
    _write(root / "functions" / "main.py", '__all__ = ["answer", "on_finalize"]\n')
    _write(root / "functions" / "requirements.txt", "flask\n")
    _write(root / "functions" / "__pycache__" / "main.cpython-311.pyc")
    _write(root / "shared" / "__init__.py")
    _write(root / "shared" / "core" / "ncco.py")
    _write(root / "shared" / "adapters" / "keys.py")
    _write(root / "shared" / "adapters" / "__pycache__" / "keys.cpython-311.pyc")
    _write(root / "shared" / "__pycache__" / "ncco.cpython-311.pyc")
    _write(root / "tools" / "deploy.py")
    _write(root / "tools" / "standin" / "__main__.py")
    _write(root / "tools" / "standin" / "requirements.txt", "vonage\n")
    _write(root / "app.yaml", "runtime: python\nenv: flex\n")
    _write(root / "pyproject.toml", '[project]\nname = "tapedeck"\nversion = "9.8.7"\n')
    _write(root / "browser.yaml", "runtime: python311\nservice: browser\nenv_variables:\n  STORAGE: gcs\n")
    _write(root / "appengine" / "__init__.py")
    _write(root / "appengine" / "main.py")
    _write(root / "appengine" / "browser.py")
    _write(root / "appengine" / "devserver.py")
    _write(root / "appengine" / "static" / "browser.css")
    _write(root / "appengine" / "templates" / "browser" / "page.html")
    _write(root / "appengine" / "requirements.txt", "gunicorn\n")
    _write(root / "appengine" / "requirements-browser.txt", "gunicorn-for-the-browser\n")
    _write(root / "appengine" / "__pycache__" / "main.cpython-311.pyc")
    return root


# The fake tree's shared/ sources, which both bundles carry (caches and tools left out).
SHARED = ("shared/__init__.py", "shared/core/ncco.py", "shared/adapters/keys.py", "shared/version.txt")


def test_functions_bundle_holds_main_requirements_and_shared_only(fake_root: Path, tmp_path: Path) -> None:
    staged = stage_functions(fake_root, tmp_path / "build")

    assert staged == (tmp_path / "build" / "functions").resolve()
    assert _files(staged) == {"main.py", "requirements.txt", *SHARED}
    assert (staged / "requirements.txt").read_text() == "flask\n"


def test_recorder_bundle_has_app_yaml_and_requirements_at_its_root(fake_root: Path, tmp_path: Path) -> None:
    staged = stage_recorder(fake_root, tmp_path / "build")

    assert _files(staged) == {
        "app.yaml",
        "requirements.txt",
        "appengine/__init__.py",
        "appengine/main.py",
        *SHARED,
    }
    assert (staged / "requirements.txt").read_text() == "gunicorn\n"


def test_restaging_drops_files_deleted_from_the_repo(fake_root: Path, tmp_path: Path) -> None:
    stage_functions(fake_root, tmp_path / "build")
    (fake_root / "shared" / "core" / "ncco.py").unlink()

    staged = stage_functions(fake_root, tmp_path / "build")

    assert "shared/core/ncco.py" not in _files(staged)


def test_staging_refuses_to_overwrite_the_sources(fake_root: Path) -> None:
    with pytest.raises(DeployError, match="overwrite the sources"):
        stage_functions(fake_root, fake_root)


def test_the_real_functions_bundle_copies_every_shared_module_and_no_tool(tmp_path: Path) -> None:
    staged = stage_functions(ROOT, tmp_path)

    expected = {
        "shared/" + p.relative_to(ROOT / "shared").as_posix()
        for p in (ROOT / "shared").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    files = _files(staged)
    assert {"main.py", "requirements.txt", "shared/config/settings.py", "shared/flows/inbound.py"} <= files
    assert {f for f in files if f.endswith(".py")} - {"main.py"} == expected
    assert not any("standin" in f or "deploy" in f or "__pycache__" in f for f in files)


def test_entry_points_come_from_main_dunder_all() -> None:
    names = entry_points((ROOT / "functions" / "main.py").read_text())

    assert {"answer", "event"} <= set(names)
    assert entry_points("x: list[str] = []\n__all__: list[str] = ['a', 'b_c']\n") == ["a", "b_c"]
    with pytest.raises(DeployError, match="no __all__"):
        entry_points("def answer(request): ...\n")


def test_the_lifecycle_rule_deletes_prompt_transactions_after_their_age() -> None:
    assert lifecycle_rules(7) == {
        "rule": [{"action": {"type": "Delete"}, "condition": {"age": 7, "matchesPrefix": ["prompts/"]}}]
    }


def test_running_without_gcloud_on_path_fails_clearly() -> None:
    with pytest.raises(DeployError, match="gcloud is not on PATH"):
        run_plan([Step(("gcloud", "app", "deploy"))], which=lambda name: None)


class Gcloud:
    """A stand-in for gcloud, since no Google Cloud project can be reached here: it keeps what the
    deploy runs and answers as gcloud would: `describe` finds what `exists` holds, a `list` prints
    the names of those it holds, and grants fail when the deployer lacks the right."""

    def __init__(self, exists: set[str], may_grant: bool) -> None:
        self.exists, self.may_grant = exists, may_grant
        self.ran: list[tuple[tuple[str, ...], bytes | None]] = []

    def __call__(self, argv: tuple[str, ...], input: bytes | None = None, capture_output: bool = False) -> Any:
        if "list" in argv:
            listed = [name for name in self.exists if any(name in word for word in argv)]
            return subprocess.CompletedProcess(argv, 0, "".join(f"projects/demo/alertPolicies/{n}\n" for n in listed))
        found = "describe" in argv and any(name in argv for name in self.exists)
        if "describe" not in argv:
            self.ran.append((argv, input))
        refused = "add-iam-policy-binding" in argv[3] + argv[4] and not self.may_grant
        return subprocess.CompletedProcess(argv, 0 if found or ("describe" not in argv and not refused) else 1)


SECRETS = {
    "STREAM_TOKEN_SECRET": "tok-s3cr3t",
    "VONAGE_SIGNATURE_SECRET": "sig-s3cr3t",
    "CALLBACK_SECRET": "cb-s3cr3t",
    "VONAGE_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nkey-s3cr3t\n-----END PRIVATE KEY-----",
}
ENVIRON = {
    "STORAGE": "gcs",
    "GCS_BUCKET": "calls",
    "GREETING": "Hello, this call is recorded.",
    "TASK_QUEUE": "cloud-tasks",
    "PATH": "/usr/bin",
    **SECRETS,
}


MEMBERS = ["user:sam@example.com", "group:ops@example.com"]


def plan(tmp_path: Path) -> list[Step]:
    return deploy_plan(
        project="demo",
        region="europe-west1",
        functions_dir=tmp_path / "functions",
        recorder_dir=tmp_path / "appengine",
        browser_dir=tmp_path / "browser",
        names=[(name, name) for name in ("answer", "recording", "tasks")],
        env={k: v for k, v in ENVIRON.items() if k in ENV_NAMES},
        members=MEMBERS,
    )


def test_no_secret_is_ever_in_a_command_line(tmp_path: Path) -> None:
    steps = plan(tmp_path)
    for step in steps:
        assert not any(secret in " ".join(step.argv) for secret in SECRETS.values()), step.argv
    fed = {step.argv[4]: step.stdin for step in steps if step.stdin is not None}
    assert fed == {secret_id(name): value for name, value in SECRETS.items()}
    deploys = [step.argv for step in steps if step.argv[1:3] == ("functions", "deploy")]
    for argv in deploys:
        (secrets,) = (flag for flag in argv if flag.startswith("--set-secrets="))
        assert "STREAM_TOKEN_SECRET=tapedeck-stream-token-secret:latest" in secrets
        (plain,) = (flag for flag in argv if flag.startswith("--set-env-vars="))
        assert not any(name in plain for name in SECRETS)


def test_every_function_has_its_own_identity_and_resources_and_tasks_is_private(tmp_path: Path) -> None:
    deploys = {step.argv[3]: step.argv for step in plan(tmp_path) if step.argv[1:3] == ("functions", "deploy")}
    assert set(deploys) == {"answer", "recording", "tasks"}
    for name, argv in deploys.items():
        flags = dict(flag.split("=", 1) for flag in argv if flag.startswith("--") and "=" in flag)
        assert flags["--service-account"] == "tapedeck-fn@demo.iam.gserviceaccount.com"
        assert {"--memory", "--timeout", "--min-instances", "--max-instances"} <= set(flags)
        public = "--allow-unauthenticated" in argv
        assert public is (name != "tasks") and ("--no-allow-unauthenticated" in argv) is (name == "tasks")
    tasks = dict(flag.split("=", 1) for flag in deploys["tasks"] if "=" in flag)
    # pocketsphinx runs in tasks: room for its model and a whole decode, and time for a long message.
    assert tasks["--memory"] == "2Gi" and int(tasks["--timeout"].rstrip("s")) >= 900
    assert deploys["answer"][deploys["answer"].index("--min-instances=1")]


def test_the_plan_creates_accounts_queue_and_least_privilege_grants(tmp_path: Path) -> None:
    lines = format_plan(plan(tmp_path)).splitlines()
    text = "\n".join(lines)
    assert lines[0].startswith("gcloud services enable") and "cloudtasks.googleapis.com" in lines[0]
    for account in ("tapedeck-fn", "tapedeck-rec", "tapedeck-tasks", "tapedeck-browser"):
        assert f"gcloud iam service-accounts create {account}" in text
    assert "gcloud tasks queues create tapedeck --location=europe-west1" in text
    assert "--max-attempts=5" in text and "--min-backoff=2s" in text
    fn, tasks = "serviceAccount:tapedeck-fn@demo.iam.gserviceaccount.com", "serviceAccount:tapedeck-tasks@demo"
    grants = [line for line in lines if "add-iam-policy-binding" in line or "add-invoker-policy-binding" in line]
    assert any("gcloud functions add-invoker-policy-binding tasks" in g and tasks in g for g in grants)
    recorder = "serviceAccount:tapedeck-rec@demo.iam.gserviceaccount.com"
    # The functions and the recorder queue tasks, carrying the tasks account's OIDC token.
    for account in (fn, recorder):
        assert any("roles/cloudtasks.enqueuer" in g and account in g for g in grants)
        assert any(
            "roles/iam.serviceAccountUser" in g and "tapedeck-tasks@demo" in g.split("--member")[0] and account in g
            for g in grants
        )
    assert any("roles/iam.serviceAccountTokenCreator" in g and fn in g for g in grants)
    assert all("projects add-iam-policy-binding" not in g for g in grants)  # nothing project-wide
    assert any(line.startswith('printf %s "$STREAM_TOKEN_SECRET" | gcloud secrets versions add') for line in lines)
    assert "s3cr3t" not in text


def test_running_skips_what_exists_feeds_secrets_on_stdin_and_prints_refused_grants(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gcloud = Gcloud(exists={"gs://calls", "tapedeck-fn@demo.iam.gserviceaccount.com"}, may_grant=False)
    refused = run_plan(plan(tmp_path), which=lambda name: "/usr/bin/gcloud", run=gcloud)
    ran = [argv for argv, _ in gcloud.ran]
    assert ("gcloud", "storage", "buckets", "create") not in [argv[:4] for argv in ran]
    assert not any(argv[3:5] == ("create", "tapedeck-fn") for argv in ran)
    assert any(argv[3:5] == ("create", "tapedeck-tasks") for argv in ran)
    assert {input for argv, input in gcloud.ran if input} == {v.encode() for v in SECRETS.values()}
    assert refused and all(step.grant for step in refused)
    err = capsys.readouterr().err
    assert "ask a project owner to run" in err
    assert ran[-1][:5] == ("gcloud", "alpha", "monitoring", "policies", "create")  # the deploy went on to the end
    # The recorder could not be kept open to Vonage, so IAP was not turned on: it is left for the owner.
    assert not any(argv[1:4] == ("iap", "web", "enable") for argv in ran)
    assert "not run until that grant is given; then run:\n  gcloud iap web enable" in err


# --- the staged bundle, installed and served on its own -----------------------------------------


def _uv() -> list[str] | None:
    if found := shutil.which("uv"):
        return [found]
    if importlib.util.find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    return None


def _run(command: list[str], timeout: float) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{shlex.join(command)} failed:\n{done.stdout}\n{done.stderr}"


def _fresh_venv(venv: Path, requirements: Path) -> Path:
    """A new virtual environment holding only `requirements`; returns its bin folder."""
    uv = _uv()
    python = venv / "bin" / "python"
    if uv:
        _run([*uv, "venv", str(venv), "--python", sys.executable], timeout=120)
        _run([*uv, "pip", "install", "-r", str(requirements), "--python", str(python)], timeout=600)
    else:
        _run([sys.executable, "-m", "venv", str(venv)], timeout=120)
        _run([str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)], timeout=600)
    return venv / "bin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get_when_up(url: str, server: subprocess.Popen[bytes], log: Path, timeout: float) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            pytest.fail(f"functions-framework exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"functions-framework did not answer within {timeout} s:\n{log.read_text()}")
            time.sleep(0.2)


@pytest.mark.slow
def test_staged_bundle_answers_a_call_from_a_fresh_venv(tmp_path: Path) -> None:
    staged = stage_functions(ROOT, tmp_path / "build")
    bin_dir = _fresh_venv(tmp_path / "venv", staged / "requirements.txt")
    # The bundle must stand alone: no repo on PYTHONPATH, no tapedeck settings from the caller's shell.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and k not in ENV_NAMES}
    env |= {
        "STORAGE": "local",
        "STREAM_TOKEN_SECRET": "x",
        "LOCAL_STORAGE_DIR": str(tmp_path / "data"),
        "RECORDER_URL": RECORDER_URL,
    }
    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import shared; print(shared.__file__)"],
        cwd=staged,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert Path(where.stdout.strip()).resolve() == staged / "shared" / "__init__.py", where.stderr

    port = _free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [
                str(bin_dir / "functions-framework"),
                "--target=answer",
                f"--source={staged / 'main.py'}",
                f"--port={port}",
                "--host=127.0.0.1",
            ],
            cwd=staged,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            query = "conversation_uuid=CON-1&uuid=u1&from=447700900123&to=447700900000"
            status, body = _get_when_up(f"http://127.0.0.1:{port}/?{query}", server, log, timeout=60)
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)

    assert status == 200, body
    ncco = json.loads(body)
    assert isinstance(ncco, list)
    assert [action["action"] for action in ncco] == ["talk", "connect"]
    assert ncco[1]["endpoint"][0]["uri"] == RECORDER_URL


def test_the_staged_app_yaml_carries_the_recorder_settings_and_identity() -> None:
    from tools.deploy import recorder_app_yaml

    source = "runtime: python\nenv: flex\nenv_variables:\n  # set at deploy time\n  STORAGE: gcs\n"
    staged = recorder_app_yaml(source, {"GCS_BUCKET": "calls", "GREETING": 'a"b: c'}, "rec@demo.iam")
    assert staged == (
        "runtime: python\nenv: flex\nservice_account: rec@demo.iam\nenv_variables:\n"
        '  STORAGE: gcs\n  GCS_BUCKET: "calls"\n  GREETING: "a\\"b: c"\n'
    )


def test_the_dry_run_stages_a_recorder_without_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["--dry-run", "--project", "demo", "--region", "europe-west1", "--out", str(tmp_path)], ENVIRON)
    out = capsys.readouterr().out
    assert status == 0 and "s3cr3t" not in out and "PATH" not in out
    app_yaml = (tmp_path / "appengine" / "app.yaml").read_text()
    assert "s3cr3t" not in app_yaml and 'SECRETS_PROJECT: "demo"' in app_yaml
    assert "service_account: tapedeck-rec@demo.iam.gserviceaccount.com" in app_yaml
    names = entry_points((ROOT / "functions" / "main.py").read_text())
    assert sum(line.startswith("gcloud functions deploy") for line in out.splitlines()) == len(names)
    assert "TASKS_SERVICE_ACCOUNT=tapedeck-tasks@demo.iam.gserviceaccount.com" in out
    assert json.loads((tmp_path / "lifecycle.json").read_text()) == lifecycle_rules(7)


def test_the_routes_file_travels_with_the_functions_and_the_recorder(tmp_path: Path) -> None:
    routes = tmp_path / "mine.yaml"
    routes.write_text('"447700900004":\n  flow: stream\n')
    out = tmp_path / "build"
    environ = {**ENVIRON, "ROUTES_FILE": str(routes)}
    assert main(["--dry-run", "--project", "demo", "--region", "europe-west1", "--out", str(out)], environ) == 0

    for folder in (out / "functions", out / "appengine"):
        assert (folder / "routes.yaml").read_text() == routes.read_text()
    assert 'ROUTES_FILE: "routes.yaml"' in (out / "appengine" / "app.yaml").read_text()
    missing = {**ENVIRON, "ROUTES_FILE": str(tmp_path / "absent.yaml")}
    assert main(["--dry-run", "--project", "demo", "--region", "europe-west1", "--out", str(out)], missing) == 1


class SecretManager:
    """A stand-in for Secret Manager's client (it has no emulator to run here): secrets by path."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets

    def access_secret_version(self, name: str) -> Any:
        from types import SimpleNamespace

        from google.api_core.exceptions import NotFound, PermissionDenied

        if name.endswith("tapedeck-callback-secret/versions/latest"):
            raise PermissionDenied("no access")
        if name not in self.secrets:
            raise NotFound(name)
        return SimpleNamespace(payload=SimpleNamespace(data=self.secrets[name].encode()))


def test_the_recorder_reads_its_secrets_from_secret_manager() -> None:
    from shared.adapters.secret_manager_secrets import SecretManagerSecrets
    from shared.core.errors import ConfigError

    path = "projects/demo/secrets/tapedeck-stream-token-secret/versions/latest"
    secrets = SecretManagerSecrets("demo", SecretManager({path: "tok"}))
    env = secrets.fill(
        {"STORAGE": "gcs", "VONAGE_SIGNATURE_SECRET": "given"}, ["STREAM_TOKEN_SECRET", "PROMPT_API_KEY"]
    )
    assert env == {"STORAGE": "gcs", "VONAGE_SIGNATURE_SECRET": "given", "STREAM_TOKEN_SECRET": "tok"}
    with pytest.raises(ConfigError, match="CALLBACK_SECRET: Secret Manager secret tapedeck-callback-secret"):
        secrets.fill({}, ["CALLBACK_SECRET"])


def test_a_missing_secret_is_named_with_the_secret_it_comes_from() -> None:
    from shared.config.settings import Settings
    from shared.core.errors import ConfigError

    with pytest.raises(
        ConfigError, match="STREAM_TOKEN_SECRET \\(Secret Manager secret tapedeck-stream-token-secret\\)"
    ):
        Settings.from_env({"STORAGE": "gcs", "GCS_BUCKET": "calls"})


# --- the recordings browser behind Identity-Aware Proxy -----------------------------------------


def test_the_browser_bundle_has_its_own_app_yaml_naming_its_service(fake_root: Path, tmp_path: Path) -> None:
    staged = stage_browser(fake_root, tmp_path / "build", {"GCS_BUCKET": "calls"}, "web@demo.iam")

    assert staged == (tmp_path / "build" / "browser").resolve()
    assert _files(staged) == {
        "app.yaml",
        "requirements.txt",
        "appengine/__init__.py",
        "appengine/browser.py",
        "appengine/static/browser.css",
        "appengine/templates/browser/page.html",
        *SHARED,
    }
    assert (staged / "requirements.txt").read_text() == "gunicorn-for-the-browser\n"
    assert (staged / "app.yaml").read_text() == (
        "runtime: python311\nservice: browser\nservice_account: web@demo.iam\nenv_variables:\n"
        '  STORAGE: gcs\n  GCS_BUCKET: "calls"\n'
    )


def _iap_steps(steps: list[Step]) -> list[tuple[str, ...]]:
    return [step.argv for step in steps if step.argv[1:3] == ("iap", "web")]


def test_iap_guards_the_browser_and_never_the_recorder(tmp_path: Path) -> None:
    steps = [step for step in plan(tmp_path) if step.argv[1:3] == ("iap", "web")]
    (enable,) = (step for step in steps if step.argv[3] == "enable")
    (public,) = (step for step in steps if "--service=default" in step.argv)

    # IAP for App Engine is app-wide, so the recorder is opened to everyone first, and IAP is
    # turned on only if that went through; the enable names no service of its own.
    assert {"--member=allUsers", "--role=roles/iap.httpsResourceAccessor"} <= set(public.argv)
    assert steps.index(public) < steps.index(enable) and enable.requires is public
    assert not any(flag.startswith("--service") for flag in enable.argv)
    # Only the members named get through to the browser.
    readers = [step.argv for step in steps if "--service=browser" in step.argv]
    assert [next(f for f in argv if f.startswith("--member=")) for argv in readers] == [
        f"--member={m}" for m in MEMBERS
    ]
    assert all({"--role=roles/iap.httpsResourceAccessor", "--resource-type=app-engine"} <= set(a) for a in readers)
    assert not any("allAuthenticatedUsers" in " ".join(step.argv) for step in steps)
    # The browser is deployed after the recorder (App Engine's first service must be `default`).
    deploys = [step.argv[3] for step in plan(tmp_path) if step.argv[1:3] == ("app", "deploy")]
    assert deploys == [str(tmp_path / "appengine" / "app.yaml"), str(tmp_path / "browser" / "app.yaml")]


def test_the_browser_account_gets_the_bucket_its_own_signing_and_one_secret(tmp_path: Path) -> None:
    grants = [step.argv for step in plan(tmp_path) if step.grant and "serviceAccount:tapedeck-browser@demo" in
              " ".join(step.argv)]  # fmt: skip
    roles = sorted((argv[1], next(f for f in argv if f.startswith("--role="))) for argv in grants)
    assert roles == [
        ("iam", "--role=roles/iam.serviceAccountTokenCreator"),
        ("secrets", "--role=roles/secretmanager.secretAccessor"),
        ("storage", "--role=roles/storage.objectUser"),
    ]
    (signing,) = (argv for argv in grants if argv[1] == "iam")
    assert signing[4] == "tapedeck-browser@demo.iam.gserviceaccount.com"  # on itself only
    (secret,) = (argv for argv in grants if argv[1] == "secrets")
    assert secret[3] == "tapedeck-stream-token-secret"


def test_browser_members_are_iam_members_and_never_everyone() -> None:
    assert read_members(" user:sam@example.com, group:ops@example.com ,") == MEMBERS
    assert read_members(None) == []
    for bad in ("sam@example.com", "allUsers", "allAuthenticatedUsers", "user:", "robot:x"):
        with pytest.raises(DeployError, match="BROWSER_MEMBERS"):
            read_members(bad)


def test_browser_admins_get_through_iap_too_and_the_browser_is_told_who_they_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    admins = "alice@example.com, user:sam@example.com"
    environ = {**ENVIRON, "BROWSER_MEMBERS": "user:sam@example.com,group:ops@example.com", "BROWSER_ADMINS": admins}
    args = ["--dry-run", "--project", "demo-project", "--region", "europe-west1", "--out", str(tmp_path)]

    assert main(args, environ) == 0
    out = capsys.readouterr().out
    granted = [line.split("--member=")[1].split()[0] for line in out.splitlines() if "--service=browser" in line]
    # Members and admins, each once: an admin IAP keeps out could not use the browser at all.
    assert granted == ["user:sam@example.com", "group:ops@example.com", "user:alice@example.com"]
    assert f'BROWSER_ADMINS: "{admins}"' in (tmp_path / "browser" / "app.yaml").read_text()
    assert "BROWSER_ADMINS" not in (tmp_path / "appengine" / "app.yaml").read_text()
    # The browser tells accounts apart, never groups: a group of admins is refused before anything runs.
    assert main(args, {**environ, "BROWSER_ADMINS": "group:ops@example.com"}) == 1
    assert "BROWSER_ADMINS" in capsys.readouterr().err


def test_the_audience_is_built_from_the_project_number() -> None:
    def gcloud(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        assert argv == ["gcloud", "projects", "describe", "demo-project", "--format=value(projectNumber)"]
        return subprocess.CompletedProcess(argv, 0, "123456789012\n", "")

    assert project_number("demo-project", run=gcloud) == "123456789012"
    refused = lambda argv, **kw: subprocess.CompletedProcess(argv, 1, "", "PERMISSION_DENIED")  # noqa: E731
    with pytest.raises(DeployError, match="PERMISSION_DENIED"):
        project_number("demo-project", run=refused)


def test_the_dry_run_prints_the_iap_steps_and_stages_a_browser_without_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    environ = {**ENVIRON, "BROWSER_MEMBERS": "group:ops@example.com", "GCS_BUCKET": "calls"}
    args = ["--dry-run", "--project", "demo-project", "--region", "europe-west1", "--out", str(tmp_path)]

    assert main(args, environ) == 0
    out, err = capsys.readouterr()
    assert "gcloud iap web enable --resource-type=app-engine --project=demo-project" in out
    assert (
        "gcloud iap web add-iam-policy-binding --resource-type=app-engine --service=browser "
        "--member=group:ops@example.com --role=roles/iap.httpsResourceAccessor --project=demo-project"
    ) in out
    assert "--service=default --member=allUsers" in out
    assert "/projects/$(gcloud projects describe demo-project --format='value(projectNumber)')/apps/demo-project" in err
    app_yaml = (tmp_path / "browser" / "app.yaml").read_text()
    assert "service: browser" in app_yaml and "s3cr3t" not in app_yaml and "STREAM_TOKEN_SECRET" not in app_yaml
    assert "service_account: tapedeck-browser@demo-project.iam.gserviceaccount.com" in app_yaml
    assert 'GCS_BUCKET: "calls"' in app_yaml and 'SECRETS_PROJECT: "demo-project"' in app_yaml
    assert "GREETING" not in app_yaml  # only the settings the browser reads


def test_a_given_audience_is_staged_with_the_browser_only(tmp_path: Path) -> None:
    audience = "/projects/123456789012/apps/demo-project"
    environ = {**ENVIRON, "IAP_AUDIENCE": audience}
    args = ["--dry-run", "--project", "demo-project", "--region", "europe-west1", "--out", str(tmp_path)]

    assert main(args, environ) == 0
    assert f'IAP_AUDIENCE: "{audience}"' in (tmp_path / "browser" / "app.yaml").read_text()
    assert "IAP_AUDIENCE" not in (tmp_path / "appengine" / "app.yaml").read_text()
    assert main(args, {**environ, "IAP_AUDIENCE": "demo-project"}) == 1


def test_the_real_browser_yaml_serves_the_browser_app_on_app_engine_standard() -> None:
    text = (ROOT / "browser.yaml").read_text()
    lines = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in text.splitlines() if ":" in line
             and not line.startswith((" ", "#"))}  # fmt: skip
    assert lines["service"] == "browser" and lines["runtime"].startswith("python3")
    assert '"appengine.browser:production_app()"' in lines["entrypoint"]
    assert not any(name in text for name in ("SECRET", "PRIVATE_KEY", "API_KEY"))


def test_deployed_functions_keep_calls_on_cloud_storage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--dry-run", "--project", "demo", "--region", "europe-west1", "--out", str(tmp_path)]
    given = {k: v for k, v in ENVIRON.items() if k != "STORAGE"}

    assert main(argv, given) == 0
    assert "STORAGE=gcs" in capsys.readouterr().out
    assert main(argv, {**given, "STORAGE": "local"}) == 1
    assert main(argv, {k: v for k, v in given.items() if k != "GCS_BUCKET"}) == 1
    assert "set GCS_BUCKET" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("days", "flag", "said"),
    [
        ("", "--soft-delete-duration=7d", "can be restored for 7 days"),
        ("30", "--soft-delete-duration=30d", "can be restored for 30 days"),
        ("0", "--clear-soft-delete", "gone at once"),
    ],
)
def test_the_plan_sets_the_bucket_s_soft_delete_and_says_how_long_calls_are_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], days: str, flag: str, said: str
) -> None:
    environ = {**ENVIRON, "SOFT_DELETE_DAYS": days, "RETENTION_DAYS": "90"}
    assert main(["--dry-run", "--project", "demo", "--region", "europe-west1", "--out", str(tmp_path)], environ) == 0
    captured = capsys.readouterr()
    (update,) = [line for line in captured.out.splitlines() if line.startswith("gcloud storage buckets update")]
    assert flag in update.split() and "--lifecycle-file=" in update
    assert "calls are erased 90 days after they begin" in captured.err and said in captured.err


def test_a_soft_delete_cloud_storage_refuses_stops_the_deploy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    environ = {**ENVIRON, "SOFT_DELETE_DAYS": "3"}
    assert main(["--dry-run", "--project", "demo", "--region", "europe-west1", "--out", str(tmp_path)], environ) == 1
    assert "SOFT_DELETE_DAYS must be 0 or from 7 to 90 days" in capsys.readouterr().err


def test_a_route_whose_language_an_engine_cannot_do_stops_the_deploy_before_anything_is_staged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    routes = tmp_path / "mine.yaml"
    routes.write_text('"447700900001":\n  flow: voicemail\n  recipients: ["447700900111"]\n  language: fr-FR\n')
    out = tmp_path / "build"
    argv = ["--dry-run", "--project", "demo", "--region", "europe-west1", "--out", str(out)]
    assert main(argv, {**ENVIRON, "ROUTES_FILE": str(routes), "TRANSCRIBER": "offline"}) == 1
    said = capsys.readouterr().err
    assert "447700900001 has language fr-FR, which the offline engine cannot do" in said
    assert not out.exists()
    assert main(argv, {**ENVIRON, "ROUTES_FILE": str(routes), "TRANSCRIBER": "google"}) == 0


def test_each_bundle_carries_the_version_the_deploy_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import tomllib

    from shared.runtime.version import tapedeck_version

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert tapedeck_version() == declared
    out = tmp_path / "build"
    assert main(["--dry-run", "--project", "demo", "--region", "europe-west1", "--out", str(out)], ENVIRON) == 0
    assert f"deploy: tapedeck {declared} to demo (europe-west1)" in capsys.readouterr().err
    for bundle in ("functions", "appengine", "browser"):
        assert (out / bundle / "shared" / "version.txt").read_text() == declared + "\n"
