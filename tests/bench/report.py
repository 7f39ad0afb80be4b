"""How the bench prints its figures: one line per figure with its target, a comparison table, a summary."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from tests.bench.measures import ImportResult, LoadResult, MemoryResult
from tests.bench.timing import percentile_ms

__all__ = [
    "TARGET_STALL_MS",
    "Summary",
    "print_comparison",
    "print_import",
    "print_load",
    "print_memory",
    "print_versus_node",
]

TARGET_STREAMS = 1000
TARGET_P99_MS = 20.0
TARGET_RSS_KIB = 512.0
TARGET_IMPORT_MS = 150.0
TARGET_STALL_MS = 50.0
# tapedeck's recorder's CPU per stream against the Node ws recorder's, in the same run.
TARGET_VERSUS_NODE = 2.0
# Past this frame delay p99 a server is not keeping up with real time: it is short of CPU.
_BEHIND_MS = 100.0
_MIB = 1024 * 1024


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "> 5000" if math.isinf(value) else f"{value:.1f}"


def _streams_target(streams: int) -> str:
    return f"all {streams}" + ("" if streams >= TARGET_STREAMS else f" (full load {TARGET_STREAMS})")


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


@dataclass
class Summary:
    """The verdict lines printed at the end of the run."""

    lines: list[str]

    def add(self, figure: str, value: str, target: str, ok: bool) -> None:
        self.lines.append(f"  {figure:<34} {value:<34} target {target:<14} {_met(ok)}")

    def print(self) -> None:
        print("\n== summary " + "=" * 98)
        for line in self.lines:
            print(line)


def _line(tag: str, figure: str, value: str, target: str = "") -> None:
    print(f"[{tag}] {figure:<26} {value:<72} {('target ' + target) if target else ''}".rstrip())


def print_load(result: LoadResult, summary: Summary) -> None:
    """The real-time figures of one worker, then its line of the summary."""
    tag, audit = result.label, result.audit
    p50, p99 = percentile_ms(result.delay, 0.50), percentile_ms(result.delay, 0.99)
    lag99 = percentile_ms(result.send_lag, 0.99)
    speech = f", {result.speech_streams} of them speech to /socket" if result.speech_streams else ""
    print(f"\n-- {result.streams} real-time 16 kHz streams x {result.seconds:g} s{speech}, gunicorn {result.worker} --")
    streams = f"{audit.completed} / {result.streams} (connected {audit.connected})"
    _line(tag, "streams completed", streams, _streams_target(result.streams))
    lost = f"{audit.bytes_lost:,} of {audit.bytes_sent:,} sent; {audit.short_or_missing} calls with missing/short WAV"
    _line(tag, "bytes lost", lost + f"; {audit.mismatched} call.json/WAV mismatches", "0")
    delays = f"{_ms(p50)} / {_ms(p99)} ms (max {result.delay['max_ms']:.0f} ms, {result.delay['count']:,} frames)"
    _line(tag, "frame delay p50 / p99", delays, f"p99 <= {TARGET_P99_MS:g} ms")
    _line(tag, "client send lag p99", f"{_ms(lag99)} ms (how late the client itself sent; included above)")
    cpu = f"{result.cpu_seconds:.1f} s over {result.wall:.1f} s = {result.cpu_percent:.0f} % of one core"
    _line(tag, "server CPU, whole run", cpu + " (ramp-up, settling and the warm-up's end included)")
    steady = result.steady
    if steady.cpu_percent is not None:
        window = f"{steady.cpu_seconds:.1f} s over {steady.wall:.1f} s = {steady.cpu_percent:.0f} % of one core"
        _line(tag, "server CPU, steady window", window + " (every stream sending)")
    stall = (
        f"worst {_ms(result.worst_stall_ms)} ms, steady window {_ms(steady.worst_stall_ms)} ms; "
        f"p99 {_ms(percentile_ms(result.stalls, 0.99))} ms, p50 {_ms(percentile_ms(result.stalls, 0.50))} ms "
        f"({result.stalls['count']:,} wake-ups)"
    )
    _line(tag, "event-loop stall", stall, f"worst <= {TARGET_STALL_MS:g} ms")
    others = result.machine_busy_seconds - result.cpu_seconds - result.client_cpu_seconds
    machine = (
        f"{result.machine_busy_seconds:.1f} s of {result.wall * psutil.cpu_count():.1f} s "
        f"({psutil.cpu_count()} cores): server {result.cpu_seconds:.1f}, load clients "
        f"{result.client_cpu_seconds:.1f}, everything else {others:.1f}"
    )
    _line(tag, "machine CPU busy", machine)
    rss = (
        f"{result.rss_per_stream_kib:.0f} KiB (baseline {result.rss_base / _MIB:.1f} MiB, mid-run "
        f"{result.rss_mid / _MIB:.1f} MiB, peak {result.rss_peak / _MIB:.1f} MiB)"
    )
    _line(tag, "RSS per stream", rss, f"<= {TARGET_RSS_KIB:g} KiB")
    _line(tag, "frames unread at hang-up", f"{result.unread_at_close} (queued when the recorder took the close)")
    _line(tag, "most frames queued", f"{result.max_queued} in one stream's simple-websocket input buffer")
    worst = " ".join(f"{second}s:{ms:.0f}" for second, ms in result.worst_by_second)
    _line(tag, "worst delay ms by second", worst)
    stalls = " ".join(f"{second}s:{ms:.0f}" for second, ms in result.stall_by_second)
    _line(tag, "worst stall ms by second", stalls)
    if not result.settled:
        _line(tag, "WARNING", "the server had not finished every stream 120 s after the clients ended")
    _line(tag, "gunicorn log problems", f"{sum(result.problems.values())}")
    for message, count in result.problems.most_common(6):
        print(f"      {count:>6} x {message}")
    for message, count in audit.client_errors.most_common(4):
        print(f"      client: {count:>6} x {message}")
    _summarise_load(result, summary)


def _summarise_load(result: LoadResult, summary: Summary) -> None:
    """One worker's figures against their targets."""
    audit, p99 = result.audit, percentile_ms(result.delay, 0.99)
    label = f"{result.label} {result.streams}x{result.seconds:g}s"
    summary.add(
        f"{label} streams completed",
        f"{audit.completed}/{result.streams}",
        _streams_target(result.streams),
        audit.completed == result.streams,
    )
    summary.add(
        f"{label} bytes lost", f"{audit.bytes_lost:,}", "0", audit.bytes_lost == 0 and not audit.short_or_missing
    )
    summary.add(
        f"{label} p99 delay", f"{_ms(p99)} ms", f"<= {TARGET_P99_MS:g} ms", p99 is not None and p99 <= TARGET_P99_MS
    )
    summary.add(
        f"{label} RSS/stream",
        f"{result.rss_per_stream_kib:.0f} KiB",
        f"<= {TARGET_RSS_KIB:g} KiB",
        result.rss_per_stream_kib <= TARGET_RSS_KIB,
    )
    worst = result.worst_stall_ms
    summary.add(
        f"{label} worst stall",
        f"{_ms(worst)} ms",
        f"<= {TARGET_STALL_MS:g} ms",
        worst is not None and worst <= TARGET_STALL_MS,
    )
    steady = result.steady.cpu_percent
    cpu = f"{result.cpu_percent:.0f} % of one core" + ("" if steady is None else f", steady {steady:.0f} %")
    summary.add(f"{label} server CPU", cpu, "(measured)", True)


