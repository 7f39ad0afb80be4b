"""Simulated inbound calls, run the way the Vonage platform runs them."""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
import uuid as uuidlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect

from shared.core.wav import parse_wav, wav_header
from shared.flows.calls import iso
from shared.flows.streams import parse_content_type
from tools.standin.api import StandinApi
from tools.standin.audio import FRAME_SECONDS, frame_bytes, load_pcm
from tools.standin.dtmf import DtmfPress, with_tones
from tools.standin.recordings import (
    RECORDING_RATE,
    encode_recording,
    lay_out_channels,
    record_length,
    recording_layout,
    records_in_background,
)
from tools.standin.transcription import transcription_webhook, vonage_transcript_file, words_heard
from tools.standin.webhooks import WebhookSigning, send_webhook

__all__ = ["CallReport", "DtmfPress", "SocketReport", "VonageStandin"]

log = logging.getLogger(__name__)


@dataclass
class SocketReport:
    """One websocket the call was connected to: its leg header, the first frame of the caller's
    audio it carried, how many it sent, and how it ended."""

    leg: str | None
    opened_at: float
    first_frame: int = 0
    frames_sent: int = 0
    closed_by: str | None = None
    close_code: int | None = None
    closed_at: float | None = None


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
    recording_webhook: dict[str, Any] | None = None  # the recording webhook's body, as posted
    transcription_webhook: dict[str, Any] | None = None  # Vonage's transcription webhook's, when asked for
    recording_channels: int = 0
    recording_format: str | None = None
    parties: list[str] = field(default_factory=list)
    party_statuses: dict[str, str] = field(default_factory=dict)
    # What tapedeck sent back over the websocket (a live voicemail's beep), and when it began,
    # in seconds after the socket's first message.
    heard: bytes = b""
    heard_at: float | None = None
    # Set when the websocket could not be reached and the connect's eventUrl answered instead.
    fallback: list[dict[str, Any]] | None = None
    # When the websocket closed (epoch seconds), whichever side closed it, and its sample rate.
    socket_closed_at: float | None = None
    stream_rate: int | None = None
    # Every NCCO tapedeck answered with: the answer's, then each that replaced the rest of one.
    nccos: list[list[dict[str, Any]]] = field(default_factory=list)
    # Each websocket the call was connected to, in order (one more per reconnect).
    sockets: list[SocketReport] = field(default_factory=list)
    # Each event posted to a websocket connect's eventUrl, and the HTTP status it got.
    connect_events: list[tuple[str, int]] = field(default_factory=list)

    def lost_seconds(self) -> list[float]:
        """The caller's audio lost at each reconnect: spoken after one socket's last frame and
        before the next socket's first."""
        return [
            round((later.first_frame - (earlier.first_frame + earlier.frames_sent)) * FRAME_SECONDS, 3)
            for earlier, later in zip(self.sockets, self.sockets[1:], strict=False)
        ]


@dataclass
class _Leg:
    """A party reached through a phone connect, on the call until hang-up."""

    event_url: str
    fields: dict[str, str]
    audio: Path
    answered: float


@dataclass
class _Conversation:
    """Who is on the call and what records it in the background; time 0 is when the first joined."""

    legs: list[_Leg] = field(default_factory=list)
    record: dict[str, Any] | None = None
    record_started: float = 0.0
    began: float | None = None

    def join(self, at: float) -> None:
        if self.began is None:
            self.began = at


@dataclass(frozen=True)
class _Caller:
    """What the caller does: the file they say, paced or not, the keys they press, a network drop."""

    audio: Path
    fast: bool = False
    dtmf: tuple[DtmfPress, ...] = ()
    drop_after: float | None = None
    # The websocket cannot be reached, as when the recorder is down.
    websocket_fails: bool = False


