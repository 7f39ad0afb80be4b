"""Audio lost per reconnect, through the Vonage stand-in on loopback.

    python tests/bench/reconnect_bench.py [--lifetime 2] [--seconds 40] [--live] [--sigterm 20]

The local platform (`nox -s serve`'s app under gunicorn) records a call of `--seconds` of speech
(the 9.4 s fixture, looped), spoken in real time by the stand-in; the recorder closes each socket
after `--lifetime` seconds (STREAM_ROTATE_SECONDS), at a quiet moment when one comes, and the call
reconnects. With `--sigterm S` two instances share the port and the one holding the call is sent
SIGTERM S seconds in (the lifetime is then an hour unless given). `--live` transcribes it live
with pocketsphinx.

For each reconnect it prints the audio lost as the stand-in counts it (the caller's frames spoken
after one socket's last and before the next one's first, as on Vonage: the caller goes on talking)
and as tapedeck measured it (the gap between sessions on the call's timeline, from call.json's
times), then whether each session holds exactly what was sent on its socket, and the stitched
recording's length against the call's. The issue's acceptance run is
`--lifetime 60 --seconds 200 --live`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from shared.core.wav import parse_wav, wav_header  # noqa: E402
from tests.deck import Deck, start_deck  # noqa: E402

NUMBER = "447700900004"
FIXTURE = ROOT / "tests" / "data" / "voicemail_outage.wav"
FRAME = 640


def looped_speech(seconds: float, folder: Path) -> tuple[Path, bytes]:
    """`seconds` of the fixture's speech, looped, as a WAV file; and its samples."""
    pcm = parse_wav(FIXTURE.read_bytes()).pcm
    want = round(seconds * 16000) * 2
    whole = (pcm * (want // len(pcm) + 1))[:want]
    path = folder / "speech.wav"
    path.write_bytes(wav_header(16000, len(whole)) + whole)
    return path, whole


def place(deck: Deck, audio: Path, sigterm: float | None) -> Any:
    if sigterm is None:
        return deck.call(audio)
    reports: list[Any] = []
    caller = threading.Thread(target=lambda: reports.append(deck.call(audio)))
    caller.start()
    (first,) = deck.recording_sessions()
    time.sleep(sigterm)
    deck.stop_instance(first)
    caller.join()
    return reports[0]


def report_call(deck: Deck, report: Any, speech: bytes, call: dict[str, Any], out: Any) -> list[float]:
    sessions = sorted(call["recordings"], key=lambda r: r["started_at"])
    lost = report.lost_seconds()
    gaps = [round(g["end"] - g["start"], 3) for g in call["stitched"]["gaps"]]
    exact = 0
    for session, socket in zip(sessions, report.sockets, strict=True):
        blob = deck.store.read(session["object"])
        pcm = parse_wav(blob.data).pcm if blob else b""
        start = socket.first_frame * FRAME
        exact += pcm == speech[start : start + len(pcm)]
    out.write(f"{len(report.sockets)} sockets, {len(lost)} reconnects; each session exact: {exact}/{len(sessions)}\n")
    out.write("reconnect  closed by  lost (stand-in)  gap (tapedeck)\n")
    for index, (socket, amount, gap) in enumerate(zip(report.sockets, lost, gaps, strict=False), 1):
        reason = f"{socket.closed_by} {socket.close_code}"
        out.write(f"{index:>9}  {reason:<9}  {amount * 1000:>12.0f} ms  {gap * 1000:>11.0f} ms\n")
    if lost:
        out.write(
            f"lost per reconnect: median {statistics.median(lost) * 1000:.0f} ms, "
            f"max {max(lost) * 1000:.0f} ms (tapedeck's gaps: median {statistics.median(gaps) * 1000:.0f} ms, "
            f"max {max(gaps) * 1000:.0f} ms)\n"
        )
    out.write(f"call {len(speech) / 32000:.2f} s, stitched recording {call['stitched']['duration']:.2f} s\n")
    transcript = deck.read_json(f"calls/{report.conversation_uuid}/recording.transcript.json")
    if transcript:
        words = transcript["channels"][0]["words"]
        out.write(f"live transcript: {len(words)} words from {words[0]['start']:.1f} s to {words[-1]['end']:.1f} s\n")
    return list(lost)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--lifetime", type=int, default=None, help="STREAM_ROTATE_SECONDS (default 2, 3540 with --sigterm)"
    )
    parser.add_argument("--seconds", type=float, default=40.0, help="length of the call (default 40)")
    parser.add_argument("--live", action="store_true", help="transcribe live with pocketsphinx")
    parser.add_argument("--sigterm", type=float, default=None, help="stop the call's instance this many seconds in")
    args = parser.parse_args(argv)
    lifetime = args.lifetime or (3540 if args.sigterm is not None else 2)
    env = {"STREAM_ROTATE_SECONDS": str(lifetime)}
    if args.live:
        env |= {"LIVE_TRANSCRIBER": "pocketsphinx", "LIVE_STREAMS_MAX": "4"}
    with tempfile.TemporaryDirectory(prefix="tapedeck-reconnect-") as folder, ExitStack() as stack:
        tmp = Path(folder)
        audio, speech = looped_speech(args.seconds, tmp)
        instances = 2 if args.sigterm is not None else 1
        deck = start_deck(stack, tmp, f'"{NUMBER}":\n  flow: stream\n', NUMBER, env, instances=instances)
        sys.stdout.write(f"lifetime {lifetime} s, call {args.seconds:.0f} s, {instances} instance(s)\n")
        report = place(deck, audio, args.sigterm)
        call = deck.stitched(report.conversation_uuid, timeout=120)
        report_call(deck, report, speech, call, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
