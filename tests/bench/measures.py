"""The bench's measurements: real-time load, memory against call length, and the functions' import time."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.bench.harness import ROOT, BenchError, Clients, Server, log_problems, recorder, stored_bytes
from tests.bench.timing import FRAME_SECONDS, FRAMES_PER_MINUTE, merge_histograms, subtract_histogram

# One sample at a time.time(): the watch loop calls it once, as soon as that time has passed.
Mark = tuple[float, Callable[[], None]]
# Starts a server storing in a folder, for so many connections, and stops it when the block ends.
Serve = Callable[[Path, int], AbstractContextManager[Server]]

__all__ = [
    "CLOSE_SLACK",
    "SETTLE_TIMEOUT",
    "ImportResult",
    "LoadResult",
    "MemoryResult",
    "Pace",
    "Serve",
    "Steady",
    "import_time",
    "memory_growth",
    "paced_streams",
    "realtime_load",
    "wait_stored",
    "warm_up",
    "watch",
]

# How long the server may take to finish its streams after the clients end.
SETTLE_TIMEOUT = 120.0
# How long the clients may run past their deadline before the load is called stuck.
CLOSE_SLACK = 40.0
_WARM_FRAMES = 25


@dataclass
class Audit:
    """What storage holds against what the clients sent."""

    bytes_sent: int = 0
    bytes_lost: int = 0
    short_or_missing: int = 0
    mismatched: int = 0
    completed: int = 0
    connected: int = 0
    pings: int = 0
    pongs: int = 0
    client_errors: Counter[str] = field(default_factory=Counter)


@dataclass
class Steady:
    """The steady window, after the last stream has started and before the first ends: the server's
    CPU, the event loop's stalls, and its RSS at the window's start and end."""

    wall: float = 0.0
    cpu_seconds: float = 0.0
    worst_stall_ms: float | None = None
    rss_start: int = 0
    rss_end: int = 0

    @property
    def cpu_percent(self) -> float | None:
        return 100.0 * self.cpu_seconds / self.wall if self.wall > 0 else None


@dataclass
class LoadResult:
    worker: str
    streams: int
    seconds: float
    audit: Audit
    delay: dict[str, Any]
    send_lag: dict[str, Any]
    cpu_seconds: float
    wall: float
    rss_base: int
    rss_mid: int
    rss_peak: int
    settled: bool
    problems: Counter[str]
    client_cpu_seconds: float
    machine_busy_seconds: float
    unread_at_close: int
    max_queued: int
    # (seconds since the first stream started, worst frame delay in ms) for each second of the run
    worst_by_second: list[tuple[int, float]]
    steady: Steady
    # How late the event loop woke the stall monitor during the load (histogram), and its worst
    # in each second of the run, as worst_by_second
    stalls: dict[str, Any]
    stall_by_second: list[tuple[int, float]]
    # What this run was: the worker, or the variant the bench compares
    label: str = ""
    speech_streams: int = 0
    # The machine's 1-minute load average as the load started: how busy it was beforehand
    load_average: float = 0.0

    @property
    def worst_stall_ms(self) -> float | None:
        return max((ms for _, ms in self.stall_by_second), default=None)

    @property
    def cpu_percent(self) -> float:
        return 100.0 * self.cpu_seconds / self.wall

    @property
    def rss_per_stream_kib(self) -> float:
        # Per stream actually open: streams that never connected hold no server memory.
        return (self.rss_mid - self.rss_base) / max(1, self.audit.connected) / 1024


@dataclass
class MemoryResult:
    worker: str
    minutes: int
    growth: int
    wall: float
    bytes_sent: int
    bytes_stored: int | None
    max_queued: int


@dataclass
class ImportResult:
    median_ms: float
    runs_ms: list[float]
    own_median_ms: float
    gcs_loaded: bool
    slowest: list[tuple[str, float]]


def watch(
    server: Server,
    done: Callable[[], bool],
    mid_at: float,
    hard_stop: float,
    every: float,
    marks: Sequence[Mark] = (),
) -> tuple[int, int]:
    """Sample the server's RSS until `done()`: the sample at `mid_at` (time.time()) and the peak.
    Each of `marks` is called once, as soon as its time has passed."""
    mid = peak = 0
    pending = sorted(marks, key=lambda mark: mark[0])
    while not done():
        if time.time() > hard_stop:
            raise BenchError("the load did not end in its time bound")
        while pending and time.time() >= pending[0][0]:
            pending.pop(0)[1]()
        rss = server.rss()
        peak = max(peak, rss)
        if not mid and time.time() >= mid_at:
            mid = rss
        time.sleep(every)
    return mid or peak, peak


@dataclass(frozen=True)
class Pace:
    """When real-time streams run: the first starts at `start_at` (time.time()), the last `stagger`
    seconds later, and the clients give up at `deadline`."""

    stagger: float
    start_at: float
    deadline: float

    @classmethod
    def from_now(cls, stagger: float, slack: float) -> Pace:
        """Streams starting a second from now, given up on `slack` seconds after the last one starts."""
        start_at = time.time() + 1.0
        return cls(stagger, start_at, start_at + stagger + slack)


def paced_streams(
    server: Server,
    clients: Clients,
    streams: int,
    seconds: float,
    pace: Pace,
    *,
    every: float,
    mid_at: float = math.inf,
    marks: Sequence[Mark] = (),
    speech: tuple[Path, int] | None = None,
    ping_every: int = 0,
) -> tuple[int, int]:
    """`streams` real-time streams of `seconds` each from `clients`, watched (as `watch` does) every
    `every` seconds until they end; the clients are always stopped."""
    try:
        clients.start(
            server,
            total=streams,
            frames=round(seconds / FRAME_SECONDS),
            start_at=pace.start_at,
            stagger=pace.stagger,
            deadline=pace.deadline,
            speech=speech,
            ping_every=ping_every,
        )
        return watch(server, lambda: not clients.running(), mid_at, pace.deadline + CLOSE_SLACK, every, marks)
    finally:
        clients.stop()


def _machine_busy() -> float:
    """CPU seconds every process on the machine has used, all cores together."""
    times = psutil.cpu_times()
    iowait: float = getattr(times, "iowait", 0.0)
    return float(sum(times)) - float(times.idle) - iowait


def warm_up(server: Server, folder: Path) -> None:
    """One short stream, so lazy imports and first-use objects are in the baseline, not the load."""
    clients = Clients(folder / "warm", 1)
    clients.outputs[0].parent.mkdir(exist_ok=True)
    now = time.time()
    try:
        clients.start(server, total=1, frames=_WARM_FRAMES, start_at=now, stagger=0.0, deadline=now + 30, fast=False)
        watch(server, lambda: not clients.running(), math.inf, now + 30 + CLOSE_SLACK, 0.05)
    finally:
        clients.stop()
    clients.results()
    if not server.wait_streams_finished(1, SETTLE_TIMEOUT):
        raise BenchError("the warm-up stream did not finish")


def _audit(storage: Path, calls: list[dict[str, Any]]) -> Audit:
    audit = Audit()
    for call in calls:
        if call["error"]:
            audit.client_errors[call["error"][:100]] += 1
        if not call["connected"]:
            continue
        audit.connected += 1
        audit.pings += call.get("pings", 0)
        audit.pongs += call.get("pongs", 0)
        sent = call["bytes_sent"]
        wav, recorded = stored_bytes(storage, call["conversation_uuid"])
        audit.bytes_sent += sent
        audit.bytes_lost += max(0, sent - (wav or 0))
        audit.short_or_missing += wav is None or wav < sent
        audit.mismatched += recorded != wav
        audit.completed += call["completed"] and wav == sent
    return audit


def steady_marks(server: Server, start: float, end: float, steady: Steady) -> list[Mark]:
    """Samples of the server's CPU and RSS at `start` and `end` (time.time()), filling `steady`. CPU is
    counted per process, so a child started in the window counts from zero and one that ended nothing."""
    first: dict[int, float] = {}
    began = [0.0]

    def begin() -> None:
        first.update(server.cpu_by_process())
        began[0] = time.monotonic()
        steady.rss_start = server.rss()

    def finish() -> None:
        if began[0]:
            steady.cpu_seconds = sum(cpu - first.get(pid, 0.0) for pid, cpu in server.cpu_by_process().items())
            steady.wall = time.monotonic() - began[0]
            steady.rss_end = server.rss()

    return [(start, begin), (end, finish)] if end > start else []


def _seconds_from(start_at: float, by_second: dict[int, float]) -> list[tuple[int, float]]:
    """(seconds since `start_at`, milliseconds) for each second from `start_at` on."""
    return [
        (second - int(start_at), round(value * 1000, 1))
        for second, value in sorted(by_second.items())
        if second >= int(start_at)
    ]


def realtime_load(
    worker: str,
    workers: int,
    streams: int,
    seconds: float,
    folder: Path,
    *,
    label: str = "",
    extra_env: dict[str, str] | None = None,
    speech: tuple[Path, int] | None = None,
    serve: Serve | None = None,
    ping_every: int = 0,
) -> LoadResult:
    """`streams` paced 16 kHz streams of `seconds` each, started over about 2 s; with `speech`
    (a WAV, a count) the first streams carry that recording to `/socket` instead of stamped silence.
    The server is the recorder under gunicorn `worker`, or what `serve` starts; with `ping_every`
    N, every N-th stream also pings it."""
    started = serve(folder, streams + 100) if serve else recorder(worker, workers, streams + 100, folder, extra_env)
    with started as server:
        warm_up(server, folder)
        before, stalls_before = server.stats(), server.stalls()
        rss_base, load_average = server.rss(), os.getloadavg()[0]
        pace = Pace.from_now(min(2.0, seconds / 2), seconds + max(30.0, seconds))
        start_at, stagger = pace.start_at, pace.stagger
        clients = Clients(folder, 2 if streams >= 50 else 1)
        steady = Steady()
        # Every stream is sending from the last one's start (plus its handshake) to the first one's
        # end; the window ends half a second early, so its last sample is never missed.
        steady_start, steady_end = start_at + stagger + 0.5, start_at + seconds - 0.5
        marks = steady_marks(server, steady_start, steady_end, steady)
        cpu_start, wall_start, machine_start = server.cpu_seconds(), time.monotonic(), _machine_busy()
        rss_mid, rss_peak = paced_streams(
            server,
            clients,
            streams,
            seconds,
            pace,
            every=0.25,
            mid_at=start_at + (stagger + seconds) / 2,
            marks=marks,
            speech=speech,
            ping_every=ping_every,
        )
        calls, lags = clients.results()
        timed = sum(c["connected"] and not c.get("speech") for c in calls)
        settled = server.wait_streams_finished(1 + timed, SETTLE_TIMEOUT)
        if speech:
            settled = settled and wait_stored(server, [c for c in calls if c["connected"]])
        cpu, wall = server.cpu_seconds() - cpu_start, time.monotonic() - wall_start
        machine = _machine_busy() - machine_start
        # One more second, so the stall monitor has written out the last one of the load.
        time.sleep(1.1)
        after, stalls = server.stats(), server.stalls()
        steady.worst_stall_ms = max(
            (late * 1000 for second, late in stalls.worst_by_second.items() if steady_start <= second < steady_end),
            default=None,
        )
        return LoadResult(
            worker=worker,
            streams=streams,
            seconds=seconds,
            audit=_audit(server.storage, calls),
            delay=subtract_histogram(after.delays, before.delays),
            send_lag=merge_histograms(lags),
            cpu_seconds=cpu,
            wall=wall,
            rss_base=rss_base,
            rss_mid=rss_mid,
            rss_peak=rss_peak,
            settled=settled,
            problems=log_problems(server.log),
            client_cpu_seconds=clients.cpu_seconds,
            machine_busy_seconds=machine,
            unread_at_close=after.unread_at_close - before.unread_at_close,
            max_queued=after.max_queued,
            worst_by_second=_seconds_from(start_at, after.worst_by_second),
            steady=steady,
            stalls=subtract_histogram(stalls.late, stalls_before.late),
            stall_by_second=_seconds_from(start_at, stalls.worst_by_second),
            label=label or worker,
            speech_streams=speech[1] if speech else 0,
            load_average=load_average,
        )


def wait_stored(server: Server, calls: list[dict[str, Any]], also: Callable[[], bool] = lambda: True) -> bool:
    """Wait, up to SETTLE_TIMEOUT, until each call's WAV holds what was sent and `also()` holds."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        if all(stored_bytes(server.storage, c["conversation_uuid"])[0] == c["bytes_sent"] for c in calls) and also():
            return True
        time.sleep(0.2)
    return False


