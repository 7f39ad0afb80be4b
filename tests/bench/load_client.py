"""The bench's load: Vonage-like 16 kHz websocket streams from one asyncio process.

Run by recorder_bench.py as `python -m tests.bench.load_client ...`; writes one JSON result file.
Stream `g` of `total` starts at `start_at + g * stagger / total`; this process runs every `stride`-th
stream from `first`. Paced frames are due at `stream start + i * 20 ms` (no drift); `--fast` sends
back to back. Every stream stops sending at `--deadline`, so a run always ends.

With `--speech f.wav --speech-streams K`, streams 0..K-1 (the first to start) send that 16 kHz
recording, looped, as plain frames to `--speech-url` (the recorder's own `/socket`): a stamp
would corrupt the speech, so their timing is the server's stall monitor's. The others send
stamped silence to `--url` as before.

With `--ping-every N`, every N-th stream (0, N, 2N, ...) also sends a websocket ping every
`--ping-seconds` and waits for its pong, beside its frames.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
import wave
from dataclasses import asdict, dataclass
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

from shared.core.tokens import mint_stream_token
from tests.bench.timing import FRAME_BYTES, FRAME_SECONDS, STAMP, DelayHistogram

_PAD = bytes(FRAME_BYTES - STAMP.size)
_TOKEN_TTL = 3600


@dataclass
class CallResult:
    conversation_uuid: str
    bytes_sent: int = 0
    frames_sent: int = 0
    connected: bool = False
    completed: bool = False
    error: str | None = None
    speech: bool = False
    pings: int = 0
    pongs: int = 0


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--total", type=int, required=True, help="streams across every client process")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--start-at", type=float, required=True, help="time.time() of the first stream")
    parser.add_argument("--stagger", type=float, default=2.0)
    parser.add_argument("--frames", type=int, required=True, help="frames per stream")
    parser.add_argument("--fast", action="store_true", help="send frames back to back, unpaced")
    parser.add_argument("--deadline", type=float, required=True, help="time.time() when every stream stops")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--speech", type=Path, help="16 kHz mono 16-bit WAV the first streams send, looped")
    parser.add_argument("--speech-streams", type=int, default=0, help="how many streams send --speech")
    parser.add_argument("--speech-url", help="where the speech streams connect (default --url)")
    parser.add_argument("--ping-every", type=int, default=0, help="every N-th stream pings (default none)")
    parser.add_argument("--ping-seconds", type=float, default=2.0, help="seconds between a stream's pings")
    return parser.parse_args(argv)


def _speech_frames(path: Path) -> list[bytes]:
    """The recording as whole 20 ms frames (a short last frame is dropped)."""
    with wave.open(str(path), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (16000, 1, 2):
            raise SystemExit(f"{path} is not 16 kHz mono 16-bit")
        pcm = wav.readframes(wav.getnframes())
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)]


def _hello(conversation_uuid: str, secret: str) -> str:
    # Vonage sends one JSON text frame with the call's metadata before any audio.
    return json.dumps(
        {
            "event": "websocket:connected",
            "content-type": "audio/l16;rate=16000",
            "conversation_uuid": conversation_uuid,
            "uuid": str(uuid.uuid4()),
            "from": "447700900123",
            "to": "447700900000",
            "token": mint_stream_token(secret, conversation_uuid, time.time(), _TOKEN_TTL),
        }
    )


async def _send_frames(
    ws: ClientConnection, call: CallResult, args: argparse.Namespace, lag: DelayHistogram, speech: list[bytes] | None
) -> None:
    first_due = time.time()
    for index in range(args.frames):
        now = time.time()
        if now >= args.deadline:
            call.error = "deadline reached before the last frame"
            return
        due = now if args.fast else first_due + index * FRAME_SECONDS
        if due > now:
            await asyncio.sleep(due - now)
        sent = time.time()
        lag.add(sent - due)
        # Stamped with the moment it leaves this client, so that the server's delay is its own and
        # the network's: a client late to send (it shares the machine's cores) shows in its lag.
        await ws.send(speech[index % len(speech)] if speech else STAMP.pack(sent) + _PAD)
        call.frames_sent += 1
        call.bytes_sent += FRAME_BYTES


async def _ping(ws: ClientConnection, call: CallResult, seconds: float) -> None:
    """Ping every `seconds` and wait for each pong, until cancelled."""
    while True:
        await asyncio.sleep(seconds)
        call.pings += 1
        await (await ws.ping())
        call.pongs += 1


async def _stream(number: int, args: argparse.Namespace, lag: DelayHistogram, speech: list[bytes]) -> CallResult:
    call = CallResult(f"CON-bench-{uuid.uuid4()}")
    spoken = speech if number < args.speech_streams else None
    url = (args.speech_url or args.url) if spoken else args.url
    call.speech = spoken is not None
    await asyncio.sleep(max(0.0, args.start_at + number * args.stagger / args.total - time.time()))
    try:
        async with connect(
            url, compression=None, open_timeout=30, ping_interval=None, close_timeout=30, max_size=None
        ) as ws:
            call.connected = True
            await ws.send(_hello(call.conversation_uuid, args.secret))
            pinging = args.ping_every and number % args.ping_every == 0
            pinger = asyncio.create_task(_ping(ws, call, args.ping_seconds)) if pinging else None
            try:
                await _send_frames(ws, call, args, lag, spoken)
            finally:
                if pinger:
                    pinger.cancel()
                    await asyncio.gather(pinger, return_exceptions=True)
        call.completed = call.error is None
    except Exception as err:  # any failure of one stream is a result to report, not a crash of the load
        call.error = f"{type(err).__name__}: {err}"
    return call


async def _run(args: argparse.Namespace) -> dict[str, object]:
    lag = DelayHistogram()
    speech = _speech_frames(args.speech) if args.speech and args.speech_streams else []
    numbers = range(args.first, args.total, args.stride)
    calls = await asyncio.gather(*(_stream(n, args, lag, speech) for n in numbers))
    return {"calls": [asdict(c) for c in calls], "send_lag": lag.to_dict()}


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    result = asyncio.run(_run(args))
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
