"""The bench's moving parts: the recorder under gunicorn, the load client processes, what storage holds."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from tests.bench.timing import STATS_DIR_ENV, TIMED_PATH, merge_histograms

__all__ = [
    "ROOT",
    "BenchError",
    "Clients",
    "Server",
    "ServerStats",
    "Stalls",
    "add_keep",
    "free_port",
    "in_folder",
    "log_problems",
    "process_cpu",
    "recorder",
    "serve",
    "server_folders",
    "stop_group",
    "stored_bytes",
    "wait_healthy",
]

ROOT = Path(__file__).resolve().parents[2]
_WAV_HEADER = 44
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 30.0
_STALL_SUFFIX = ".stall.json"
# The live pocketsphinx child's module, as it appears on its command line.
DECODER_MODULE = "pocketsphinx_stream_worker"


class BenchError(Exception):
    """The harness itself failed: a server or client did not start, run or report."""


def process_cpu(process: psutil.Process) -> float:
    """User plus system CPU a process has used so far."""
    times = process.cpu_times()
    return float(times.user + times.system)


def add_keep(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, storage) and say where")


def in_folder(prefix: str, keep: bool, bench: Callable[[Path], None]) -> int:
    """Run `bench` in a new temporary folder, removed after unless `keep`: the exit status, 2 when
    the harness itself failed."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        bench(folder)
    except BenchError as err:
        print(f"bench failed: {err}", file=sys.stderr)
        return 2
    finally:
        if keep:
            print(f"logs and storage kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """End a process we started, with its process group: SIGTERM, then SIGKILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(_STOP_TIMEOUT)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


@dataclass(frozen=True)
class ServerStats:
    """Streams finished, frames the recorder left unread at a hang-up, and frame delays."""

    streams: int
    unread_at_close: int
    max_queued: int
    delays: dict[str, Any]
    worst_by_second: dict[int, float]


@dataclass(frozen=True)
class Stalls:
    """How late the workers' event loops woke the stall monitor: a histogram and the worst per second."""

    late: dict[str, Any]
    worst_by_second: dict[int, float]


@dataclass
class Server:
    """A running recorder: its gunicorn process group, storage folder, stats folder and log."""

    process: subprocess.Popen[bytes]
    port: int
    storage: Path
    stats_dir: Path
    log: Path
    secret: str

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{TIMED_PATH}"

    @property
    def plain_url(self) -> str:
        """The production stream route, untimed."""
        return f"ws://127.0.0.1:{self.port}/socket"

    def _processes(self) -> list[psutil.Process]:
        master = psutil.Process(self.process.pid)
        return [master, *master.children(recursive=True)]

    def decoders(self) -> list[psutil.Process]:
        """The live pocketsphinx children running now."""
        found = []
        for process in self._processes():
            try:
                if any(DECODER_MODULE in part for part in process.cmdline()):
                    found.append(process)
            except psutil.NoSuchProcess:
                continue
        return found

    def recorder_processes(self) -> list[psutil.Process]:
        """The gunicorn master and workers, without the decoders."""
        decoders = {p.pid for p in self.decoders()}
        return [p for p in self._processes() if p.pid not in decoders]

    def stalls(self) -> Stalls:
        """What the workers' stall monitors wrote last, summed over the workers."""
        reports = [json.loads(path.read_text()) for path in sorted(self.stats_dir.glob(f"*{_STALL_SUFFIX}"))]
        worst: dict[int, float] = {}
        for report in reports:
            for second, late in report["worst_by_second"].items():
                worst[int(second)] = max(worst.get(int(second), 0.0), late)
        return Stalls(merge_histograms(r["late"] for r in reports), worst)

    def rss(self) -> int:
        """Resident memory of the gunicorn master and its workers, in bytes."""
        total = 0
        for process in self._processes():
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def cpu_seconds(self) -> float:
        """User plus system CPU of the master and its live workers so far."""
        return sum(self.cpu_by_process().values())

    def cpu_by_process(self) -> dict[int, float]:
        """User plus system CPU so far of each live process: master, workers and their children."""
        found = {}
        for process in self._processes():
            try:
                found[process.pid] = process_cpu(process)
            except psutil.NoSuchProcess:
                continue
        return found

    def stats(self) -> ServerStats:
        """What the workers' stats files say, summed over the workers."""
        paths = [p for p in sorted(self.stats_dir.glob("*.json")) if not p.name.endswith(_STALL_SUFFIX)]
        reports = [json.loads(path.read_text()) for path in paths]
        worst: dict[int, float] = {}
        for report in reports:
            for second, delay in report["worst_by_second"].items():
                worst[int(second)] = max(worst.get(int(second), 0.0), delay)
        return ServerStats(
            streams=sum(r["streams"] for r in reports),
            unread_at_close=sum(r["unread_at_close"] for r in reports),
            max_queued=max((r["max_queued"] for r in reports), default=0),
            delays=merge_histograms(r["delays"] for r in reports),
            worst_by_second=worst,
        )

    def wait_streams_finished(self, expected: int, timeout: float) -> bool:
        """Wait until the workers have finished `expected` streams (WAVs and call.json written)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stats().streams >= expected:
                return True
            time.sleep(0.2)
        return False


def _gunicorn_command(worker: str, workers: int, connections: int, port: int) -> list[str]:
    # The flags of app.yaml's entrypoint, on loopback, with the timed copy of the stream route.
    command = [sys.executable, "-m", "gunicorn", "--worker-class", worker, "--workers", str(workers)]
    command += ["--worker-connections", str(connections), "--graceful-timeout", "25", "--timeout", "60"]
    # Several gunicorns may run at once (tests, other benches): none needs the shared control socket.
    command += ["--no-control-socket"]
    if worker == "gthread":
        command += ["--threads", str(connections)]
    return [*command, "--bind", f"127.0.0.1:{port}", "tests.bench.instrumented:create_app()"]


def wait_healthy(process: subprocess.Popen[bytes], port: int, name: str) -> None:
    """Wait until the server `process` answers /healthz on `port`."""
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{name} exited with {process.returncode} during start-up")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"{name} did not answer /healthz within {_START_TIMEOUT:.0f} s")


def server_folders(folder: Path) -> tuple[Path, Path]:
    """Where a server started in `folder` stores its calls and writes its stats."""
    return folder / "storage", folder / "stats"


@contextmanager
def serve(
    name: str, command: Callable[[int], list[str]], folder: Path, env: dict[str, str] | None, secret: str
) -> Iterator[Server]:
    """A server process group started by `command(port)` on a free loopback port, logging to
    `folder/<name>.log`, answering /healthz; always stopped."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    storage, stats_dir = server_folders(folder)
    log = folder / f"{name}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command(port), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_healthy(process, port, name)
        yield Server(process, port, storage, stats_dir, log, secret)
    finally:
        stop_group(process)


@contextmanager
def recorder(
    worker: str, workers: int, connections: int, folder: Path, extra_env: dict[str, str] | None = None
) -> Iterator[Server]:
    """The recorder under gunicorn on a free loopback port, storing in `folder`; always stopped.
    `extra_env` adds settings (LIVE_TRANSCRIBER, ...) and the bench's variants."""
    storage, stats_dir = server_folders(folder)
    secret = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "STORAGE": "local",
        "LOCAL_STORAGE_DIR": str(storage),
        "STREAM_TOKEN_SECRET": secret,
        "STREAM_RATE": "16000",
        STATS_DIR_ENV: str(stats_dir),
        **(extra_env or {}),
    }
    with serve(
        "gunicorn", lambda port: _gunicorn_command(worker, workers, connections, port), folder, env, secret
    ) as server:
        yield server