def print_comparison(results: list[LoadResult]) -> None:
    """The same load on each worker, side by side."""
    rows: dict[str, Callable[[LoadResult], str]] = {
        "streams completed": lambda r: f"{r.audit.completed}/{r.streams}",
        "bytes lost": lambda r: f"{r.audit.bytes_lost:,}",
        "missing/short WAVs": lambda r: f"{r.audit.short_or_missing}",
        "frame delay p50 (ms)": lambda r: _ms(percentile_ms(r.delay, 0.50)),
        "frame delay p99 (ms)": lambda r: _ms(percentile_ms(r.delay, 0.99)),
        "frame delay max (ms)": lambda r: f"{r.delay['max_ms']:.0f}",
        "client send lag p99 (ms)": lambda r: _ms(percentile_ms(r.send_lag, 0.99)),
        "event-loop stall worst (ms)": lambda r: _ms(r.worst_stall_ms),
        "  in steady window (ms)": lambda r: _ms(r.steady.worst_stall_ms),
        "event-loop stall p99 (ms)": lambda r: _ms(percentile_ms(r.stalls, 0.99)),
        "server CPU (s)": lambda r: f"{r.cpu_seconds:.1f}",
        "server CPU (% of a core)": lambda r: f"{r.cpu_percent:.0f}",
        "  steady window (%)": lambda r: "n/a" if r.steady.cpu_percent is None else f"{r.steady.cpu_percent:.0f}",
        "load clients CPU (s)": lambda r: f"{r.client_cpu_seconds:.1f}",
        "machine CPU busy (s)": lambda r: f"{r.machine_busy_seconds:.1f}",
        "RSS per stream (KiB)": lambda r: f"{r.rss_per_stream_kib:.0f}",
        "RSS mid-run (MiB)": lambda r: f"{r.rss_mid / _MIB:.1f}",
        "frames unread at hang-up": lambda r: f"{r.unread_at_close}",
        "most frames queued": lambda r: f"{r.max_queued}",
        "gunicorn log problems": lambda r: f"{sum(r.problems.values())}",
    }
    first = results[0]
    print(f"\n-- side by side: {first.streams} real-time streams x {first.seconds:g} s --")
    print(f"  {'':<28}" + "".join(f"{r.label:>16}" for r in results))
    for name, cell in rows.items():
        print(f"  {name:<28}" + "".join(f"{cell(r):>16}" for r in results))


