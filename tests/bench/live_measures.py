"""What live transcription costs: K streams of speech, each decoded by its own pocketsphinx child."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.bench.harness import BenchError, Clients, Server, log_problems, process_cpu, recorder, stored_bytes
from tests.bench.measures import Pace, paced_streams, wait_stored, warm_up

__all__ = ["SPEECH", "LiveCost", "live_cost", "live_env"]

SPEECH = Path(__file__).resolve().parents[1] / "data" / "voicemail_outage.wav"
# A decoder loads its model (about a second of CPU) when its stream opens: the window starts after.
_DECODER_START = 3.0


def live_env(limit: int | None = None, nice: int | None = None) -> dict[str, str]:
    """The recorder's settings for live pocketsphinx; `nice` overrides the decoders' niceness."""
    env = {"LIVE_TRANSCRIBER": "pocketsphinx"}
    if limit is not None:
        env["LIVE_STREAMS_MAX"] = str(limit)
    if nice is not None:
        env["BENCH_DECODER_NICE"] = str(nice)
    return env


@dataclass
class _Sample:
    """CPU seconds of each decoder and of the recorder's own processes, at one moment."""

    at: float = 0.0
    decoders: dict[int, float] = field(default_factory=dict)
    recorder: float = 0.0


def _sample(server: Server) -> _Sample:
    sample = _Sample(at=time.monotonic(), recorder=sum(process_cpu(p) for p in server.recorder_processes()))
    for decoder in server.decoders():
        try:
            sample.decoders[decoder.pid] = process_cpu(decoder)
        except psutil.NoSuchProcess:
            continue
    return sample


@dataclass
class LiveCost:
    """K live streams of speech over the steady window, when every decoder is running."""

    streams: int
    seconds: float
    window: float
    decoders_seen: int
    decoder_cpu: float
    recorder_cpu: float
    decoder_rss: int
    recorder_growth: int
    completed: int
    bytes_lost: int
    gaps: int
    gap_seconds: float
    words: int
    problems: int
    settled: bool

    @property
    def rtf(self) -> float:
        """Decoder CPU seconds per second of audio."""
        return self.decoder_cpu / (self.streams * self.window)

    @property
    def cpu_per_stream(self) -> float:
        """Fraction of one core per stream: its decoder and its share of the recorder's extra work."""
        return (self.decoder_cpu + self.recorder_cpu) / (self.streams * self.window)

    @property
    def memory_per_stream(self) -> float:
        """Bytes per stream: its decoder's RSS and its share of the recorder's growth."""
        return (self.decoder_rss + self.recorder_growth) / self.streams


def _transcripts(storage: Path, calls: list[dict[str, Any]]) -> tuple[int, float, int]:
    """Gaps (count and seconds) in the calls' live.jsonl, and final words heard."""
    gaps, gap_seconds, words = 0, 0.0, 0
    for call in calls:
        path = storage / "calls" / call["conversation_uuid"] / "live.jsonl"
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            segment = json.loads(line)
            if segment.get("gap"):
                gaps += 1
                gap_seconds += float(segment["end"]) - float(segment["start"])
            words += len(segment.get("words", ()))
    return gaps, gap_seconds, words


def live_cost(streams: int, seconds: float, folder: Path) -> LiveCost:
    """`streams` real-time streams of speech with LIVE_STREAMS_MAX = `streams`, each `seconds` long."""
    if seconds <= _DECODER_START + 2.5:
        raise BenchError(f"live streams must be longer than {_DECODER_START + 2.5:g} s")
    with recorder("gevent", 1, streams + 100, folder, live_env(limit=streams)) as server:
        warm_up(server, folder)
        rss_base = server.rss()
        pace = Pace.from_now(0.5, 2 * seconds + 30)
        first, last = _Sample(), _Sample()
        rss: list[int] = []

        def begin() -> None:
            nonlocal first
            first = _sample(server)

        def middle() -> None:
            rss[:] = [sum(p.memory_info().rss for p in server.decoders()), server.rss()]

        def end() -> None:
            nonlocal last
            last = _sample(server)

        # The first stream stops sending at start_at + seconds; the window ends a second before.
        window = (pace.start_at + pace.stagger + _DECODER_START, pace.start_at + seconds - 1.0)
        marks = [(window[0], begin), (sum(window) / 2, middle), (window[1], end)]
        clients = Clients(folder, 1)
        paced_streams(server, clients, streams, seconds, pace, every=0.1, marks=marks, speech=(SPEECH, streams))
        calls, _ = clients.results()
        if not (first.at and last.at and rss):
            raise BenchError("the live streams ended before the steady window did")
        # Every call's WAV whole, and no decoder left.
        settled = wait_stored(server, calls, lambda: not server.decoders())
        # The recorder's RSS (without the decoders, which server.rss() also counts) above its baseline.
        growth = rss[1] - rss[0] - rss_base
        gaps, gap_seconds, words = _transcripts(server.storage, calls)
        kept = set(first.decoders) & set(last.decoders)
        audit = [(c, stored_bytes(server.storage, c["conversation_uuid"])[0] or 0) for c in calls]
        return LiveCost(
            streams=streams,
            seconds=seconds,
            window=last.at - first.at,
            decoders_seen=len(kept),
            decoder_cpu=sum(last.decoders[pid] - first.decoders[pid] for pid in kept),
            recorder_cpu=last.recorder - first.recorder,
            decoder_rss=rss[0],
            recorder_growth=growth,
            completed=sum(bool(c["completed"]) and wav == c["bytes_sent"] for c, wav in audit),
            bytes_lost=sum(max(0, c["bytes_sent"] - wav) for c, wav in audit),
            gaps=gaps,
            gap_seconds=gap_seconds,
            words=words,
            problems=sum(log_problems(server.log).values()),
            settled=settled,
        )