class Clients:
    """Load client processes sharing one set of streams; always stopped."""

    def __init__(self, folder: Path, count: int) -> None:
        self.outputs = [folder / f"client-{i}.json" for i in range(count)]
        self.logs = [folder / f"client-{i}.log" for i in range(count)]
        self.processes: list[subprocess.Popen[bytes]] = []
        self._cpu: dict[int, float] = {}

    def start(
        self,
        server: Server,
        *,
        total: int,
        frames: int,
        start_at: float,
        stagger: float,
        deadline: float,
        fast: bool = False,
        speech: tuple[Path, int] | None = None,
        ping_every: int = 0,
    ) -> None:
        """Start the clients: `total` streams of `frames` each between them, the first at `start_at`;
        with `speech` (a WAV, a count), that many of the first streams send it to `/socket`; with
        `ping_every` N, every N-th stream also pings."""
        for index, (output, log) in enumerate(zip(self.outputs, self.logs, strict=True)):
            output.unlink(missing_ok=True)
            command = [
                sys.executable,
                "-m",
                "tests.bench.load_client",
                f"--url={server.url}",
                f"--secret={server.secret}",
            ]
            command += ["--total", str(total), "--first", str(index), "--stride", str(len(self.outputs))]
            command += ["--start-at", repr(start_at), "--stagger", repr(stagger), "--frames", str(frames)]
            command += ["--deadline", repr(deadline), "--out", str(output)]
            command += ["--fast"] if fast else []
            command += ["--ping-every", str(ping_every)] if ping_every else []
            if speech:
                command += ["--speech", str(speech[0]), "--speech-streams", str(speech[1])]
                command += ["--speech-url", server.plain_url]
            with open(log, "ab") as out:
                self.processes.append(
                    subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
                )

    def running(self) -> bool:
        """Whether any client still runs; notes each live client's CPU time on the way."""
        live = [p for p in self.processes if p.poll() is None]
        for process in live:
            try:
                self._cpu[process.pid] = process_cpu(psutil.Process(process.pid))
            except psutil.NoSuchProcess:
                continue
        return bool(live)

    @property
    def cpu_seconds(self) -> float:
        """The clients' CPU time as last seen while they ran."""
        return sum(self._cpu.values())

    def stop(self) -> None:
        for process in self.processes:
            stop_group(process)

    def results(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every call's result and each process's send-lag histogram."""
        calls, lags = [], []
        for output, log in zip(self.outputs, self.logs, strict=True):
            if not output.exists():
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise BenchError(f"load client wrote no result {output.name}:\n{tail}")
            result = json.loads(output.read_text())
            calls += result["calls"]
            lags.append(result["send_lag"])
        return calls, lags


def stored_bytes(storage: Path, conversation_uuid: str) -> tuple[int | None, int | None]:
    """PCM bytes in the call's audio.wav and in call.json's first recording (None when missing)."""
    folder = storage / "calls" / conversation_uuid
    wav = folder / "audio.wav"
    wav_bytes = wav.stat().st_size - _WAV_HEADER if wav.exists() else None
    try:
        recordings = json.loads((folder / "call.json").read_text())["recordings"]
        json_bytes = int(recordings[0]["bytes"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        json_bytes = None
    return wav_bytes, json_bytes


def log_problems(log: Path) -> Counter[str]:
    """Warnings and errors in the gunicorn log, counted by message."""
    problems: Counter[str] = Counter()
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            if record.get("severity") in ("WARNING", "ERROR", "CRITICAL"):
                problems[f"{record['severity']}: {record.get('message')}"] += 1
        elif any(mark in line for mark in ("[ERROR]", "[CRITICAL]", "[WARNING]", "Traceback", "Error")):
            problems[line.split("] ", 2)[-1][:160]] += 1
    return problems
