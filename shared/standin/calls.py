"""Simulated inbound calls, run the way the Vonage platform runs them."""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from shared.recording import iso
from shared.signatures import sign_webhook
from shared.standin.api import StandinApi
from shared.standin.audio import FRAME_SECONDS, frame_bytes, frames, load_pcm
from shared.streams import parse_content_type
from shared.wav import parse_wav, wav_header

__all__ = ["CallReport", "DtmfPress", "VonageStandin"]

log = logging.getLogger(__name__)

# A 20 ms frame whose loudest sample is below this counts as silence for endOnSilence.
_SILENCE_PEAK = 300


@dataclass(frozen=True)
class DtmfPress:
    """A keypress sent `at` seconds into the streamed audio."""

    digit: str
    at: float
    duration: int = 260

    @classmethod
    def parse_list(cls, text: str) -> list[DtmfPress]:
        """`"5@1.0,#@2.5"`: digit, then the second of audio it is pressed at."""
        presses = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            digit, _, at = item.partition("@")
            if len(digit) != 1 or digit not in "0123456789*#":
                raise ValueError(f"bad DTMF digit in {item!r}")
            presses.append(cls(digit, float(at or 0)))
        return sorted(presses, key=lambda p: p.at)


@dataclass
class CallReport:
    """What the stand-in did and saw during one call."""

    conversation_uuid: str
    uuid: str
    ncco: list[dict[str, Any]] = field(default_factory=list)
    talks: list[str] = field(default_factory=list)
    bytes_sent: int = 0
    frames_sent: int = 0
    closed_by: str | None = None
    close_code: int | None = None
    event_statuses: dict[str, int] = field(default_factory=dict)
    recording_uuid: str | None = None
    recording_bytes: int = 0
    recording_ended_by: str | None = None
    recording_posted_at: float | None = None


