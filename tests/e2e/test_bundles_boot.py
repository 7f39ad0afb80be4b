"""Each staged bundle boots as its platform builds and starts it: staged by the dry-run deploy,
its own requirements.txt alone installed into a clean environment, then every function under
functions-framework from build/functions, and the recorder and the browser by the `entrypoint`
line of their staged app.yaml, run as written with `$PORT` filled in.

Storage is the Cloud Storage emulator. Secret Manager has no emulator: the secrets the plan puts
there are given in the environment instead, and SECRETS_PROJECT is left out.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from shared.config.settings import SECRET_NAMES
from tests.bundles import Staged, bundle_environ, bundle_venv, entrypoint, pinned, stage_all, staged_env
from tests.servers import Emulator, free_port, fresh_bucket, running
from tools.deploy import entry_points
from tools.standin.api import make_application_key

pytestmark = pytest.mark.slow

SECRETS = {
    "STREAM_TOKEN_SECRET": "boot-stream-token-secret",
    "VONAGE_SIGNATURE_SECRET": "boot-signature-secret",
    "CALLBACK_SECRET": "boot-callback-secret",
    "PROMPT_API_KEY": "boot-prompt-key",
}
AUDIENCE = "/projects/123456789/apps/tapedeck-test"


@dataclass
class Booted:
    staged: Staged
    urls: dict[str, str]


def deploy_env(folder: Path, bucket: str) -> dict[str, str]:
    """What a team sets before `nox -s deploy`, with a voicemail route and the Vonage application."""
    routes = folder / "routes.yaml"
    routes.write_text('"447700900001":\n  flow: voicemail\n  owner: Sam\n  recipients: ["447700900111"]\n')
    key = make_application_key(folder / "application.pem")
    return {
        "GCS_BUCKET": bucket,
        "PUBLIC_URL": "https://europe-west1-tapedeck-test.cloudfunctions.net",
        "RECORDER_URL": "wss://tapedeck-test.ew.r.appspot.com/socket",
        "ROUTES_FILE": str(routes),
        "VONAGE_APPLICATION_ID": "boot-application",
        "VONAGE_PRIVATE_KEY": key.decode(),
        "IAP_AUDIENCE": AUDIENCE,
        "BROWSER_MEMBERS": "user:sam@example.com",
        **SECRETS,
    }


def platform_settings(given: dict[str, str], emulator: Emulator, secrets: dict[str, str]) -> dict[str, str]:
    """What the platform would hand the process, with the emulator for Cloud Storage and the
    secrets in the environment rather than in Secret Manager."""
    plain = {k: v for k, v in given.items() if k != "SECRETS_PROJECT"}
    return {**plain, **secrets, "STORAGE_EMULATOR_HOST": emulator.url}


def _start(stack: ExitStack, command: list[str], env: dict[str, str], url: str, cwd: Path, log: Path) -> None:
    try:
        stack.enter_context(running(command, env, url, log, cwd=cwd, inherit=False, timeout=90))
    except (RuntimeError, TimeoutError) as err:
        pytest.fail(f"{err}\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory, storage_emulator: Emulator) -> Iterator[Booted]:
    folder = tmp_path_factory.mktemp("boot")
    given = deploy_env(folder, fresh_bucket(storage_emulator))
    staged = stage_all(folder / "build", given)
    secrets = {name: given[name] for name in SECRET_NAMES if name in given}
    urls: dict[str, str] = {}
    with ExitStack() as stack:
        functions = staged.folder("functions")
        bin_dir = bundle_venv(functions / "requirements.txt")
        for name in entry_points((functions / "main.py").read_text()):
            port = free_port()
            env = bundle_environ(bin_dir, platform_settings(staged.function_env(name), storage_emulator, secrets))
            command = [str(bin_dir / "functions-framework"), f"--target={name}", f"--port={port}"]
            urls[name] = f"http://127.0.0.1:{port}/"
            _start(stack, command, env, urls[name], functions, folder / f"{name}.log")
        for service, path in (("recorder", "/healthz"), ("browser", "/healthz")):
            bundle = staged.folder(service)
            bin_dir = bundle_venv(bundle / "requirements.txt")
            port = free_port()
            settings = platform_settings(staged_env(bundle), storage_emulator, secrets)
            # Each instance has a home of its own (gunicorn keeps its control socket there).
            env = bundle_environ(bin_dir, {**settings, "PORT": str(port), "HOME": str(folder / service)})
            command = ["/bin/sh", "-c", f"exec {entrypoint(bundle)}"]
            urls[service] = f"http://127.0.0.1:{port}{path}"
            _start(stack, command, env, urls[service], bundle, folder / f"{service}.log")
        yield Booted(staged, urls)


@pytest.mark.parametrize("bundle", ["functions", "recorder", "browser"])
def test_each_environment_holds_only_what_its_bundle_pins(booted: Booted, bundle: str) -> None:
    requirements = booted.staged.folder(bundle) / "requirements.txt"
    python = bundle_venv(requirements) / "python"
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert uv
    freeze = subprocess.run([uv, "pip", "freeze", "--python", str(python)], capture_output=True, text=True, check=True)

    installed = pinned(freeze.stdout)

    assert installed and installed <= pinned(requirements.read_text())
    # The other deployables' servers are not there to lean on.
    assert ("gevent" in installed) == (bundle == "recorder")
    assert ("functions-framework" in installed) == (bundle == "functions")


@pytest.mark.parametrize("service", ["recorder", "browser"])
def test_each_app_engine_service_answers_its_health_check(booted: Booted, service: str) -> None:
    answer = requests.get(booted.urls[service], timeout=10)

    assert answer.status_code == 200, answer.text


def test_every_function_answers_an_empty_request_with_a_json_error_never_a_500(booted: Booted) -> None:
    functions = booted.staged.folder("functions")
    names = entry_points((functions / "main.py").read_text())
    assert {"answer", "event", "recording", "tasks", "call", "prompt", "link"} <= set(names)
    for name in names:
        for method in ("GET", "POST"):
            answer = requests.request(method, booted.urls[name], timeout=30)
            seen = f"{method} {name}: {answer.status_code} {answer.text[:300]}"
            # An unsigned webhook is the one 5xx: Vonage retries it (docs/webhooks.md, "Unsigned versus forged").
            unsigned = answer.status_code == 503 and answer.headers.get("Retry-After") is not None
            assert 400 <= answer.status_code < 500 or unsigned, seen
            assert "error" in json.loads(answer.text), seen
