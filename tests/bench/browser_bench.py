"""Time to first byte of the recordings browser's pages, on a local folder with many stored calls.

    python tests/bench/browser_bench.py [--calls 10000 100000] [--requests 40]

For each size, the store is filled with that many calls' summaries (written straight to the
folder, spread over 30 days; building them is not what is measured), then the browser runs under
gunicorn (`appengine.browser:create_app()`, as App Engine serves it, on loopback) and each page is
fetched `--requests` times: p50 and p99 of the time to the response's first byte. Last, one call
with a 30-minute recording and 400 transcript turns: its page, its peaks (the first request
computes and stores them; the rest read them) and a range of its audio.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from shared.core.call_index import CallSummary, index_key  # noqa: E402
from shared.core.wav import wav_header  # noqa: E402
from shared.flows.calls import iso  # noqa: E402
from tests.servers import free_port, gunicorn_command, running  # noqa: E402

START = 1796029200.0  # 2026-11-30 09:00 UTC
DAYS = 30
RARE = "447700999999"


def _fill(folder: Path, calls: int) -> str:
    """`calls` summaries over DAYS days, newest at START; one in 5000 from RARE saying "escalation"."""
    index = folder / "index"
    spacing = DAYS * 86400 / calls
    middle = ""
    for n in range(calls):
        created = iso(START - n * spacing)
        conversation_uuid = f"CON-{n:08d}"
        rare = n % 5000 == 4999
        summary = CallSummary(
            conversation_uuid,
            created,
            RARE if rare else f"4477009{n % 100000:05d}",
            "447700900000",
            ("stream", "voicemail", "conversation")[n % 3],
            "completed",
            float(30 + n % 300),
            "Caller: the escalation desk please" if rare else "Caller: hello I would like to check my order",
        )
        path = folder / index_key(created, conversation_uuid)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary.to_json()))
        if n == calls // 2:
            middle = index_key(created, conversation_uuid)
    del index
    return middle


def _long_call(folder: Path, minutes: int = 30, rate: int = 16000) -> str:
    conversation_uuid = "CON-long"
    call = folder / "calls" / conversation_uuid
    call.mkdir(parents=True, exist_ok=True)
    seconds = minutes * 60
    samples = (bytes(range(256)) * (rate * 2 // 256 + 1))[: rate * 2]
    with open(call / "audio.wav", "wb") as out:
        out.write(wav_header(rate, seconds * rate * 2))
        for _ in range(seconds):
            out.write(samples)
    turns = [
        {"channel": 0, "label": "Caller", "start": t * 4.5, "end": t * 4.5 + 4, "text": "words of this turn " * 4}
        for t in range(400)
    ]
    (call / "transcript.json").write_text(json.dumps({"status": "completed", "turns": turns}))
    record = {
        "conversation_uuid": conversation_uuid,
        "uuids": [],
        "from": "447700900123",
        "to": "447700900000",
        "flow": "stream",
        "direction": "inbound",
        "status": "completed",
        "events": [],
        "recordings": [
            {
                "session": "a1b2c3d4e5f6",
                "object": f"calls/{conversation_uuid}/audio.wav",
                "state": "complete",
                "sample_rate": rate,
                "bytes": seconds * rate * 2,
                "duration": float(seconds),
                "started_at": iso(START),
                "ended_at": iso(START + seconds),
                "end_reason": "hangup",
            }
        ],
        "dtmf": [{"digit": "1", "duration": 200, "at": 61.0, "session": "a1b2c3d4e5f6"}],
        "created_at": iso(START),
    }
    (call / "call.json").write_text(json.dumps(record))
    return conversation_uuid


@contextmanager
def _browser(folder: Path) -> Iterator[int]:
    port = free_port()
    env = {"LOCAL_STORAGE_DIR": str(folder), "STREAM_TOKEN_SECRET": "bench-secret", "LOG_LEVEL": "WARNING"}
    command = gunicorn_command("appengine.browser:create_app()", port, worker="gthread")
    with running(command, env, f"http://127.0.0.1:{port}/healthz", folder.parent / f"browser-{port}.log"):
        yield port


def _ttfb(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[float, int]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    start = time.perf_counter()
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    response.read(1)
    first = time.perf_counter() - start
    response.read()
    connection.close()
    return first, response.status


def _measure(port: int, name: str, path: str, requests: int, headers: dict[str, str] | None = None) -> None:
    times = []
    status = 0
    for _ in range(requests):
        elapsed, status = _ttfb(port, path, headers)
        times.append(elapsed * 1000)
    times.sort()
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    median = statistics.median(times)
    print(f"  {name:<46} p50 {median:7.1f} ms   p99 {p99:7.1f} ms   (HTTP {status}, {requests} requests)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="tapedeck-browser-bench-"))
    try:
        for calls in args.calls:
            folder = base / f"store-{calls}"
            started = time.perf_counter()
            middle = _fill(folder, calls)
            print(f"{calls} calls over {DAYS} days (stored in {time.perf_counter() - started:.0f} s):", flush=True)
            with _browser(folder) as port:
                _ttfb(port, "/")  # the first request loads the templates
                _measure(port, "newest page (50 calls)", "/", args.requests)
                _measure(port, "a page halfway down the list", "/?" + urlencode({"after": middle}), args.requests)
                _measure(port, "one day (date range)", "/?since=2026-11-15&until=2026-11-15", args.requests)
                _measure(port, "flow=voicemail (reads summaries)", "/?flow=voicemail", args.requests)
                _measure(port, f"number={RARE} (rare; at most 2000 read)", f"/?number={RARE}", args.requests)
                _measure(port, "text=escalation (rare; at most 2000 read)", "/?text=escalation", args.requests)
        folder = base / "long"
        conversation_uuid = _long_call(folder)
        print("one call with a 30-minute recording (16 kHz, 57.6 MB) and 400 turns:", flush=True)
        with _browser(folder) as port:
            first, _ = _ttfb(port, f"/calls/{conversation_uuid}/peaks/audio.wav")
            print(f"  {'peaks, first request (computed and stored)':<44} {first * 1000:7.1f} ms")
            _measure(port, "peaks, stored", f"/calls/{conversation_uuid}/peaks/audio.wav", args.requests)
            _measure(port, "the call's page", f"/calls/{conversation_uuid}", args.requests)
            _measure(
                port,
                "audio, a 64 KiB range in the middle",
                f"/calls/{conversation_uuid}/audio/audio.wav",
                max(5, args.requests // 4),
                {"Range": "bytes=28800000-28865535"},
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