@dataclass
class _Voice:
    """Where the caller is in what they say, across the sockets of one call: they go on talking
    while the call reconnects, and what they say meanwhile is lost, as on Vonage."""

    fast: bool
    keys: list[DtmfPress]
    # When frame 0 was due (monotonic), the next frame to send, and when the last socket closed.
    began: float | None = None
    position: int = 0
    last_close: float | None = None

    def resume(self) -> int:
        """The frame the caller is at now, as a socket opens: paced, where real time has got to;
        unpaced, as far past the last frame sent as the time spent without a socket."""
        now = time.monotonic()
        if self.began is None:
            self.began = now
        elif not self.fast:
            self.position = max(self.position, math.ceil((now - self.began) / FRAME_SECONDS - 1e-6))
        elif self.last_close is not None:
            self.position += round((now - self.last_close) / FRAME_SECONDS)
        # A key pressed while no socket listened reaches no one.
        self.keys = [key for key in self.keys if key.at >= self.position * FRAME_SECONDS]
        return self.position


@dataclass
class _Call:
    """One inbound call under way: its report, where its events go, and the fields each event carries."""

    report: CallReport
    event_url: str
    common: dict[str, Any]
    caller: _Caller
    parties: Iterator[Path]
    started: float
    answered: float = 0.0
    conversation: _Conversation = field(default_factory=_Conversation)
    voice: _Voice | None = None
    pcm: dict[int, bytes] = field(default_factory=dict)

    def audio(self, rate: int) -> bytes:
        """What the caller says, at `rate`, loaded once per call."""
        if rate not in self.pcm:
            self.pcm[rate] = with_tones(load_pcm(self.caller.audio, rate), rate, self.caller.dtmf)
        return self.pcm[rate]


@dataclass(frozen=True)
class _Recording:
    """A finished recording before it is served: its bytes, when it started, how long and why it ended."""

    data: bytes
    started: float
    seconds: float
    ended_by: str
    channels: int
    media: str


