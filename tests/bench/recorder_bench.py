"""Benchmark the recorder under gunicorn: real-time streams, workers compared, memory, import time.

    python tests/bench/recorder_bench.py                 # 1000 streams x 20 s on gevent, memory, import
    python tests/bench/recorder_bench.py --compare       # 200 streams x 15 s on gevent and on gthread
    python tests/bench/recorder_bench.py --versus-node   # 100, then 200 streams x 20 s: tapedeck and Node ws
    python tests/bench/recorder_bench.py --quick         # 20 streams x 3 s: does the bench work?

--versus-node runs tapedeck's recorder as app.yaml's entrypoint starts it (its worker class and
workers) and a minimal Node `ws` recorder (tests/bench/node_recorder/) under the same load, one
server at a time, the order swapped at each size: every 10th stream also pings. It prints, for
each, the CPU over the steady window (every stream sending) in cores per 100 streams and their
ratio, frame delay p50/p99/max, the worst event-loop stall, memory per stream and bytes lost.
Node and npm come from the machine (`ws` from npm, as locked); without them the Node column is
skipped and the bench says why. With --quick: 10 streams x 3 s.

Targets are printed beside the figures. A missed target is a finding, not a failure: the exit
status is nonzero only when the harness itself fails.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

# Run as a script, the folder on sys.path is tests/bench; the bench imports from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.harness import ROOT, add_keep, in_folder
from tests.bench.measures import LoadResult, import_time, memory_growth, realtime_load
from tests.bench.node_server import node_missing, node_recorder, node_versions
from tests.bench.report import Summary, print_comparison, print_import, print_load, print_memory, print_versus_node
from tests.bundles import entrypoint

WORKERS = ("gevent", "gthread")
COMPARE_STREAMS, COMPARE_SECONDS = 200, 15.0
QUICK_STREAMS, QUICK_SECONDS = 20, 3.0
VERSUS_STREAMS, VERSUS_SECONDS = (100, 200), 20.0
VERSUS_QUICK_STREAMS = 10
# Every 10th stream of the side-by-side load pings its server.
VERSUS_PING_EVERY = 10


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, help="concurrent real-time streams (default 1000)")
    parser.add_argument("--seconds", type=float, help="audio per stream in seconds (default 20)")
    parser.add_argument("--worker", choices=WORKERS, default="gevent", help="gunicorn worker class")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn worker processes (default 1)")
    parser.add_argument("--compare", action="store_true", help="the same smaller load on gevent and gthread")
    parser.add_argument(
        "--versus-node", action="store_true", help="tapedeck as deployed and a Node ws recorder, side by side"
    )
    parser.add_argument("--quick", action="store_true", help="a tiny run to check the bench works")
    parser.add_argument("--skip-memory", action="store_true", help="skip memory against call length")
    parser.add_argument("--skip-import", action="store_true", help="skip the functions' import time")
    add_keep(parser)
    args = parser.parse_args(argv)
    if args.compare and args.versus_node:
        parser.error("--compare and --versus-node are two runs: ask for one")
    default_streams, default_seconds = (
        (QUICK_STREAMS, QUICK_SECONDS)
        if args.quick
        else (COMPARE_STREAMS, COMPARE_SECONDS)
        if args.compare
        else (VERSUS_STREAMS[-1], VERSUS_SECONDS)
        if args.versus_node
        else (1000, 20.0)
    )
    # The side-by-side runs each size asked for, or the sizes (one tiny one when quick).
    args.sizes = (args.streams,) if args.streams else (VERSUS_QUICK_STREAMS,) if args.quick else VERSUS_STREAMS
    args.streams = args.streams or default_streams
    args.seconds = args.seconds or default_seconds
    if args.streams < 1 or not 1 <= args.seconds <= 600 or not 1 <= args.workers <= 8:
        parser.error("--streams must be >= 1, --seconds 1..600, --workers 1..8")
    return args


def _deployed() -> tuple[str, int]:
    """The worker class and worker count of app.yaml's entrypoint, as App Engine starts the recorder."""
    words = shlex.split(entrypoint(ROOT))
    return words[words.index("--worker-class") + 1], int(words[words.index("--workers") + 1])


def _versus_node(args: argparse.Namespace, folder: Path) -> None:
    """tapedeck's recorder as deployed and the Node recorder, one at a time, the order swapped at each size."""
    summary = Summary([])
    worker, workers = _deployed()
    missing = node_missing()
    node = f"Node is missing: {missing}" if missing else node_versions()
    print(f"tapedeck: gunicorn {worker}, {workers} workers (app.yaml's entrypoint); {node}", flush=True)
    ours_label = f"tapedeck ({worker} x{workers})"
    rounds: list[tuple[LoadResult, LoadResult | None]] = []
    for index, streams in enumerate(args.sizes):
        runs: dict[str, LoadResult] = {}
        order = ("tapedeck", "node") if index % 2 == 0 else ("node", "tapedeck")
        for name in order:
            if name == "node" and missing:
                continue
            print(f"running {streams} real-time streams x {args.seconds:g} s on {name} ...", flush=True)
            runs[name] = realtime_load(
                worker,
                workers,
                streams,
                args.seconds,
                folder / f"versus-{streams}-{name}",
                label=ours_label if name == "tapedeck" else "node ws",
                serve=node_recorder if name == "node" else None,
                ping_every=VERSUS_PING_EVERY,
            )
        rounds.append((runs["tapedeck"], runs.get("node")))
    print_versus_node(rounds, node, summary)
    summary.print()


def _bench(args: argparse.Namespace, folder: Path) -> None:
    summary = Summary([])
    workers = WORKERS if args.compare else (args.worker,)
    loads = []
    for worker in workers:
        print(f"running {args.streams} real-time streams x {args.seconds:g} s on gunicorn {worker} ...", flush=True)
        loads.append(realtime_load(worker, args.workers, args.streams, args.seconds, folder / f"load-{worker}"))
        print_load(loads[-1], summary)
    if args.compare:
        print_comparison(loads)
    if not args.skip_memory:
        minutes = (1, 2) if args.quick else (1, 30)
        print(f"\nrunning one unpaced stream of {minutes[0]} and of {minutes[1]} minutes per worker ...", flush=True)
        memory = [
            memory_growth(worker, args.workers, length, folder / f"memory-{worker}-{length}")
            for worker in workers
            for length in minutes
        ]
        print_memory(memory, summary)
    if not args.skip_import:
        print_import(import_time(), summary)
    summary.print()


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    run = _versus_node if args.versus_node else _bench
    return in_folder("tapedeck-bench-", args.keep, lambda folder: run(args, folder))


if __name__ == "__main__":
    sys.exit(main())
