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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.bench.harness import ROOT, BenchError, Clients, Server, log_problems, recorder, stored_bytes
from tests.bench.timing import FRAME_SECONDS, FRAMES_PER_MINUTE, merge_histograms, subtract_histogram

__all__ = ["ImportResult", "LoadResult", "MemoryResult", "import_time", "memory_growth", "realtime_load"]

_SETTLE_TIMEOUT = 120.0
_CLOSE_SLACK = 40.0
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
    client_errors: Counter[str] = field(default_factory=Counter)


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


def _watch(server: Server, done: Callable[[], bool], mid_at: float, hard_stop: float, every: float) -> tuple[int, int]:
    """Sample the server's RSS until `done()`: the sample at `mid_at` (time.time()) and the peak."""
    mid = peak = 0
    while not done():
        if time.time() > hard_stop:
            raise BenchError("the load did not end in its time bound")
        rss = server.rss()
        peak = max(peak, rss)
        if not mid and time.time() >= mid_at:
            mid = rss
        time.sleep(every)
    return mid or peak, peak


def _machine_busy() -> float:
    """CPU seconds every process on the machine has used, all cores together."""
    times = psutil.cpu_times()
    iowait: float = getattr(times, "iowait", 0.0)
    return float(sum(times)) - float(times.idle) - iowait


def _warm_up(server: Server, folder: Path) -> None:
    """One short stream, so lazy imports and first-use objects are in the baseline, not the load."""
    clients = Clients(folder / "warm", 1)
    clients.outputs[0].parent.mkdir(exist_ok=True)
    now = time.time()
    try:
        clients.start(server, total=1, frames=_WARM_FRAMES, start_at=now, stagger=0.0, deadline=now + 30, fast=False)
        _watch(server, lambda: not clients.running(), math.inf, now + 30 + _CLOSE_SLACK, 0.05)
    finally:
        clients.stop()
    clients.results()
    if not server.wait_streams_finished(1, _SETTLE_TIMEOUT):
        raise BenchError("the warm-up stream did not finish")


def _audit(storage: Path, calls: list[dict[str, Any]]) -> Audit:
    audit = Audit()
    for call in calls:
        if call["error"]:
            audit.client_errors[call["error"][:100]] += 1
        if not call["connected"]:
            continue
        audit.connected += 1
        sent = call["bytes_sent"]
        wav, recorded = stored_bytes(storage, call["conversation_uuid"])
        audit.bytes_sent += sent
        audit.bytes_lost += max(0, sent - (wav or 0))
        audit.short_or_missing += wav is None or wav < sent
        audit.mismatched += recorded != wav
        audit.completed += call["completed"] and wav == sent
    return audit


def realtime_load(worker: str, workers: int, streams: int, seconds: float, folder: Path) -> LoadResult:
    """`streams` paced 16 kHz streams of `seconds` each, started over about 2 s."""
    with recorder(worker, workers, streams + 100, folder) as server:
        _warm_up(server, folder)
        before = server.stats()
        rss_base = server.rss()
        stagger = min(2.0, seconds / 2)
        start_at = time.time() + 1.0
        deadline = start_at + stagger + seconds + max(30.0, seconds)
        clients = Clients(folder, 2 if streams >= 50 else 1)
        cpu_start, wall_start, machine_start = server.cpu_seconds(), time.monotonic(), _machine_busy()
        try:
            frames = round(seconds / FRAME_SECONDS)
            clients.start(server, total=streams, frames=frames, start_at=start_at, stagger=stagger, deadline=deadline)
            mid_at = start_at + (stagger + seconds) / 2
            rss_mid, rss_peak = _watch(server, lambda: not clients.running(), mid_at, deadline + _CLOSE_SLACK, 0.25)
        finally:
            clients.stop()
        calls, lags = clients.results()
        settled = server.wait_streams_finished(1 + sum(c["connected"] for c in calls), _SETTLE_TIMEOUT)
        cpu, wall = server.cpu_seconds() - cpu_start, time.monotonic() - wall_start
        machine = _machine_busy() - machine_start
        after = server.stats()
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
            worst_by_second=[
                (second - int(start_at), round(delay * 1000, 1))
                for second, delay in sorted(after.worst_by_second.items())
                if second >= int(start_at)
            ],
        )


def memory_growth(worker: str, workers: int, minutes: int, folder: Path) -> MemoryResult:
    """Peak server RSS above baseline while one unpaced stream carries `minutes` of audio."""
    with recorder(worker, workers, 100, folder) as server:
        _warm_up(server, folder)
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
            _, peak = _watch(server, done, math.inf, deadline + _SETTLE_TIMEOUT, 0.01)
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