class VonageStandin:
    """Plays Vonage's part against tapedeck's webhooks and recorder."""

    def __init__(
        self,
        signature_secret: str | None = None,
        http: requests.Session | None = None,
        api: StandinApi | None = None,
        api_base: str = "",
        webhook_copies: int = 1,
    ) -> None:
        self.signature_secret = signature_secret
        self.http = http or requests.Session()
        self.api = api
        self.api_base = api_base
        # Vonage retries a webhook it thinks failed; more than one copy simulates that.
        self.webhook_copies = webhook_copies

    def _headers(self, body: bytes) -> dict[str, str]:
        if not self.signature_secret:
            return {}
        token = sign_webhook(body, self.signature_secret, time.time(), str(uuidlib.uuid4()))
        return {"Authorization": f"Bearer {token}"}

    def post_event(self, url: str, payload: dict[str, Any]) -> int:
        """POST one JSON webhook, signed as Vonage signs it; return the HTTP status."""
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", **self._headers(body)}
        response = self.http.post(url, data=body, headers=headers, timeout=10)
        log.info("webhook sent", extra={"url": url, "status": payload.get("status"), "http": response.status_code})
        return response.status_code

    def fetch_ncco(self, answer_url: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """GET the answer URL with the call's fields as Vonage does, and return the NCCO."""
        response = self.http.get(f"{answer_url}?{urlencode(params)}", headers=self._headers(b""), timeout=10)
        response.raise_for_status()
        ncco = response.json()
        if not isinstance(ncco, list):
            raise ValueError(f"answer URL returned {type(ncco).__name__}, not an NCCO list")
        return ncco

    def inbound_call(
        self,
        answer_url: str,
        event_url: str,
        audio: Path,
        from_: str = "447700900123",
        to: str = "447700900000",
        fast: bool = False,
        dtmf: list[DtmfPress] | None = None,
        drop_after: float | None = None,
    ) -> CallReport:
        """Ring tapedeck: events, NCCO, then each action; `drop_after` cuts the network mid-stream."""
        report = CallReport(conversation_uuid=f"CON-{uuidlib.uuid4()}", uuid=str(uuidlib.uuid4()))
        common = {
            "from": from_,
            "to": to,
            "uuid": report.uuid,
            "conversation_uuid": report.conversation_uuid,
            "direction": "inbound",
        }
        started = time.time()
        for status in ("started", "ringing"):
            self._event(report, event_url, {**common, "status": status, "timestamp": iso(time.time())})
        report.ncco = self.fetch_ncco(
            answer_url,
            {k: v for k, v in common.items() if k != "direction"} | {"region_url": "https://api-standin.vonage.com"},
        )
        answered = time.time()
        self._event(
            report, event_url, {**common, "status": "answered", "timestamp": iso(answered), "start_time": iso(answered)}
        )
        for action in report.ncco:
            kind = action.get("action")
            if kind == "talk":
                report.talks.append(str(action.get("text", "")))
                log.info("talk", extra={"text": action.get("text")})
            elif kind == "connect":
                self._connect(report, action, common, audio, fast, dtmf or [], drop_after)
            elif kind == "record":
                self._record(report, action, audio, dtmf or [])
            else:
                log.warning("action not simulated", extra={"action": kind})
        ended = time.time()
        self._event(
            report,
            event_url,
            {
                **common,
                "status": "completed",
                "timestamp": iso(ended),
                "start_time": iso(answered),
                "end_time": iso(ended),
                "duration": str(int(ended - started)),
            },
        )
        return report

    def _event(self, report: CallReport, url: str, payload: dict[str, Any]) -> None:
        status = self.post_event(url, payload)
        report.event_statuses[payload["status"]] = status

    def _record(self, report: CallReport, action: dict[str, Any], audio: Path, dtmf: list[DtmfPress]) -> None:
        """Record the caller's file as Vonage would, then post the recording webhook."""
        if self.api is None:
            raise ValueError("the NCCO records, so the stand-in needs its API to serve the recording")
        source = parse_wav(Path(audio).read_bytes())
        rate = source.sample_rate
        pcm = load_pcm(audio, rate)
        cut, reason = record_length(pcm, rate, action, dtmf)
        started = time.time()
        recording_uuid = str(uuidlib.uuid4())
        data = wav_header(rate, cut) + pcm[:cut]
        self.api.recordings[recording_uuid] = data
        report.recording_uuid, report.recording_bytes, report.recording_ended_by = recording_uuid, len(data), reason
        log.info("recorded", extra={"bytes": len(data), "ended_by": reason})
        payload = {
            "start_time": iso(started),
            "end_time": iso(started + cut / 2 / rate),
            "recording_url": f"{self.api_base}/v1/files/{recording_uuid}",
            "size": len(data),
            "recording_uuid": recording_uuid,
            "conversation_uuid": report.conversation_uuid,
            "timestamp": iso(time.time()),
        }
        report.recording_posted_at = time.time()
        for _ in range(self.webhook_copies):
            report.event_statuses["record"] = self.post_event(action["eventUrl"][0], payload)

    def _connect(
        self,
        report: CallReport,
        action: dict[str, Any],
        common: dict[str, str],
        audio: Path,
        fast: bool,
        dtmf: list[DtmfPress],
        drop_after: float | None,
    ) -> None:
        endpoint = (action.get("endpoint") or [{}])[0]
        if endpoint.get("type") != "websocket":
            log.warning("connect endpoint not simulated", extra={"type": endpoint.get("type")})
            return
        rate = parse_content_type(endpoint.get("content-type"))
        pcm = load_pcm(audio, rate)
        # Vonage sends the content type and each NCCO header as top-level fields of the first message.
        first = {
            "event": "websocket:connected",
            "content-type": endpoint["content-type"],
            **endpoint.get("headers", {}),
        }
        with connect(endpoint["uri"], compression=None, max_size=None, open_timeout=10) as ws:
            ws.send(json.dumps(first))
            dropped = self._stream(report, ws, pcm, rate, fast, dtmf, drop_after)
            if dropped:
                report.closed_by = "network"
                return
            if report.closed_by is None:
                report.closed_by = "caller"
                ws.close()
        if report.closed_by == "recorder" and action.get("eventUrl"):
            self._event(
                report,
                action["eventUrl"][0],
                {**common, "to": endpoint["uri"], "status": "disconnected", "timestamp": iso(time.time())},
            )

    def _stream(
        self,
        report: CallReport,
        ws: ClientConnection,
        pcm: bytes,
        rate: int,
        fast: bool,
        dtmf: list[DtmfPress],
        drop_after: float | None,
    ) -> bool:
        pending = list(dtmf)
        size = frame_bytes(rate)
        start = time.monotonic()
        try:
            for index, frame in enumerate(frames(pcm, size)):
                position = index * FRAME_SECONDS
                while pending and pending[0].at <= position:
                    press = pending.pop(0)
                    ws.send(json.dumps({"event": "websocket:dtmf", "digit": press.digit, "duration": press.duration}))
                if drop_after is not None and position >= drop_after:
                    # Cut the TCP connection with no close frame, as a failing network would.
                    ws.socket.shutdown(socket.SHUT_RDWR)
                    ws.socket.close()
                    return True
                if not fast:
                    delay = start + position - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                ws.send(frame)
                report.frames_sent += 1
                report.bytes_sent += len(frame)
        except ConnectionClosed as err:
            report.closed_by = "recorder"
            report.close_code = err.rcvd.code if err.rcvd else None
        return False


def record_length(pcm: bytes, rate: int, action: dict[str, Any], dtmf: list[DtmfPress]) -> tuple[int, str]:
    """How many bytes a record action keeps, and why it stopped: timeOut, endOnKey, endOnSilence."""
    length, reason = len(pcm), "hangup"
    limit = int(action.get("timeOut", 7200)) * rate * 2
    if limit < length:
        length, reason = limit, "timeOut"
    key = action.get("endOnKey")
    for press in dtmf:
        at = int(press.at * rate) * 2
        if press.digit == key and at < length:
            length, reason = at, "endOnKey"
            break
    silence = action.get("endOnSilence")
    if silence:
        frame = frame_bytes(rate)
        needed = int(float(silence) / FRAME_SECONDS)
        heard, quiet = False, 0
        for start in range(0, length, frame):
            samples = memoryview(pcm[start : start + frame]).cast("h")
            loud = any(abs(v) >= _SILENCE_PEAK for v in samples)
            heard = heard or loud
            quiet = 0 if loud else quiet + 1
            if heard and quiet >= needed:
                return start + frame, "endOnSilence"
    return length, reason
