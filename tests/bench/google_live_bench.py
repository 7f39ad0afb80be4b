"""What the Google live engine costs the recorder per live stream: CPU and memory, client side only.

    python tests/bench/google_live_bench.py                          # K = 1, 4, 16; 30 s each (about 4 minutes)
    python tests/bench/google_live_bench.py --streams 1 --seconds 5  # does the bench work?
    python tests/bench/google_live_bench.py --silence                # silent calls: no final result, a full bridge

For each K, two runs of one gevent-patched process, set up as the recorder's gevent worker sets
itself up (`monkey.patch_all()` first, then `cooperate_with_gevent()`): K greenlets each pace
640-byte frames of 16 kHz PCM every 20 ms for `--seconds`, and

- baseline: the frames are dropped (the pacing's own cost);
- engine: each greenlet feeds a GoogleStreamingTranscriber stream (LIVE_STREAMS_MAX = K) whose
  client talks gRPC to the Speech stand-in (tests/speech_standin.py), which runs in its own
  process so that its CPU is not the recorder's.

The process's CPU seconds are read over the steady window (from 2 s after the streams start to
1 s before they stop), and its RSS growth from just before the streams start to the highest seen
in the window. Engine minus baseline, divided by K, is what a live stream costs; the slope over
the Ks run is the same without the one-time cost of a first stream. The audio is speech in the
stand-in's language unless `--silence`: per 1.6 s, three utterances of 9 words in all, each word an
interim result as soon as it is heard (a word is 100 ms) and each utterance a final one. Opening
and closing a stream happen outside the window: they are a cost per call, not per second. With
`--silence` no result is ever final, so each stream keeps the audio it sent, up to `bridge_max`
(30 s), to send again at a restart: its memory grows through a 30 s run.

Not measured: the stand-in answers at once and recognises nothing, so this is tapedeck's side
only; real Google's round trips, TLS (some CPU per byte on the client) and its pace of results
are not here. Restarts at `restart_after` (240 s) do not happen in a run this short.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

# Run as a script, the folder on sys.path is tests/bench; the bench imports from the repository root.
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.harness import process_cpu  # noqa: E402
from tests.bench.timing import FRAME_BYTES, FRAME_SECONDS  # noqa: E402

__all__ = ["Tally", "run_client"]

RATE = round(FRAME_BYTES / 2 / FRAME_SECONDS)  # 16 kHz
# Utterances with pauses between them, in 100 ms units (see tests/speech_standin.py).
SPEECH_UNITS = [1, 2, 3, 0, 4, 5, 0, 0, 6, 7, 8, 9, 0, 0, 0, 0]
_MIB = 1024 * 1024
# The streams open and their first requests go out before the window starts.
_WARM = 2.0
# Between the client's "ready" and the first frame: time to read its resting RSS.
_LEAD = 1.0
# The client process: gevent's patches first, as the recorder's gevent worker has them.
_CLIENT = """
from gevent import monkey

monkey.patch_all()

import sys
from tests.bench.google_live_bench import run_client

run_client(sys.argv[1:])
"""


@dataclass
class Tally:
    """What the client's streams saw: results, words, refusals, and how late a frame went out."""

    interim: int = 0
    finals: int = 0
    gaps: int = 0
    words: int = 0
    expected_words: int = 0
    refused: int = 0
    late_ms: float = 0.0

    def add(self, other: Tally) -> None:
        for name, value in asdict(other).items():
            merged = max(getattr(self, name), value) if name == "late_ms" else getattr(self, name) + value
            setattr(self, name, merged)


# --- the client process (gevent-patched) -----------------------------------------------------


def _units(seconds: float, silence: bool) -> list[int]:
    count = int(seconds * 10)
    return [0] * count if silence else [SPEECH_UNITS[i % len(SPEECH_UNITS)] for i in range(count)]


