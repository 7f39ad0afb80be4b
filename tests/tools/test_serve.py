"""`ROUTES_FILE=my-routes.yaml nox -s serve` with a user's own routes: the set-up, then the local
platform with the settings `nox -s serve` gives it, as the noxfile runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.servers import BIN, ROOT, free_port, running
from tools.local_env import local_env, serve_command

pytestmark = pytest.mark.slow

MY_ROUTES = '"447700900009":\n  flow: voicemail\n  owner: Robin\n  recipients: ["447700900111"]\n'


def test_serve_starts_with_a_users_own_routes_file_holding_a_voicemail(tmp_path: Path) -> None:
    (tmp_path / "my-routes.yaml").write_text(MY_ROUTES)
    shell = {k: v for k, v in os.environ.items() if not k.startswith(("VONAGE_", "ROUTES_FILE"))}
    shell |= {"ROUTES_FILE": "my-routes.yaml", "PYTHONPATH": str(ROOT)}

    setup = subprocess.run(
        [sys.executable, "-m", "tools.standin", "setup", "data"],
        cwd=tmp_path,
        env=shell,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert setup.returncode == 0, setup.stderr

    port = str(free_port())
    env = {**shell, "PORT": port, **local_env(port, shell), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    command = [str(BIN / serve_command(port)[0]), *serve_command(port)[1:]]
    with running(command, env, f"http://127.0.0.1:{port}/healthz", tmp_path / "serve.log", cwd=tmp_path, inherit=False):
        query = {"to": "447700900009", "from": "447700900123", "conversation_uuid": "CON-1", "uuid": "u-1"}
        answer = requests.get(f"http://127.0.0.1:{port}/answer", params=query, timeout=10)

    assert answer.status_code == 200, answer.text
    assert "Robin" in answer.json()[0]["text"]
