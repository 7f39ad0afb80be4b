"""Benchmark the recorder under gunicorn: real-time streams, workers compared, memory, import time.

    python tests/bench/recorder_bench.py                 # 1000 streams x 20 s on gevent, memory, import
    python tests/bench/recorder_bench.py --compare       # 200 streams x 15 s on gevent and on gthread
    python tests/bench/recorder_bench.py --quick         # 20 streams x 3 s: does the bench work?

Targets are printed beside the figures. A missed target is a finding, not a failure: the exit
status is nonzero only when the harness itself fails.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

# Run as a script, the folder on sys.path is tests/bench; the bench imports from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.harness import BenchError
from tests.bench.measures import import_time, memory_growth, realtime_load
from tests.bench.report import Summary, print_comparison, print_import, print_load, print_memory

WORKERS = ("gevent", "gthread")
COMPARE_STREAMS, COMPARE_SECONDS = 200, 15.0
QUICK_STREAMS, QUICK_SECONDS = 20, 3.0


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, help="concurrent real-time streams (default 1000)")
    parser.add_argument("--seconds", type=float, help="audio per stream in seconds (default 20)")
    parser.add_argument("--worker", choices=WORKERS, default="gevent", help="gunicorn worker class")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn worker processes (default 1)")
    parser.add_argument("--compare", action="store_true", help="the same smaller load on gevent and gthread")
    parser.add_argument("--quick", action="store_true", help="a tiny run to check the bench works")
    parser.add_argument("--skip-memory", action="store_true", help="skip memory against call length")
    parser.add_argument("--skip-import", action="store_true", help="skip the functions' import time")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, storage) and say where")
    args = parser.parse_args(argv)
    default_streams, default_seconds = (
        (QUICK_STREAMS, QUICK_SECONDS)
        if args.quick
        else (COMPARE_STREAMS, COMPARE_SECONDS)
        if args.compare
        else (1000, 20.0)
    )
    args.streams = args.streams or default_streams
    args.seconds = args.seconds or default_seconds
    if args.streams < 1 or not 1 <= args.seconds <= 600 or not 1 <= args.workers <= 8:
        parser.error("--streams must be >= 1, --seconds 1..600, --workers 1..8")
    return args


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
    folder = Path(tempfile.mkdtemp(prefix="tapedeck-bench-"))
    try:
        _bench(args, folder)
    except BenchError as err:
        print(f"bench failed: {err}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"logs and storage kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
