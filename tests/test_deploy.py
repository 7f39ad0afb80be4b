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

import pytest

from shared.deploy import (
    ENV_NAMES,
    DeployError,
    entry_points,
    env_vars_flag,
    gcloud_commands,
    lifecycle_rules,
    main,
    run_commands,
    stage_functions,
    stage_recorder,
)

ROOT = Path(__file__).resolve().parents[1]
RECORDER_URL = "wss://rec.example.test/socket"


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _write(path: Path, text: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    """A small tree shaped like the repo, with the caches and stand-in a bundle must leave out."""
    root = tmp_path / "repo"
    _write(root / "functions" / "main.py", '__all__ = ["answer", "on_finalize"]\n')
    _write(root / "functions" / "requirements.txt", "flask\n")
    _write(root / "functions" / "__pycache__" / "main.cpython-311.pyc")
    _write(root / "shared" / "__init__.py")
    _write(root / "shared" / "ncco.py")
    _write(root / "shared" / "adapters" / "keys.py")
    _write(root / "shared" / "adapters" / "__pycache__" / "keys.cpython-311.pyc")
    _write(root / "shared" / "__pycache__" / "ncco.cpython-311.pyc")
    _write(root / "shared" / "standin" / "__main__.py")
    _write(root / "shared" / "standin" / "requirements.txt", "vonage\n")
    _write(root / "app.yaml", "runtime: python\nenv: flex\n")
    _write(root / "appengine" / "__init__.py")
    _write(root / "appengine" / "main.py")
    _write(root / "appengine" / "requirements.txt", "gunicorn\n")
    _write(root / "appengine" / "__pycache__" / "main.cpython-311.pyc")
    return root


def test_functions_bundle_holds_main_requirements_and_shared_only(fake_root: Path, tmp_path: Path) -> None:
    staged = stage_functions(fake_root, tmp_path / "build")

    assert staged == (tmp_path / "build" / "functions").resolve()
    assert _files(staged) == {
        "main.py",
        "requirements.txt",
        "shared/__init__.py",
        "shared/ncco.py",
        "shared/adapters/keys.py",
    }
    assert (staged / "requirements.txt").read_text() == "flask\n"


def test_recorder_bundle_has_app_yaml_and_requirements_at_its_root(fake_root: Path, tmp_path: Path) -> None:
    staged = stage_recorder(fake_root, tmp_path / "build")

    assert _files(staged) == {
        "app.yaml",
        "requirements.txt",
        "appengine/__init__.py",
        "appengine/main.py",
        "appengine/requirements.txt",
        "shared/__init__.py",
        "shared/ncco.py",
        "shared/adapters/keys.py",
    }
    assert (staged / "requirements.txt").read_text() == "gunicorn\n"


def test_restaging_drops_files_deleted_from_the_repo(fake_root: Path, tmp_path: Path) -> None:
    stage_functions(fake_root, tmp_path / "build")
    (fake_root / "shared" / "ncco.py").unlink()

    staged = stage_functions(fake_root, tmp_path / "build")

    assert "shared/ncco.py" not in _files(staged)


def test_staging_refuses_to_overwrite_the_sources(fake_root: Path) -> None:
    with pytest.raises(DeployError, match="overwrite the sources"):
        stage_functions(fake_root, fake_root)


def test_the_real_functions_bundle_copies_every_shared_module_but_the_standin(tmp_path: Path) -> None:
    staged = stage_functions(ROOT, tmp_path)

    expected = {
        "shared/" + p.relative_to(ROOT / "shared").as_posix()
        for p in (ROOT / "shared").rglob("*.py")
        if "standin" not in p.parts and "__pycache__" not in p.parts
    }
    files = _files(staged)
    assert {"main.py", "requirements.txt", "shared/settings.py", "shared/inbound.py"} <= files
    assert {f for f in files if f.endswith(".py")} - {"main.py"} == expected
    assert not any("standin" in f or "__pycache__" in f for f in files)


def test_entry_points_come_from_main_dunder_all() -> None:
    names = entry_points((ROOT / "functions" / "main.py").read_text())

    assert {"answer", "event"} <= set(names)
    assert entry_points("x: list[str] = []\n__all__: list[str] = ['a', 'b_c']\n") == ["a", "b_c"]
    with pytest.raises(DeployError, match="no __all__"):
        entry_points("def answer(request): ...\n")


def test_gcloud_commands_deploy_each_entry_point_then_the_recorder(tmp_path: Path) -> None:
    commands = gcloud_commands(
        project="demo",
        region="europe-west1",
        functions_dir=tmp_path / "functions",
        recorder_dir=tmp_path / "appengine",
        names=["answer", "on_finalize", "tasks"],
        env={"STORAGE": "gcs", "GCS_BUCKET": "calls", "HOME": "/root"},
    )

    queue, *functions, tasks, app, lifecycle = commands
    assert queue[:5] == ["gcloud", "tasks", "queues", "create", "tapedeck"]
    assert {"--location=europe-west1", "--max-attempts=5", "--min-backoff=2s"} <= set(queue)
    # Only the task queue's service account may run tasks; Vonage's webhooks are public and signed.
    assert tasks[3] == "tasks" and "--no-allow-unauthenticated" in tasks and "--allow-unauthenticated" not in tasks
    assert [*functions, app, lifecycle] == [
        [
            "gcloud",
            "functions",
            "deploy",
            name,
            "--gen2",
            "--region=europe-west1",
            "--project=demo",
            "--runtime=python311",
            f"--source={tmp_path / 'functions'}",
            f"--entry-point={entry}",
            "--trigger-http",
            "--allow-unauthenticated",
            "--set-env-vars=STORAGE=gcs,GCS_BUCKET=calls",
        ]
        for name, entry in (("answer", "answer"), ("on-finalize", "on_finalize"))
    ] + [
        ["gcloud", "app", "deploy", f"{tmp_path / 'appengine' / 'app.yaml'}", "--project=demo", "--quiet"],
        [
            "gcloud",
            "storage",
            "buckets",
            "update",
            "gs://calls",
            f"--lifecycle-file={tmp_path / 'lifecycle.json'}",
            "--project=demo",
        ],
    ]


def test_the_lifecycle_rule_deletes_prompt_transactions_after_their_age() -> None:
    assert lifecycle_rules(7) == {
        "rule": [{"action": {"type": "Delete"}, "condition": {"age": 7, "matchesPrefix": ["prompts/"]}}]
    }


def test_env_values_with_commas_use_an_alternate_delimiter() -> None:
    assert env_vars_flag({"STORAGE": "gcs", "GREETING": "Hello, caller"}) == (
        "--set-env-vars=^:^STORAGE=gcs:GREETING=Hello, caller"
    )
    # A URL holds ':', so that delimiter would split it; the next free one is used.
    assert env_vars_flag({"PUBLIC_URL": "https://x.test", "GREETING": "Hi, you"}) == (
        "--set-env-vars=^|^PUBLIC_URL=https://x.test|GREETING=Hi, you"
    )
    assert env_vars_flag({"HOME": "/root"}) is None


def test_dry_run_prints_quoted_commands_with_secrets_masked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    environ = {
        "STORAGE": "gcs",
        "GCS_BUCKET": "calls",
        "GREETING": "Hello, this call is recorded.",
        "STREAM_TOKEN_SECRET": "tok-s3cr3t",
        "VONAGE_SIGNATURE_SECRET": "sig-s3cr3t",
        "PATH": "/usr/bin",
    }

    status = main(["--dry-run", "--project", "demo", "--region", "europe-west1", "--out", str(tmp_path)], environ)

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert status == 0
    assert "s3cr3t" not in out
    assert "PATH" not in out
    names = entry_points((ROOT / "functions" / "main.py").read_text())
    assert len(lines) == 1 + len(names) + 2  # the queue, the functions, the recorder, the bucket's lifecycle
    assert shlex.split(lines[0])[:4] == ["gcloud", "tasks", "queues", "create"]
    first = shlex.split(lines[1])
    assert first[:4] == ["gcloud", "functions", "deploy", names[0].replace("_", "-")]
    assert first[-1] == (
        "--set-env-vars=^:^STORAGE=gcs:GCS_BUCKET=calls:GREETING=Hello, this call is recorded."
        ":VONAGE_SIGNATURE_SECRET=***:STREAM_TOKEN_SECRET=***"
    )
    assert json.loads((tmp_path / "lifecycle.json").read_text()) == lifecycle_rules(7)
    assert shlex.split(lines[-1])[:5] == ["gcloud", "storage", "buckets", "update", "gs://calls"]
    assert shlex.split(lines[-2]) == [
        "gcloud",
        "app",
        "deploy",
        str((tmp_path / "appengine" / "app.yaml").resolve()),
        "--project=demo",
        "--quiet",
    ]
    assert (tmp_path / "functions" / "main.py").is_file()


def test_running_without_gcloud_on_path_fails_clearly() -> None:
    with pytest.raises(DeployError, match="gcloud is not on PATH"):
        run_commands([["gcloud", "app", "deploy"]], [["gcloud", "app", "deploy"]], which=lambda name: None)


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


def test_the_staged_app_yaml_carries_the_recorder_settings() -> None:
    from shared.deploy import recorder_app_yaml

    source = "runtime: python\nenv: flex\nenv_variables:\n  # set at deploy time\n  STORAGE: gcs\n"
    staged = recorder_app_yaml(source, {"GCS_BUCKET": "calls", "STREAM_TOKEN_SECRET": 'a"b: c'})
    assert staged == (
        "runtime: python\nenv: flex\nenv_variables:\n"
        '  STORAGE: gcs\n  GCS_BUCKET: "calls"\n  STREAM_TOKEN_SECRET: "a\\"b: c"\n'
    )