def memory_growth(worker: str, workers: int, minutes: int, folder: Path) -> MemoryResult:
    """Peak server RSS above baseline while one unpaced stream carries `minutes` of audio."""
    with recorder(worker, workers, 100, folder) as server:
        warm_up(server, folder)
        rss_base = server.rss()
        clients = Clients(folder, 1)
        start = time.time()
        deadline = start + 600

        def done() -> bool:
            return not clients.running() and server.stats().streams >= 2

        try:
            clients.start(
                server,
                total=1,
                frames=minutes * FRAMES_PER_MINUTE,
                start_at=start,
                stagger=0.0,
                deadline=deadline,
                fast=True,
            )
            _, peak = watch(server, done, math.inf, deadline + SETTLE_TIMEOUT, 0.01)
        finally:
            clients.stop()
        wall = time.time() - start
        calls, _ = clients.results()
        wav, _ = stored_bytes(server.storage, calls[0]["conversation_uuid"])
        queued = server.stats().max_queued
        return MemoryResult(worker, minutes, peak - rss_base, wall, calls[0]["bytes_sent"], wav, queued)


_IMPORT_PROBE = """
import importlib.util, json, sys, time
{preload}
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("main", "functions/main.py")
module = importlib.util.module_from_spec(spec)
sys.modules["main"] = module
spec.loader.exec_module(module)
elapsed = time.perf_counter() - start
gcs = "google.cloud.storage" in sys.modules
print(json.dumps({{"ms": elapsed * 1000, "gcs": gcs, "answer": callable(module.answer)}}))
"""