def _engine(streams: int, port: int) -> Any:
    """A Google engine whose client talks to the stand-in, its channel already connected."""
    import grpc
    from google.cloud import speech_v1 as speech
    from google.cloud.speech_v1.services.speech.transports import SpeechGrpcTransport

    from shared.adapters.google_streaming_transcriber import GoogleStreamingTranscriber

    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=10)
    client = speech.SpeechClient(transport=SpeechGrpcTransport(channel=channel))
    return GoogleStreamingTranscriber(limit=streams, client=client)


def _call(engine: Any, audio: list[bytes], start_at: float, tally: Tally) -> None:
    """One call: real-time frames from `start_at`, fed to a live stream or dropped."""
    import gevent

    from shared.core.ports import LiveSegment

    def heard(segment: LiveSegment) -> None:
        if segment.gap:
            tally.gaps += 1
        elif segment.final:
            tally.finals += 1
            tally.words += len(segment.words)
        else:
            tally.interim += 1

    stream = engine.open(RATE, heard) if engine is not None else None
    if engine is not None and stream is None:
        tally.refused += 1
        return
    for index, frame in enumerate(audio):
        due = start_at + index * FRAME_SECONDS
        if (wait := due - time.time()) > 0:
            gevent.sleep(wait)
        tally.late_ms = max(tally.late_ms, (time.time() - due) * 1000)
        if stream is not None:
            stream.feed(frame)
    if stream is not None:
        stream.close(timeout=10)


def run_client(argv: list[str]) -> None:
    """The client process: `mode streams seconds port silence`; prints its start time, then its tally."""
    import gevent

    from shared.adapters.google_streaming_transcriber import cooperate_with_gevent
    from tests.speech_standin import frames

    mode, streams, seconds, port, silence = argv[0], int(argv[1]), float(argv[2]), int(argv[3]), argv[4] == "1"
    cooperate_with_gevent()
    units = _units(seconds, silence)
    audio = frames(units, RATE)
    engine = _engine(streams, port) if mode == "engine" else None
    if engine is not None:
        engine.config(RATE)  # the Speech module's import, before the resting RSS is read
    tallies = [Tally(expected_words=sum(1 for n in units if n)) for _ in range(streams)]
    start_at = time.time() + _LEAD
    print(json.dumps({"start_at": start_at}), flush=True)
    # The streams' frames are spread over one frame time, as independent calls' are.
    greenlets = [
        gevent.spawn(_call, engine, audio, start_at + i * FRAME_SECONDS / streams, tally)
        for i, tally in enumerate(tallies)
    ]
    gevent.joinall(greenlets, timeout=seconds + 60)
    total = Tally()
    for tally in tallies:
        total.add(tally)
    print(json.dumps(asdict(total)), flush=True)


# --- the stand-in process -------------------------------------------------------------------


def serve_standin(workers: int) -> None:
    """The Speech stand-in until stdin closes; its port is the first line printed."""
    from tests.speech_standin import SpeechStandIn

    standin = SpeechStandIn(workers=workers)
    print(standin.port, flush=True)
    sys.stdin.read()
    standin.stop()


# --- the bench ------------------------------------------------------------------------------


