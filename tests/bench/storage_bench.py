"""Calls stored on Cloud Storage as it really fails: hang-up to WAV, and the longest wait for a turn.

    python tests/bench/storage_bench.py [--streams 20] [--runs clean,faults] [--keep]

gcp-storage-emulator behind the fault proxy (tests/faultproxy.py: generation preconditions
enforced; 15 % of requests answered 503, 429, 500 or 408 before they are applied, 5 % applied and
their connection reset, 5 % answered 0.5 to 2 s late), the recorder started as app.yaml starts it
(gunicorn, gevent, two workers) and the answer and event functions, all storing through the proxy.
`--streams` calls from the Vonage stand-in at once, each saying the 9.4-second fixture in real time
(a 20 ms frame every 20 ms), pressing two keys and hanging up. The same load runs first with no
faults, for comparison.

For each run: calls stored exactly (WAV byte for byte, one recording entry, one entry per key
press, every event); hang-up to WAV, p50 and max, from the moment the caller closed the socket to
the WAV's creation at the emulator (one clock, one machine), and as the recorder measured it
(`wav_seconds` in its log, from the close it saw to its compose's answer); the longest any stream
waited for a storage turn (`turn_wait`); storage steps the recorder's lanes tried again; the faults
the proxy injected.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.faultproxy import FaultRates  # noqa: E402
from tests.servers import Emulator, free_port, running, storage_emulator_command  # noqa: E402
from tests.storage_platform import (  # noqa: E402
    FIXTURE,
    KEYS,
    FaultyPlatform,
    call_problems,
    faulty_platform,
    wait_settled,
)
from tests.testbed import SECRET  # noqa: E402
from tools.standin import VonageStandin  # noqa: E402

RUNS = {
    "clean": FaultRates(),
    "faults": FaultRates(errors=0.15, resets=0.05, slow=0.05, slow_seconds=(0.5, 2.0)),
}


def _recorder_lines(log: Path, offset: int) -> list[dict[str, Any]]:
    """The recorder's JSON log lines written after `offset`."""
    with open(log, "rb") as text:
        text.seek(offset)
        found = []
        for line in text.read().decode(errors="replace").splitlines():
            if line.startswith("{"):
                found.append(json.loads(line))
    return found


def _p50_max(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} / {max(values):.2f} s" if values else "n/a"


def run(platform: FaultyPlatform, name: str, streams: int) -> dict[str, Any]:
    """One load of `streams` real-time calls with the proxy at the run's rates; what came of it."""
    log = platform.logs / "recorder.log"
    offset = log.stat().st_size
    platform.proxy.reset()
    platform.proxy.rates = RUNS[name]

    def ring(index: int) -> Any:
        time.sleep(index * 0.05)  # callers a few milliseconds apart, as a telephone network has them
        return VonageStandin(SECRET).inbound_call(platform.answer_url, platform.event_url, FIXTURE, dtmf=KEYS)

    with ThreadPoolExecutor(streams) as pool:
        reports = list(pool.map(ring, range(streams)))
    deadline = time.monotonic() + 180
    calls = {r.conversation_uuid: wait_settled(platform.store, r.conversation_uuid, deadline) for r in reports}
    faults = platform.proxy.faults()
    platform.proxy.rates = FaultRates()
    exact = sum(not call_problems(platform.store, uuid, call) for uuid, call in calls.items())
    to_wav = []
    for report in reports:
        (wav,) = [i for i in platform.store.list(f"calls/{report.conversation_uuid}/") if i.key.endswith(".wav")]
        to_wav.append(wav.updated - (report.socket_closed_at or 0.0))
    lines = _recorder_lines(log, offset)
    finalized = [line for line in lines if line.get("message") == "recording finalized"]
    return {
        "run": name,
        "calls": f"{exact}/{streams}",
        "to_wav": _p50_max(to_wav),
        "recorder": _p50_max([line["wav_seconds"] for line in finalized]),
        "turn_wait": max((line["turn_wait"] for line in finalized), default=0.0),
        "retried": sum(line.get("message") == "storage step failed, trying again" for line in lines),
        "faults": {kind: sum(s.fault == kind for s in faults) for kind in ("error", "reset", "slow")},
        "requests": len(platform.proxy.seen),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=20, help="concurrent real-time calls (default 20)")
    parser.add_argument("--runs", default="clean,faults", help="which runs, in order (default clean,faults)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs) and say where")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="tapedeck-storage-bench-"))
    port = free_port()
    emulator = Emulator(f"http://127.0.0.1:{port}", "bench")
    results = []
    with (
        running(storage_emulator_command(port, "bench"), {}, emulator.url, folder / "emulator.log"),
        faulty_platform(emulator, folder) as platform,
    ):
        for name in args.runs.split(","):
            results.append(run(platform, name, args.streams))
    print(f"{args.streams} real-time calls of {FIXTURE.name} (9.4 s, two keys), recorder as app.yaml starts it")
    header = "run     calls exact   hang-up to WAV p50 / max   recorder's view   longest turn wait   steps retried"
    print(header)
    for result in results:
        print(
            f"{result['run']:<7} {result['calls']:<13} {result['to_wav']:<26} {result['recorder']:<17} "
            f"{result['turn_wait'] * 1000:>6.0f} ms           {result['retried']}"
        )
    for result in results:
        print(f"{result['run']}: {result['requests']} storage requests, faults injected {result['faults']}")
    if args.keep:
        print(f"logs kept in {folder}")
    else:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return 0 if all(r["calls"] == f"{args.streams}/{args.streams}" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