def print_memory(results: list[MemoryResult], summary: Summary) -> None:
    """Server memory growth for one stream, short against long (both sent unpaced)."""
    print("\n-- memory against call length: one stream sent UNPACED (as fast as possible), not in real time --")
    for r in results:
        stored = "missing" if r.bytes_stored is None else f"{r.bytes_stored:,}"
        print(
            f"[{r.worker}] {r.minutes:>2} min of audio: RSS growth {r.growth / _MIB:7.1f} MiB "
            f"(sent {r.bytes_sent:,} B in {r.wall:.1f} s, WAV holds {stored} B; "
            f"up to {r.max_queued:,} frames queued unread in simple-websocket)"
        )
    for worker in dict.fromkeys(r.worker for r in results):
        short, long = (r for r in results if r.worker == worker)
        flat = long.growth <= max(2 * short.growth, short.growth + 8 * _MIB)
        value = f"{short.growth / _MIB:.1f} vs {long.growth / _MIB:.1f} MiB"
        summary.add(f"{worker} RSS growth {short.minutes} vs {long.minutes} min", value, "about equal", flat)


def print_import(result: ImportResult, summary: Summary) -> None:
    """Cold load of functions/main.py."""
    print("\n-- cold import of functions/main.py by path (as functions-framework loads it), fresh interpreter --")
    runs = ", ".join(f"{ms:.0f}" for ms in result.runs_ms)
    print(f"[import] median {result.median_ms:.0f} ms (runs {runs}) target <= {TARGET_IMPORT_MS:g} ms")
    print(f"[import] with flask and functions_framework already imported: median {result.own_median_ms:.0f} ms")
    print(f"[import] google.cloud.storage in sys.modules: {result.gcs_loaded} (must be False)")
    slowest = ", ".join(f"{name} {ms:.0f} ms" for name, ms in result.slowest)
    print(f"[import] slowest top-level imports (cumulative): {slowest}")
    summary.add(
        "import of answer (median)",
        f"{result.median_ms:.0f} ms",
        f"<= {TARGET_IMPORT_MS:g} ms",
        result.median_ms <= TARGET_IMPORT_MS,
    )
    summary.add("google.cloud.storage not imported", f"{not result.gcs_loaded}", "True", not result.gcs_loaded)


def _cores_per_100(result: LoadResult) -> float | None:
    """The server's CPU over the steady window, in cores per 100 streams."""
    percent = result.steady.cpu_percent
    return None if percent is None else percent / result.streams


def _kept_up(result: LoadResult) -> bool:
    p99 = percentile_ms(result.delay, 0.99)
    return p99 is not None and p99 <= _BEHIND_MS


