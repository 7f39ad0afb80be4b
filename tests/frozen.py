"""Cloud Functions' execution model on loopback: each function in its own functions-framework
process, frozen (SIGSTOP) whenever it has no request in flight.

With request-based billing a Cloud Run function's instance has CPU only while it handles a
request; work it leaves running after its answer stalls until some later request lands on it.
Freezing the process between requests is that model, made strict: anything a function leaves
running after its response simply never happens here. One front end routes `/<name>` to each
function, as `https://REGION-PROJECT.cloudfunctions.net/<name>` does.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.servers import BIN, ROOT, free_port, running, stop

# Not forwarded: they describe one hop, not the request.
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "date", "server"}


@dataclass
class FrozenFunction:
    """A function's process, thawed for each request and frozen again once none is in flight."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    in_flight: int = 0
    requests_served: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def freeze(self) -> None:
        """Stop the process, and wait until it is stopped: only then is its answer let through."""
        os.killpg(self.process.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 5
        while not self.frozen and time.monotonic() < deadline:
            time.sleep(0.001)

    def thaw(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    @property
    def frozen(self) -> bool:
        """Whether the process is stopped now (its state in /proc is T)."""
        with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "T"

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> requests.Response:
        with self.lock:
            self.in_flight += 1
            if self.in_flight == 1:
                self.thaw()
        try:
            return requests.request(
                method,
                f"http://127.0.0.1:{self.port}{path}",
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=120,
            )
        finally:
            with self.lock:
                self.in_flight -= 1
                self.requests_served += 1
                if self.in_flight == 0:
                    self.freeze()


def _front_end(functions: dict[str, FrozenFunction]) -> type[BaseHTTPRequestHandler]:
    class Front(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _route(self) -> None:
            name = self.path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
            function = functions.get(name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if function is None:
                self.send_error(404)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            answer = function.forward(self.command, self.path, headers, body)
            self.send_response(answer.status_code)
            for key, value in answer.headers.items():
                if key.lower() not in _HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = do_PUT = _route

        def log_message(self, format: str, *args: object) -> None:
            return

    return Front


@dataclass
class FrozenPlatform:
    url: str
    functions: dict[str, FrozenFunction]


@dataclass(frozen=True)
class FunctionsSource:
    """Where functions-framework runs the functions from: the repository, with shared/ found
    through PYTHONPATH, or a staged bundle in its own environment, with shared/ beside main.py."""

    bin_dir: Path = BIN
    folder: Path = ROOT
    source: str = "functions/main.py"
    # The whole environment of a staged bundle's process; None for the repository's (this one's).
    environ: dict[str, str] | None = None


REPOSITORY = FunctionsSource()


def _start_function(
    stack: ExitStack, name: str, env: dict[str, str], logs: Path, where: FunctionsSource
) -> FrozenFunction:
    port = free_port()
    command = [
        str(where.bin_dir / "functions-framework"),
        f"--target={name}",
        f"--source={where.source}",
        f"--port={port}",
        "--host=127.0.0.1",
    ]
    if where.environ is None:
        # Deployed, shared/ is staged beside main.py; here it is found through PYTHONPATH.
        env, inherit = env | {"PYTHONPATH": str(ROOT)}, True
    else:
        env, inherit = where.environ | env, False
    url = f"http://127.0.0.1:{port}/"
    process = stack.enter_context(
        running(command, env, url, logs / f"{name}.log", cwd=where.folder, inherit=inherit, timeout=60)
    )
    function = FrozenFunction(name, process, port)
    function.freeze()
    stack.callback(function.thaw)  # a stopped process cannot take the SIGTERM that ends it
    return function


@contextmanager
def frozen_platform(
    names: list[str], env: dict[str, str], logs: Path, where: FunctionsSource = REPOSITORY
) -> Iterator[FrozenPlatform]:
    """Start each function frozen, and a front end on `env["PUBLIC_URL"]`'s port routing to them."""
    port = int(env["PUBLIC_URL"].rsplit(":", 1)[1])
    with ExitStack() as stack:
        functions = {name: _start_function(stack, name, env, logs, where) for name in names}
        server = ThreadingHTTPServer(("127.0.0.1", port), _front_end(functions))
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        stack.callback(server.shutdown)
        yield FrozenPlatform(env["PUBLIC_URL"], functions)


@contextmanager
def local_queue(env: dict[str, str], logs: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The embedded queue's worker in a process of its own: the queue is Google's side of the
    platform, so it is never frozen."""
    with open(logs / "queue.log", "ab") as out:
        queue = subprocess.Popen(
            [sys.executable, "-m", "appengine.local_queue"],
            cwd=ROOT,
            env={**env, "PATH": str(Path(sys.executable).parent)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield queue
    finally:
        stop(queue)


def start_tasks_emulator(stack: ExitStack, logs: Path) -> dict[str, str]:
    """gcloud-tasks-emulator on loopback, with tapedeck's queue, and the settings that point at it.

    Where it differs from Cloud Tasks (see the reference notes): it retries every ~0.1 s with no
    backoff (so it is started with -r, 4 retries: the 5 attempts CALLBACK_ATTEMPTS allows), sends
    no OIDC token (the real service sends one that Cloud Run checks before the function runs), and
    does not refuse a task name it has seen (the handler is idempotent either way).
    """
    python = os.environ.get("TASKS_EMULATOR_PYTHON")
    if not python:
        pytest.skip("TASKS_EMULATOR_PYTHON is not set: `nox -s tests` installs gcloud-tasks-emulator and sets it")
    port, queue = free_port(), "projects/tapedeck-test/locations/europe-west1/queues/tapedeck"
    command = [python, str(ROOT / "tests" / "tasks_emulator.py"), "start", f"--port={port}", "-q", "-r", "4"]
    with open(logs / "emulator.log", "ab") as out:
        emulator = subprocess.Popen(
            [*command, "-d", queue], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    stack.callback(stop, emulator)
    wait_for_port(port)
    return {
        "TASK_QUEUE": "cloud-tasks",
        "CLOUD_TASKS_EMULATOR_HOST": f"127.0.0.1:{port}",
        "TASKS_PROJECT": "tapedeck-test",
        "TASKS_LOCATION": "europe-west1",
        "TASKS_QUEUE": "tapedeck",
    }


def wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")
