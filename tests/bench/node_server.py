"""The Node `ws` recorder (tests/bench/node_recorder/) under the bench: found, installed, started.

Node and npm come from the machine; `ws` is installed by `npm ci` from the folder's lock, into
its git-ignored node_modules, once per version.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.bench.harness import Server, serve, server_folders

__all__ = ["NODE_FOLDER", "node_missing", "node_recorder", "node_versions"]

NODE_FOLDER = Path(__file__).resolve().parent / "node_recorder"
_INSTALL_TIMEOUT = 300


def _ws_version(package_json: Path) -> str | None:
    try:
        return str(json.loads(package_json.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def _locked_ws() -> str | None:
    lock = json.loads((NODE_FOLDER / "package-lock.json").read_text())
    return str(lock["packages"]["node_modules/ws"]["version"])


def node_missing() -> str | None:
    """Why the Node recorder cannot run here, or None once `ws` is installed as locked."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not on PATH"
    if _ws_version(NODE_FOLDER / "node_modules" / "ws" / "package.json") == _locked_ws():
        return None
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=NODE_FOLDER,
        capture_output=True,
        text=True,
        timeout=_INSTALL_TIMEOUT,
        check=False,
    )
    if done.returncode:
        return f"`npm ci` in {NODE_FOLDER} failed:\n{(done.stdout + done.stderr)[-1500:]}"
    return None


def node_versions() -> str:
    """Node's and ws's versions, as the report names them."""
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    return f"Node {node}, ws {_ws_version(NODE_FOLDER / 'node_modules' / 'ws' / 'package.json')}"


@contextmanager
def node_recorder(folder: Path, connections: int) -> Iterator[Server]:
    """The Node recorder on a free loopback port, storing in `folder`; always stopped. It takes any
    number of connections, and checks no token (the secret only lets the load client mint one)."""
    del connections
    script = NODE_FOLDER / "recorder.js"

    storage, stats = server_folders(folder)

    def command(port: int) -> list[str]:
        return ["node", str(script), str(port), str(storage), str(stats)]

    with serve("node", command, folder, None, secrets.token_urlsafe(24)) as server:
        yield server
