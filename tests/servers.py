"""Real local servers for the tests: the storage emulator, the recorder and the functions, and a
receiver of signed callbacks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from shared.core.ports import BlobStore
from tools.standin.api import serve_in_thread
from tools.standin.receiver import CallbackReceiver

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_http(url: str, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            requests.get(url, timeout=0.5)
            return
        except requests.RequestException:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextmanager
def running(
    command: list[str],
    env: dict[str, str],
    ready_url: str,
    log: Path,
    *,
    cwd: Path = ROOT,
    inherit: bool = True,
    timeout: float = 20.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server process in `cwd`, wait until `ready_url` answers, and always stop it. With
    `inherit` off, `env` is its whole environment rather than additions to this one."""
    whole = {**os.environ, **env} if inherit else env
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command, cwd=cwd, env=whole, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for_http(ready_url, process, timeout)
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def gunicorn_command(app: str, port: int, worker: str = "gevent", reuse_port: bool = False) -> list[str]:
    # gthread serves one request at a time unless given threads; Vonage's webhooks come concurrently.
    threads = ["--threads", "16"] if worker == "gthread" else []
    # Several servers on one port, the kernel sharing connections out: instances behind one address.
    shared = ["--reuse-port"] if reuse_port else []
    return [
        str(BIN / "gunicorn"),
        "--worker-class",
        worker,
        *threads,
        *shared,
        "--workers",
        "1",
        "--bind",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "10",
        # gunicorn 27 opens a control socket shared by every gunicorn of the user; tests need none.
        "--no-control-socket",
        app,
    ]


def storage_emulator_command(port: int, bucket: str) -> list[str]:
    return [
        str(BIN / "gcp-storage-emulator"),
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--in-memory",
        "--default-bucket",
        bucket,
        "-q",
    ]


@dataclass(frozen=True)
class Emulator:
    url: str
    bucket: str


def gcs_client(emulator: Emulator) -> Any:
    """A Cloud Storage client of the emulator, without credentials."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(
        project="tapedeck-test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": emulator.url},
    )


def fresh_bucket(emulator: Emulator) -> str:
    """A new, empty bucket on the emulator, so tests never see each other's objects."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    gcs_client(emulator).create_bucket(name)
    return name


def wait_for_objects(store: BlobStore, prefix: str, count: int = 1, timeout: float = 60) -> list[Any]:
    """The JSON objects under `prefix` in `store`, once there are `count` of them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = store.list(prefix)
        if len(found) >= count:
            return [json.loads(store.read(info.key).data) for info in found]  # type: ignore[union-attr]
        time.sleep(0.1)
    raise AssertionError(f"nothing under {prefix} within {timeout} s")


@contextmanager
def receiving(secret: str, path: str = "", fail_first: int = 0) -> Iterator[tuple[CallbackReceiver, str]]:
    """A receiver of callbacks signed with `secret` on loopback, failing the first `fail_first`,
    and the URL of `path` on it."""
    target = CallbackReceiver(secret, fail_first=fail_first)
    with serve_in_thread(target.app(), "127.0.0.1", 0) as base:
        yield target, f"{base}{path}"