@dataclass
class Run:
    """One client process over its steady window."""

    streams: int
    window: float
    cpu: float
    rss_growth: int
    standin_cpu: float
    tally: Tally


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def _spawn(args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def _line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise SystemExit(f"a bench process ended early (exit status {process.wait()})")
    return line


def _watch(client: subprocess.Popen[str], standin: psutil.Process | None, streams: int, seconds: float) -> Run:
    """CPU and RSS of the client over its steady window, and the stand-in's CPU over the same."""
    start_at = float(json.loads(_line(client))["start_at"])
    process = psutil.Process(client.pid)
    resting = process.memory_info().rss
    _sleep_until(start_at + _WARM)
    began, cpu, standin_cpu = time.time(), process_cpu(process), process_cpu(standin) if standin else 0.0
    peak = resting
    while time.time() < start_at + seconds - 1.0:
        peak = max(peak, process.memory_info().rss)
        time.sleep(0.25)
    window = time.time() - began
    cpu = process_cpu(process) - cpu
    standin_cpu = (process_cpu(standin) if standin else 0.0) - standin_cpu
    tally = Tally(**json.loads(_line(client)))
    if client.wait(timeout=120) != 0:
        raise SystemExit(f"the client failed (exit status {client.returncode})")
    return Run(streams, window, cpu, peak - resting, standin_cpu, tally)


def _run(mode: str, streams: int, seconds: float, silence: bool) -> Run:
    standin: subprocess.Popen[str] | None = None
    port = 0
    if mode == "engine":
        standin = _spawn([__file__, "--serve-standin", str(streams + 2)])
        port = int(_line(standin))
    try:
        client = _spawn(["-c", _CLIENT, mode, str(streams), str(seconds), str(port), "1" if silence else "0"])
        return _watch(client, psutil.Process(standin.pid) if standin else None, streams, seconds)
    finally:
        if standin is not None:
            assert standin.stdin is not None
            standin.stdin.close()
            standin.wait(timeout=30)


def _slope(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of y over x, or None with fewer than two x."""
    if len({x for x, _ in points}) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points)


_HEADER = (
    "  K | cores: engine  base  extra /stream | RSS MiB: engine  base /stream | stand-in cores |     words gaps  late"
)


def _row(engine: Run, base: Run) -> tuple[float, float, str]:
    """Extra cores and MiB of the engine over the baseline, and the table's row."""
    k, tally = engine.streams, engine.tally
    cores, base_cores = engine.cpu / engine.window, base.cpu / base.window
    extra, growth = cores - base_cores, (engine.rss_growth - base.rss_growth) / _MIB
    late = max(tally.late_ms, base.tally.late_ms)
    row = (
        f"{k:>3} | {cores:>13.3f} {base_cores:>5.3f} {extra:>6.3f} {extra / k:>7.4f}"
        f" | {engine.rss_growth / _MIB:>15.1f} {base.rss_growth / _MIB:>5.1f} {growth / k:>7.2f}"
        f" | {engine.standin_cpu / engine.window:>14.3f} | {tally.words:>4}/{tally.expected_words:<4}"
        f" {tally.gaps:>4} {late:>3.0f}ms"
    )
    return extra, growth, row


def _print_table(pairs: list[tuple[Run, Run]]) -> None:
    print()
    print(_HEADER)
    cores: list[tuple[int, float]] = []
    mib: list[tuple[int, float]] = []
    for engine, base in pairs:
        extra, growth, row = _row(engine, base)
        cores.append((engine.streams, extra))
        mib.append((engine.streams, growth))
        print(row)
    core_slope, mib_slope = _slope(cores), _slope(mib)
    if core_slope is not None and mib_slope is not None:
        print(f"slope over K: {core_slope:.4f} cores and {mib_slope:.2f} MiB per live stream")
    print("cores: CPU seconds per second of the window; late: the most any frame went out past its time, either run")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", default="1,4,16", help="live stream counts K, comma-separated")
    parser.add_argument("--seconds", type=float, default=30.0, help="audio per stream (at least 5)")
    parser.add_argument("--silence", action="store_true", help="feed silence instead of the stand-in's speech")
    parser.add_argument("--serve-standin", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds < 5:
        parser.error("--seconds must be at least 5")
    args.counts = [int(n) for n in args.streams.split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.serve_standin is not None:
        serve_standin(args.serve_standin)
        return 0
    audio = "silence" if args.silence else "speech (the stand-in's numbers)"
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}, load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores")
    print(f"K = {args.counts}, {args.seconds:g} s of {audio} per stream, 640-byte frames every 20 ms")
    pairs: list[tuple[Run, Run]] = []
    for streams in args.counts:
        print(f"running K = {streams}: baseline, then engine ...", flush=True)
        base = _run("baseline", streams, args.seconds, args.silence)
        pairs.append((_run("engine", streams, args.seconds, args.silence), base))
    _print_table(pairs)
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}, load average {os.getloadavg()[0]:.2f}")
    print("The stand-in answers at once and recognises nothing: these are tapedeck's client-side costs only.")
    print("Not measured: Google's round trips, TLS (CPU per byte on the client), and Google's pace of results.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