def _as_deployed() -> dict[str, str]:
    """The environment of a deployed function: pip compiled the bytecode when it installed the
    packages, so imports read .pyc files. A shell with PYTHONDONTWRITEBYTECODE would instead
    compile every module from source at each start and measure that."""
    return {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def _probe(preload: str, runs: int) -> list[dict[str, Any]]:
    code = _IMPORT_PROBE.format(preload=preload)
    env = _as_deployed()
    # One unmeasured run writes the bytecode, as the deploy's install did.
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, env=env, timeout=60, check=False)
    results = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, timeout=60
        )
        if done.returncode:
            raise BenchError(f"loading functions/main.py failed:\n{done.stderr[-2000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results


def _slowest_imports(count: int) -> list[tuple[str, float]]:
    """The top-level imports with the largest cumulative time, from `python -X importtime`."""
    code = _IMPORT_PROBE.format(preload="")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=_as_deployed(),
        timeout=60,
    )
    top: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|", 2)
        if cumulative.strip().isdigit() and not name.startswith("  "):
            top[name.strip()] = int(cumulative) / 1000
    return sorted(top.items(), key=lambda item: -item[1])[:count]


def import_time(runs: int = 5) -> ImportResult:
    """Load functions/main.py by path in fresh interpreters, as functions-framework does."""
    cold = _probe("", runs)
    # functions-framework has imported itself and Flask before it loads main.py: what is left is tapedeck's.
    own = _probe("import flask, functions_framework", runs)
    return ImportResult(
        median_ms=statistics.median(r["ms"] for r in cold),
        runs_ms=[round(r["ms"], 1) for r in cold],
        own_median_ms=statistics.median(r["ms"] for r in own),
        gcs_loaded=any(r["gcs"] for r in cold),
        slowest=_slowest_imports(5),
    )
