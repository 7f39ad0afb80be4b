"""Benchmark the recorder's event loop with storage writes and live transcription, under gunicorn gevent.

    python tests/bench/live_bench.py                    # every part at full size (about 6 minutes)
    python tests/bench/live_bench.py --quick            # every part tiny: does the bench work?
    python tests/bench/live_bench.py --part stall --seconds 60

Parts, each with its variants side by side in one run:

- fsync: real-time streams (100, then 500), recorded only, with the storage's fsync on the event
  loop against in gevent's threadpool (the product's choice).
- stall: 100 real-time streams with LIVE_TRANSCRIBER=pocketsphinx at its default cap of 2: the
  first two carry speech (tests/data/voicemail_outage.wav, looped) to /socket and are transcribed,
  the rest send stamped silence and are recorded only. Live decoders at niceness 10 (the
  product's choice) against 0. Target: worst event-loop stall <= 50 ms.
- cost: K = 1, 2 and 4 streams of speech with LIVE_STREAMS_MAX = K: pocketsphinx's real-time
  factor, CPU and memory per stream, streams per core, and gaps in the live transcripts.

The stall is measured directly: a greenlet in the worker sleeps 5 ms in a loop and records how
late it wakes. CPU figures are over the steady window, when every stream is sending. Targets are
printed beside the figures; a miss is a finding, and the exit status is nonzero only when the
harness itself fails.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

# Run as a script, the folder on sys.path is tests/bench; the bench imports from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.harness import add_keep, in_folder
from tests.bench.live_measures import SPEECH, LiveCost, live_cost, live_env
from tests.bench.measures import LoadResult, realtime_load
from tests.bench.report import TARGET_STALL_MS, Summary, print_comparison, print_load
from tests.bench.timing import FSYNC_ENV

PARTS = ("fsync", "stall", "cost")
_MIB = 1024 * 1024
# The live decoders' cap when LIVE_STREAMS_MAX is not set (shared/config/settings.py).
DEFAULT_LIVE_STREAMS = 2


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=(*PARTS, "all"), default="all")
    parser.add_argument("--quick", action="store_true", help="a tiny run of each part, to check the bench works")
    parser.add_argument("--seconds", type=float, help="audio per stream (default: fsync 20, stall 30, cost 40)")
    parser.add_argument("--fsync-streams", default="100,500", help="stream counts of the fsync part")
    parser.add_argument("--stall-streams", type=int, default=100, help="streams of the stall part")
    parser.add_argument("--cost-streams", default="1,2,4", help="live stream counts K of the cost part")
    add_keep(parser)
    args = parser.parse_args(argv)
    args.parts = PARTS if args.part == "all" else (args.part,)
    if args.quick:
        args.fsync_streams, args.stall_streams, args.cost_streams = "20", 10, "1"
    args.fsync_counts = [int(n) for n in args.fsync_streams.split(",")]
    args.cost_counts = [int(n) for n in args.cost_streams.split(",")]
    if args.seconds is not None and not 6 <= args.seconds <= 600:
        parser.error("--seconds must be 6..600")
    return args


def _seconds(args: argparse.Namespace, full: float, quick: float) -> float:
    return float(args.seconds or (quick if args.quick else full))


def _fsync(args: argparse.Namespace, folder: Path, summary: Summary) -> None:
    seconds = _seconds(args, 20.0, 4.0)
    for streams in args.fsync_counts:
        loads: list[LoadResult] = []
        for label, env in (("fsync on loop", {FSYNC_ENV: "loop"}), ("fsync in pool", {})):
            print(f"running {streams} recorded streams x {seconds:g} s, {label} ...", flush=True)
            loads.append(
                realtime_load(
                    "gevent", 1, streams, seconds, folder / f"fsync-{streams}-{len(loads)}", label=label, extra_env=env
                )
            )
            print_load(loads[-1], summary)
        print_comparison(loads)


def _stall(args: argparse.Namespace, folder: Path, summary: Summary) -> None:
    seconds = _seconds(args, 30.0, 5.0)
    streams = args.stall_streams
    speech = (SPEECH, min(DEFAULT_LIVE_STREAMS, streams))
    variants = ((10, "decoders nice 10"),) if args.quick else ((10, "decoders nice 10"), (0, "decoders nice 0"))
    loads: list[LoadResult] = []
    for nice, label in variants:
        print(f"running {streams} streams x {seconds:g} s, live pocketsphinx on the first 2, {label} ...", flush=True)
        path = folder / f"stall-{nice}"
        loads.append(
            realtime_load(
                "gevent", 1, streams, seconds, path, label=label, extra_env=live_env(nice=nice), speech=speech
            )
        )
        print_load(loads[-1], summary)
    if len(loads) > 1:
        print_comparison(loads)


def _cost(args: argparse.Namespace, folder: Path, summary: Summary) -> None:
    seconds = _seconds(args, 40.0, 6.0)
    costs = []
    for streams in args.cost_counts:
        print(f"running {streams} live streams of speech x {seconds:g} s, LIVE_STREAMS_MAX={streams} ...", flush=True)
        costs.append(live_cost(streams, seconds, folder / f"cost-{streams}"))
    _print_costs(costs, summary)


def _print_costs(costs: list[LiveCost], summary: Summary) -> None:
    rows: dict[str, Callable[[LiveCost], str]] = {
        "streams completed": lambda c: f"{c.completed}/{c.streams}",
        "bytes lost": lambda c: f"{c.bytes_lost:,}",
        "steady window (s)": lambda c: f"{c.window:.1f}",
        "decoders running": lambda c: f"{c.decoders_seen}",
        "decoder CPU (s)": lambda c: f"{c.decoder_cpu:.2f}",
        "recorder CPU (s)": lambda c: f"{c.recorder_cpu:.2f}",
        "real-time factor": lambda c: f"{c.rtf:.3f}",
        "CPU per stream (% core)": lambda c: f"{100 * c.cpu_per_stream:.1f}",
        "streams per core": lambda c: f"{1 / c.cpu_per_stream:.1f}",
        "decoder RSS (MiB)": lambda c: f"{c.decoder_rss / _MIB:.0f}",
        "recorder growth (MiB)": lambda c: f"{c.recorder_growth / _MIB:.1f}",
        "memory per stream (MiB)": lambda c: f"{c.memory_per_stream / _MIB:.0f}",
        "transcript gaps": lambda c: f"{c.gaps} ({c.gap_seconds:.1f} s)",
        "final words heard": lambda c: f"{c.words}",
        "gunicorn log problems": lambda c: f"{c.problems}",
    }
    print("\n-- live transcription's cost: K streams of speech, LIVE_STREAMS_MAX = K, steady window --")
    print(f"  {'':<28}" + "".join(f"{'K = ' + str(c.streams):>14}" for c in costs))
    for name, cell in rows.items():
        print(f"  {name:<28}" + "".join(f"{cell(c):>14}" for c in costs))
    for c in costs:
        if not c.settled:
            print(f"  WARNING: K = {c.streams}: the server had not finished every stream 120 s after the clients ended")
        summary.add(
            f"live K={c.streams} streams per core",
            f"{1 / c.cpu_per_stream:.1f} (RTF {c.rtf:.3f}, {c.memory_per_stream / _MIB:.0f} MiB/stream)",
            "(measured)",
            True,
        )
        summary.add(f"live K={c.streams} transcript gaps", f"{c.gaps} ({c.gap_seconds:.1f} s)", "0", c.gaps == 0)


def _bench(args: argparse.Namespace, folder: Path) -> None:
    summary = Summary([])
    print(f"event-loop stall target: worst <= {TARGET_STALL_MS:g} ms", flush=True)
    parts = {"fsync": _fsync, "stall": _stall, "cost": _cost}
    for name in args.parts:
        parts[name](args, folder, summary)
    summary.print()


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    return in_folder("tapedeck-live-bench-", args.keep, lambda folder: _bench(args, folder))


if __name__ == "__main__":
    sys.exit(main())