class VonageStandin:
    """Plays Vonage's part against tapedeck's webhooks and recorder."""

    def __init__(
        self,
        signature_secret: str | None = None,
        http: requests.Session | None = None,
        api: StandinApi | None = None,
        api_base: str = "",
        webhook_copies: int = 1,
        signing: WebhookSigning | None = None,
        transcript: bytes | None = None,
    ) -> None:
        self.signing = signing or WebhookSigning(signature_secret)
        # The transcript file served for a record action's `transcription`; None: the words the
        # offline engine hears in the recording.
        self.transcript = transcript
        self.http = http or requests.Session()
        self.api = api
        self.api_base = api_base
        # Vonage retries a webhook it thinks failed; more than one copy simulates that.
        self.webhook_copies = webhook_copies

    def post_event(self, url: str, payload: dict[str, Any]) -> int:
        """POST one JSON webhook, signed as Vonage signs it; return the HTTP status."""
        return send_webhook(self.http, url, payload, self.signing).status_code

    def fetch_ncco(self, answer_url: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """GET the answer URL with the call's fields as Vonage does, and return the NCCO."""
        response = send_webhook(self.http, answer_url, params, self.signing, method="GET")
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
        *,
        from_: str = "447700900123",
        to: str = "447700900000",
        fast: bool = False,
        dtmf: list[DtmfPress] | None = None,
        drop_after: float | None = None,
        other_parties: Sequence[Path] | None = None,
        websocket_fails: bool = False,
    ) -> CallReport:
        """Ring tapedeck: events, NCCO, then each action; `drop_after` cuts the network mid-stream.

        `other_parties` are what the people reached through phone connects say, in connect order;
        a phone connect with no file left goes unanswered.
        """
        caller = _Caller(audio, fast, tuple(dtmf or ()), drop_after, websocket_fails)
        call = self._ring(event_url, from_, to, caller, other_parties or [])
        call.report.ncco = self.fetch_ncco(answer_url, _answer_query(from_, to, call.report))
        call.report.nccos.append(call.report.ncco)
        self._answer(call)
        actions = list(call.report.ncco)
        while actions:
            # A synchronous connect's eventUrl may answer with an NCCO that replaces the rest, and
            # a caller who hangs up ends the call: nothing is left to run.
            replacement = self._run_action(call, actions[0])
            actions = actions[1:] if replacement is None else replacement
        self._complete(call, self._hang_up(call.report, call.conversation, audio))
        return call.report

    def _ring(self, event_url: str, from_: str, to: str, caller: _Caller, parties: Sequence[Path]) -> _Call:
        """A new call, `started` then `ringing`."""
        report = CallReport(conversation_uuid=f"CON-{uuidlib.uuid4()}", uuid=str(uuidlib.uuid4()))
        # Fields in the order of the live captures: events open with the (empty) SIP headers.
        common: dict[str, Any] = {
            "headers": {},
            "from": from_,
            "to": to,
            "uuid": report.uuid,
            "conversation_uuid": report.conversation_uuid,
            "direction": "inbound",
        }
        call = _Call(report, event_url, common, caller, iter(parties), started=time.time())
        for status in ("started", "ringing"):
            self._event(report, event_url, {**common, "status": status, "timestamp": iso(time.time())})
        return call

    def _answer(self, call: _Call) -> None:
        """The call is answered, then its leg moves into the conversation."""
        call.answered = time.time()
        answer = {"status": "answered", "timestamp": iso(call.answered), "start_time": iso(call.answered)}
        # A live capture's inbound `answered` has `rate` and `network` present but null.
        self._event(call.report, call.event_url, {**call.common, **answer, "rate": None, "network": None})
        self._transfer(call.report, call.event_url)

    def _run_action(self, call: _Call, action: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Play one NCCO action as the platform would; what replaces the rest of the NCCO, if anything."""
        report, caller, kind = call.report, call.caller, action.get("action")
        if kind == "talk":
            report.talks.append(str(action.get("text", "")))
            log.info("talk", extra={"text": action.get("text")})
        elif kind == "connect" and _endpoint(action).get("type") == "phone":
            self._dial(report, action, call.common, call.event_url, next(call.parties, None), call.conversation)
        elif kind == "connect":
            return self._connect(call, action)
        elif kind == "record" and not records_in_background(action):
            self._record(report, action, caller.audio, list(caller.dtmf))
        elif kind == "record":
            self._record_in_background(call.conversation, action)
        else:
            log.warning("action not simulated", extra={"action": kind})
        return None

    def _record_in_background(self, conversation: _Conversation, action: dict[str, Any]) -> None:
        self._recordings()  # fail before the call goes on, not at hang-up
        if conversation.record is not None:
            log.warning("second background recording not simulated")
            return
        conversation.record, conversation.record_started = action, time.time()
        conversation.join(conversation.record_started)

    def _complete(self, call: _Call, ended: float) -> None:
        """The caller's leg completes, with what the call cost."""
        payload = {
            **_completed(call.common, started=call.started, answered=call.answered, ended=ended),
            **_charges(ended - call.answered),
        }
        self._event(call.report, call.event_url, payload)

    def _event(self, report: CallReport, url: str, payload: dict[str, Any], leg: str = "") -> None:
        status = self.post_event(url, payload)
        report.event_statuses[f"{leg} {payload.get('status') or payload['type']}".lstrip()] = status

    def _transfer(self, report: CallReport, event_url: str) -> None:
        """The event a live inbound call gets once answered: the leg moves into the call's conversation.

        It has no `status` and no `conversation_uuid` (captured from the live platform).
        """
        payload = {
            "conversation_uuid_from": f"CON-{uuidlib.uuid4()}",
            "type": "transfer",
            "uuid": report.uuid,
            "conversation_uuid_to": report.conversation_uuid,
            "timestamp": iso(time.time()),
        }
        self._event(report, event_url, payload)

    def _recordings(self) -> dict[str, bytes]:
        if self.api is None:
            raise ValueError("the NCCO records, so the stand-in needs its API to serve the recording")
        return self.api.recordings

    def _record(self, report: CallReport, action: dict[str, Any], audio: Path, dtmf: list[DtmfPress]) -> None:
        """Record the caller's file until the action's end condition, as a blocking record does."""
        self._recordings()
        source = parse_wav(Path(audio).read_bytes())
        rate = source.sample_rate
        pcm = load_pcm(audio, rate)
        cut, reason = record_length(pcm, rate, action, dtmf)
        data = wav_header(rate, cut) + pcm[:cut]
        self._deliver_recording(report, action, _Recording(data, time.time(), cut / 2 / rate, reason, 1, "wav"))

    def _deliver_recording(self, report: CallReport, action: dict[str, Any], recording: _Recording) -> None:
        """Serve the file from the stand-in's API, then post the recording webhook as often as Vonage would."""
        recording_uuid, data = str(uuidlib.uuid4()), recording.data
        self._recordings()[recording_uuid] = data
        report.recording_uuid, report.recording_bytes = recording_uuid, len(data)
        report.recording_ended_by = recording.ended_by
        report.recording_channels, report.recording_format = recording.channels, recording.media
        log.info(
            "recorded",
            extra={
                "bytes": len(data),
                "ended_by": recording.ended_by,
                "channels": recording.channels,
                "format": recording.media,
            },
        )
        payload = {
            "start_time": iso(recording.started),
            "end_time": iso(recording.started + recording.seconds),
            "recording_url": f"{self.api_base}/v1/files/{recording_uuid}",
            "size": len(data),
            "recording_uuid": recording_uuid,
            "conversation_uuid": report.conversation_uuid,
            "timestamp": iso(time.time()),
        }
        report.recording_posted_at, report.recording_webhook = time.time(), payload
        for _ in range(self.webhook_copies):
            report.event_statuses["record"] = self.post_event(action["eventUrl"][0], payload)
        if isinstance(action.get("transcription"), dict):
            self._transcribe(report, action, recording, recording_uuid)

    def _transcribe(
        self, report: CallReport, action: dict[str, Any], recording: _Recording, recording_uuid: str
    ) -> None:
        """Vonage's transcription, after its recording: serve the transcript file, then say where it is."""
        data = self.transcript
        if data is None:
            words = words_heard(recording.data, recording.media)
            data = json.dumps(vonage_transcript_file(words, recording.seconds)).encode()
        file_id = str(uuidlib.uuid4())
        self._recordings()  # the API serves it
        assert self.api is not None
        self.api.transcripts[file_id] = data
        settings = action["transcription"]
        # Without its own eventUrl the transcription is assumed to go where the recording went.
        url = (settings.get("eventUrl") or action["eventUrl"])[0]
        payload = transcription_webhook(report.conversation_uuid, recording_uuid, f"{self.api_base}/v1/files/{file_id}")
        report.transcription_webhook = payload
        for _ in range(self.webhook_copies):
            report.event_statuses["transcription"] = self.post_event(url, payload)

    def _dial(
        self,
        report: CallReport,
        action: dict[str, Any],
        call: dict[str, Any],
        event_url: str,
        audio: Path | None,
        conversation: _Conversation,
    ) -> None:
        """Ring a phone endpoint on a new leg; the party answers if it has something to say."""
        number = str(_endpoint(action).get("number", ""))
        url = str((action.get("eventUrl") or [event_url])[0])
        fields = {
            # Without `from` (randomFromNumber) Vonage picks one of the application's numbers.
            "from": str(action.get("from") or call["to"]),
            "to": number,
            "uuid": str(uuidlib.uuid4()),
            "conversation_uuid": report.conversation_uuid,
            "direction": "outbound",
        }
        for status in ("started", "ringing"):
            self._event(report, url, {**fields, "status": status, "timestamp": iso(time.time())}, number)
        if audio is None:
            log.info("party did not answer", extra={"to": number})
            payload = {**fields, "status": "unanswered", "detail": "timeout", "timestamp": iso(time.time())}
            self._event(report, url, payload, number)
            report.party_statuses[number] = "unanswered"
            return
        answered = time.time()
        payload = {**fields, "status": "answered", "timestamp": iso(answered), "start_time": iso(answered)}
        self._event(report, url, payload, number)
        report.parties.append(number)
        report.party_statuses[number] = "answered"
        conversation.legs.append(_Leg(url, fields, audio, answered))
        conversation.join(answered)

    def _hang_up(self, report: CallReport, conversation: _Conversation, audio: Path) -> float:
        """End the conversation when its longest audio does: legs complete, then the recording is posted."""
        if conversation.began is None:
            return time.time()
        tracks = [load_pcm(audio, RECORDING_RATE)] + [load_pcm(leg.audio, RECORDING_RATE) for leg in conversation.legs]
        seconds = max(len(track) for track in tracks) / 2 / RECORDING_RATE
        # Nothing waits for the conversation to be spoken; its end is when the audio would run out.
        ended = max(time.time(), conversation.began + seconds)
        for leg in conversation.legs:
            payload = _completed(leg.fields, started=leg.answered, answered=leg.answered, ended=ended)
            self._event(report, leg.event_url, payload, leg.fields["to"])
            report.party_statuses[leg.fields["to"]] = "completed"
        if conversation.record is not None:
            channels, media = recording_layout(conversation.record)
            grid = lay_out_channels(tracks, channels)
            data, media = encode_recording(grid, RECORDING_RATE, media)
            length = len(grid) / RECORDING_RATE
            recording = _Recording(data, conversation.record_started, length, "hangup", channels, media)
            self._deliver_recording(report, conversation.record, recording)
        return ended

    def _connect(self, call: _Call, action: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Stream the caller's file to a websocket endpoint until either side hangs up, keeping
        what the far side sends back; an NCCO that replaces the rest, if the eventUrl gave one.
        A socket the far side closes posts `disconnected`, and an NCCO that connects again
        carries on with the caller's audio from wherever they have got to."""
        report, endpoint = call.report, _endpoint(action)
        if endpoint.get("type") != "websocket":
            log.warning("connect endpoint not simulated", extra={"type": endpoint.get("type")})
            return None
        rate = parse_content_type(endpoint.get("content-type"))
        report.stream_rate = rate
        pcm = call.audio(rate)
        # Vonage sends the content type and each NCCO header as top-level fields of the first message.
        headers = endpoint.get("headers", {})
        first = {"event": "websocket:connected", "content-type": endpoint["content-type"], **headers}
        try:
            if call.caller.websocket_fails:
                raise ConnectionRefusedError("the websocket is down")
            ws = connect(endpoint["uri"], compression=None, max_size=None, open_timeout=10)
        except (OSError, InvalidHandshake) as err:
            log.info("websocket not reached", extra={"error": str(err)})
            report.fallback = self._connect_event(call, action, endpoint, "failed")
            return report.fallback
        with ws:
            ws.send(json.dumps(first))
            socket_report = SocketReport(headers.get("leg"), time.time())
            report.sockets.append(socket_report)
            listener = _Listener(ws, report, socket_report)
            dropped = self._stream(report, ws, pcm, rate, call, socket_report)
            if dropped:
                socket_report.closed_by = "network"
            elif socket_report.closed_by is None and not listener.closed.is_set():
                socket_report.closed_by = "caller"
                socket_report.closed_at = time.time()
                ws.close()
            elif socket_report.closed_by is None:
                socket_report.closed_by = "recorder"
            listener.join()
            socket_report.closed_at = socket_report.closed_at or time.time()
        assert call.voice is not None
        call.voice.last_close = time.monotonic()
        report.closed_by, report.close_code = socket_report.closed_by, socket_report.close_code
        report.socket_closed_at = socket_report.closed_at
        if socket_report.closed_by == "recorder":
            return self._connect_event(call, action, endpoint, "disconnected")
        # The caller hung up while streaming: the call is over.
        return [] if socket_report.closed_by == "caller" else None

    def _connect_event(
        self, call: _Call, action: dict[str, Any], endpoint: dict[str, Any], status: str
    ) -> list[dict[str, Any]] | None:
        """Tell the connect's eventUrl; with `eventType: synchronous`, an NCCO it answers replaces the rest."""
        if not action.get("eventUrl"):
            return None
        payload = {
            **call.common,
            "to": endpoint["uri"],
            "status": status,
            "timestamp": iso(time.time()),
            "headers": endpoint.get("headers", {}),
        }
        response = send_webhook(self.http, action["eventUrl"][0], payload, self.signing)
        call.report.event_statuses[status] = response.status_code
        call.report.connect_events.append((status, response.status_code))
        if action.get("eventType") != "synchronous" or response.status_code != 200:
            return None
        ncco = response.json()
        if not isinstance(ncco, list) or not ncco:
            return None
        call.report.nccos.append(ncco)
        return ncco

    def _stream(
        self, report: CallReport, ws: ClientConnection, pcm: bytes, rate: int, call: _Call, socket_report: SocketReport
    ) -> bool:
        """Send paced 20 ms frames and the caller's keys from where the caller is; True when the
        network was cut."""
        caller = call.caller
        if call.voice is None:
            call.voice = _Voice(caller.fast, list(caller.dtmf))
        voice = call.voice
        size = frame_bytes(rate)
        count = -(-len(pcm) // size)
        index = socket_report.first_frame = voice.resume()
        try:
            while index < count:
                if socket_report.closed_by == "recorder":
                    break
                position = index * FRAME_SECONDS
                while voice.keys and voice.keys[0].at <= position:
                    press = voice.keys.pop(0)
                    ws.send(json.dumps({"event": "websocket:dtmf", "digit": press.digit, "duration": press.duration}))
                if caller.drop_after is not None and position >= caller.drop_after:
                    # Cut the TCP connection with no close frame, as a failing network would.
                    ws.socket.shutdown(socket.SHUT_RDWR)
                    ws.socket.close()
                    return True
                if not caller.fast:
                    assert voice.began is not None
                    delay = voice.began + position - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                frame = pcm[index * size : (index + 1) * size]
                ws.send(frame)
                index = voice.position = index + 1
                socket_report.frames_sent += 1
                report.frames_sent += 1
                report.bytes_sent += len(frame)
        except ConnectionClosed as err:
            socket_report.closed_by = "recorder"
            socket_report.close_code = err.rcvd.code if err.rcvd else None
        return False


def _completed(fields: dict[str, Any], *, started: float, answered: float, ended: float) -> dict[str, Any]:
    """A leg's `completed` event: when it was answered and ended, and how long since it began."""
    return {
        **fields,
        "status": "completed",
        "timestamp": iso(ended),
        "start_time": iso(answered),
        "end_time": iso(ended),
        "duration": str(int(ended - started)),
    }


def _charges(seconds: float) -> dict[str, str]:
    """What a `completed` event says the call cost: EUR strings, billed per started minute."""
    rate = "0.00450000"
    minutes = max(1, -(-int(seconds) // 60))
    return {"rate": rate, "price": f"{float(rate) * minutes:.8f}", "network": "GB-FIXED"}


def _answer_query(from_: str, to: str, report: CallReport) -> dict[str, str]:
    """The answer webhook's query, in the order of a live capture; `region_url` is newer than it."""
    return {
        "to": to,
        "from": from_,
        "conversation_uuid": report.conversation_uuid,
        "uuid": report.uuid,
        "region_url": "https://api-standin.vonage.com",
    }


def _endpoint(action: dict[str, Any]) -> dict[str, Any]:
    """A connect action's endpoint: Vonage takes at most one."""
    return dict((action.get("endpoint") or [{}])[0])


class _Listener:
    """Reads what the far side of a websocket sends while the caller talks: audio is kept, a
    close ends the call's part of the stream."""

    def __init__(self, ws: ClientConnection, report: CallReport, socket_report: SocketReport) -> None:
        self.ws, self.report, self.socket_report = ws, report, socket_report
        self.closed = threading.Event()
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        try:
            while True:
                message = self.ws.recv()
                if isinstance(message, bytes):
                    if self.report.heard_at is None:
                        self.report.heard_at = time.monotonic() - self.started
                    self.report.heard += message
        except ConnectionClosed as err:
            if self.socket_report.closed_by is None and err.rcvd is not None:
                self.socket_report.closed_at = time.time()
                self.socket_report.closed_by = "recorder"
                self.socket_report.close_code = err.rcvd.code
        finally:
            self.closed.set()

    def join(self) -> None:
        self._thread.join(timeout=10)