def _cores(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _growth_kib(result: LoadResult) -> float:
    """RSS growth per stream from the steady window's start to its end: 0 when memory is flat."""
    return (result.steady.rss_end - result.steady.rss_start) / max(1, result.audit.connected) / 1024


def _delays(result: LoadResult) -> str:
    p50, p99 = percentile_ms(result.delay, 0.50), percentile_ms(result.delay, 0.99)
    return f"{_ms(p50)} / {_ms(p99)} / {result.delay['max_ms']:.0f}"


_VERSUS_ROWS: dict[str, Callable[[LoadResult], str]] = {
    "streams completed": lambda r: f"{r.audit.completed}/{r.streams}",
    "bytes lost (of bytes sent)": lambda r: f"{r.audit.bytes_lost:,} of {r.audit.bytes_sent:,}",
    "CPU, steady window (cores/100 streams)": lambda r: _cores(_cores_per_100(r)),
    "  (CPU s over wall s)": lambda r: f"{r.steady.cpu_seconds:.1f} / {r.steady.wall:.1f}",
    "frame delay p50 / p99 / max (ms)": _delays,
    "worst stall, steady window (ms)": lambda r: _ms(r.steady.worst_stall_ms),
    "memory per stream (KiB)": lambda r: f"{r.rss_per_stream_kib:.0f}",
    "  growth over steady window (KiB)": lambda r: f"{_growth_kib(r):.0f}",
    "pings answered": lambda r: f"{r.audit.pongs}/{r.audit.pings}",
    "client send lag p99 (ms)": lambda r: _ms(percentile_ms(r.send_lag, 0.99)),
    "load clients' CPU in the run (s)": lambda r: f"{r.client_cpu_seconds:.1f}",
    "load average as the run began": lambda r: f"{r.load_average:.2f}",
    "other processes' CPU in the run (s)": lambda r: (
        f"{r.machine_busy_seconds - r.cpu_seconds - r.client_cpu_seconds:.1f}"
    ),
}


def _versus_targets(ours: LoadResult, node: LoadResult | None) -> dict[str, tuple[str, bool | None]]:
    """Each target's figure for tapedeck's recorder and whether it is met (None: not measured)."""
    p99, stall = percentile_ms(ours.delay, 0.99), ours.steady.worst_stall_ms
    ours_cpu, node_cpu = _cores_per_100(ours), node and _cores_per_100(node)
    ratio = ours_cpu / node_cpu if ours_cpu and node_cpu else None
    return {
        "CPU per stream": (
            "n/a (no Node)" if ratio is None else f"{ratio:.2f}x Node's",
            None if ratio is None else ratio <= TARGET_VERSUS_NODE,
        ),
        "bytes lost": (f"{ours.audit.bytes_lost:,}", ours.audit.bytes_lost == 0 and not ours.audit.short_or_missing),
        "frame delay p99": (f"{_ms(p99)} ms", p99 is not None and p99 <= TARGET_P99_MS),
        "worst stall": (f"{_ms(stall)} ms", stall is not None and stall <= TARGET_STALL_MS),
        "memory per stream": (f"{ours.rss_per_stream_kib:.0f} KiB", ours.rss_per_stream_kib <= TARGET_RSS_KIB),
    }


_VERSUS_GOALS = {
    "CPU per stream": f"<= {TARGET_VERSUS_NODE:g}x Node's",
    "bytes lost": "0",
    "frame delay p99": f"<= {TARGET_P99_MS:g} ms",
    "worst stall": f"<= {TARGET_STALL_MS:g} ms",
    "memory per stream": f"<= {TARGET_RSS_KIB:g} KiB",
}


def print_versus_node(rounds: list[tuple[LoadResult, LoadResult | None]], node: str, summary: Summary) -> None:
    """tapedeck's recorder beside the Node recorder under the same load, one table per size."""
    for ours, theirs in rounds:
        results = [ours] if theirs is None else [ours, theirs]
        print(f"\n-- side by side: {ours.streams} real-time streams x {ours.seconds:g} s, one after the other --")
        print(f"  {'':<40}" + "".join(f"{r.label:>26}" for r in results))
        for name, cell in _VERSUS_ROWS.items():
            print(f"  {name:<40}" + "".join(f"{cell(r):>26}" for r in results))
        if theirs is None:
            print(f"  (no Node column: {node})")
        behind = [r.label for r in results if not _kept_up(r)]
        if behind:
            print(
                f"  {' and '.join(behind)} fell behind (frame delay p99 > {_BEHIND_MS:g} ms): short of CPU, a server's"
                " steady-window CPU is what the machine gave it, not what the load needs, and the ratio misleads"
            )
        targets = _versus_targets(ours, theirs)
        print(f"  tapedeck's targets at {ours.streams} streams:")
        for name, (value, ok) in targets.items():
            verdict = "not measured" if ok is None else _met(ok)
            print(f"    {name:<20} {value:<18} target {_VERSUS_GOALS[name]:<18} {verdict}")
            if ok is not None:
                summary.add(f"{ours.streams} streams: {name}", value, _VERSUS_GOALS[name], ok)
