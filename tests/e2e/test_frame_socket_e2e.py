"""The recorder's frame reader under gunicorn's gevent worker, as app.yaml starts it, against
independent websocket clients: the `websockets` library, Node's `ws` (where Node and npm are
here), and raw bytes for frames no library would send."""

from __future__ import annotations

import json
import shutil
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from wsproto.frame_protocol import FrameProtocol

from shared.adapters.local_blob_store import LocalBlobStore
from shared.core.tokens import mint_stream_token
from shared.core.wav import parse_wav
from tests.servers import free_port, gunicorn_command, running
from tests.testbed import DATA, TOKEN_SECRET

pytestmark = pytest.mark.slow

PCM = parse_wav((DATA / "voicemail_outage.wav").read_bytes()).pcm[:96000]
NODE_CLIENT = Path(__file__).parent / "node_client"


@dataclass
class Recorder:
    url: str
    store: LocalBlobStore
    log: Path

    def recording(self, conversation_uuid: str, timeout: float = 15) -> tuple[dict[str, Any], bytes]:
        """call.json once its one recording is assembled, and the WAV's PCM."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            blob = self.store.read(f"calls/{conversation_uuid}/call.json")
            call = json.loads(blob.data) if blob else None
            if call and call["recordings"] and call["recordings"][0]["state"] not in ("streaming",):
                wav = self.store.read(call["recordings"][0]["object"])
                assert wav is not None
                return call, parse_wav(wav.data).pcm
            time.sleep(0.05)
        raise AssertionError(f"no recording of {conversation_uuid} within {timeout} s")


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorder]:
    folder = tmp_path_factory.mktemp("frame-socket")
    port = free_port()
    env = {"STORAGE": "local", "LOCAL_STORAGE_DIR": str(folder / "data"), "STREAM_TOKEN_SECRET": TOKEN_SECRET}
    with running(
        gunicorn_command("appengine.main:production_app()", port),
        env,
        f"http://127.0.0.1:{port}/healthz",
        folder / "recorder.log",
    ):
        yield Recorder(f"ws://127.0.0.1:{port}/socket", LocalBlobStore(folder / "data"), folder / "recorder.log")


def first_message(conversation_uuid: str) -> str:
    return json.dumps(
        {
            "event": "websocket:connected",
            "content-type": "audio/l16;rate=16000",
            "conversation_uuid": conversation_uuid,
            "uuid": "leg-1",
            "from": "447700900123",
            "to": "447700900000",
            "token": mint_stream_token(TOKEN_SECRET, conversation_uuid, time.time(), 60),
        }
    )


@pytest.mark.parametrize("compression", [None, "deflate"], ids=["plain", "deflate-offered"])
def test_the_websockets_library_fragments_pings_and_closes_and_every_byte_is_kept(
    recorder: Recorder, compression: str | None
) -> None:
    conversation_uuid = f"CON-{uuid.uuid4()}"
    frames = [PCM[i : i + 640] for i in range(0, len(PCM), 640)]
    # permessage-deflate is offered by default; the recorder agrees to no extension.
    with connect(recorder.url, compression=compression, open_timeout=5, close_timeout=5) as ws:
        assert ws.response is not None and "Sec-WebSocket-Extensions" not in ws.response.headers
        ws.send(first_message(conversation_uuid))
        for index, frame in enumerate(frames):
            if index % 7 == 3:
                ws.send(iter([frame[:200], frame[200:201], frame[201:]]))  # one message in fragments
            else:
                ws.send(frame)
            if index % 40 == 0:
                assert ws.ping(b"are you there").wait(5), "no pong"
            if index == 60:
                ws.send(json.dumps({"event": "websocket:dtmf", "digit": "9", "duration": 100}))
        ws.close(1000, "caller hung up")
        assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000
    call, pcm = recorder.recording(conversation_uuid)
    assert pcm == PCM
    assert [d["digit"] for d in call["dtmf"]] == ["9"]
    assert call["recordings"][0]["end_reason"] == "hangup"


@pytest.mark.skipif(not shutil.which("node"), reason="Node is not installed here")
def test_nodes_ws_fragments_with_pings_between_and_a_close_code_and_every_byte_is_kept(
    recorder: Recorder, tmp_path: Path
) -> None:
    if not (NODE_CLIENT / "node_modules" / "ws").exists():
        pytest.skip("ws is not installed: npm ci --prefix tests/e2e/node_client (nox -s tests does it)")
    conversation_uuid = f"CON-{uuid.uuid4()}"
    raw = tmp_path / "audio.raw"
    raw.write_bytes(PCM)
    finished = subprocess.run(
        ["node", str(NODE_CLIENT / "client.mjs"), recorder.url, first_message(conversation_uuid), str(raw)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    report = json.loads(finished.stdout)
    assert report["pings"] == len(PCM) // 640 // 5 and report["pongs"] == report["pings"]
    assert report["closeCode"] == 4000
    call, pcm = recorder.recording(conversation_uuid)
    assert pcm == PCM
    assert [d["digit"] for d in call["dtmf"]] == ["4"]


class RawClient:
    """A websocket client written by hand, for frames no library sends."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("ws://").split("/")[0].split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.sock.sendall(
            f"GET /socket HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.received = b""
        while b"\r\n\r\n" not in self.received:
            self.received += self.sock.recv(4096)
        status, _, self.received = self.received.partition(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 101"), status
        self.frames = FrameProtocol(client=True, extensions=[])

    def send(self, data: bytes | bytearray) -> None:
        self.sock.sendall(data)

    def close_code(self) -> int:
        """The code of the close frame the recorder sends, after any other frames."""
        while True:
            while len(self.received) < 2:
                chunk = self.sock.recv(4096)
                assert chunk, "the recorder dropped the connection without a close frame"
                self.received += chunk
            size = self.received[1] & 0x7F
            if len(self.received) < 2 + size:
                self.received += self.sock.recv(4096)
                continue
            opcode, payload = self.received[0] & 0x0F, self.received[2 : 2 + size]
            self.received = self.received[2 + size :]
            if opcode == 0x8:
                return int(struct.unpack(">H", payload[:2])[0])


def masked(first: int, payload: bytes) -> bytes:
    mask = b"\x11\x22\x33\x44"
    return bytes([first, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (b"\x82\x04abcd", 1002),  # a client frame without a mask
        (masked(0x81, b"caf\xc3"), 1007),  # text that is not UTF-8
        (masked(0xC2, b"zz"), 1002),  # a compressed frame, though no extension was agreed
        (masked(0x80, b"zz"), 1002),  # a continuation with no message begun
    ],
)
def test_a_bad_frame_closes_with_its_code_and_the_audio_before_it_is_kept(
    recorder: Recorder, bad: bytes, code: int
) -> None:
    conversation_uuid = f"CON-{uuid.uuid4()}"
    client = RawClient(recorder.url)
    client.send(client.frames.send_data(first_message(conversation_uuid)))
    audio = PCM[:32000]
    for offset in range(0, len(audio), 640):
        client.send(client.frames.send_data(audio[offset : offset + 640]))
    client.send(client.frames.ping(b"still there?"))
    client.send(bad + client.frames.send_data(b"\x07" * 640))
    assert client.close_code() == code
    _, pcm = recorder.recording(conversation_uuid)
    assert pcm == audio


def test_a_caller_whose_network_stops_mid_frame_keeps_every_whole_frame(recorder: Recorder) -> None:
    conversation_uuid = f"CON-{uuid.uuid4()}"
    client = RawClient(recorder.url)
    client.send(client.frames.send_data(first_message(conversation_uuid)))
    audio = PCM[:6400]
    wire = b"".join(client.frames.send_data(audio[i : i + 640]) for i in range(0, len(audio), 640))
    client.send(wire + bytes(client.frames.send_data(b"\x09" * 640))[:300])
    client.sock.close()
    _, pcm = recorder.recording(conversation_uuid)
    assert pcm == audio


def test_a_caller_that_goes_quiet_gets_no_answer_until_it_speaks(recorder: Recorder) -> None:
    conversation_uuid = f"CON-{uuid.uuid4()}"
    with connect(recorder.url, compression=None, open_timeout=5, close_timeout=5) as ws:
        ws.send(first_message(conversation_uuid))
        ws.send(PCM[:640])
        time.sleep(2.5)  # longer than the recorder's poll: a quiet socket is not a closed one
        ws.send(PCM[640:1280])
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.5)
        ws.close(1000)
    _, pcm = recorder.recording(conversation_uuid)
    assert pcm == PCM[:1280]


def test_a_close_from_the_caller_is_answered_and_logs_no_error(recorder: Recorder) -> None:
    conversation_uuid = f"CON-{uuid.uuid4()}"
    with connect(recorder.url, compression=None, open_timeout=5, close_timeout=5) as ws:
        ws.send(first_message(conversation_uuid))
        ws.send(PCM[:640])
        ws.close(4000, "bye")
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=2)
        assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 4000
    _, pcm = recorder.recording(conversation_uuid)
    assert pcm == PCM[:640]
    log = recorder.log.read_text()
    assert "Traceback" not in log and '"severity": "ERROR"' not in log
