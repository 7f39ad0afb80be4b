"""NCCO builders: pure functions from a call and settings to Vonage actions."""

from __future__ import annotations

from dataclasses import dataclass

from shared.core.identifiers import E164, is_shaped
from shared.core.vonage_limits import WEBSOCKET_HEADERS_LIMIT, websocket_headers_size
from shared.core.webhooks import InboundCall

__all__ = [
    "LEG_HEADER",
    "VOICEMAIL_SECONDS",
    "VOICEMAIL_SILENCE",
    "StreamTarget",
    "connect_websocket",
    "conversation_answer",
    "live_voicemail_answer",
    "record_transcription",
    "stream_answer",
    "stream_connect",
    "stream_reconnect",
    "talk",
    "voicemail_answer",
    "voicemail_greeting",
    "voicemail_record",
]

Action = dict[str, object]
VOICEMAIL_SECONDS = 120
# Seconds of silence that end a voicemail message, recorded or live.
VOICEMAIL_SILENCE = 3
# The websocket header that says which of the call's connects a stream came in on: 1 for the
# answer's, one more for each reconnect.
LEG_HEADER = "leg"


@dataclass(frozen=True)
class StreamTarget:
    """Where a call's audio is streamed: the recorder's websocket, at a rate, with a stream token."""

    uri: str
    sample_rate: int
    token: str


def talk(text: str, *, barge_in: bool = False, language: str | None = None) -> Action:
    action: Action = {"action": "talk", "text": text}
    if barge_in:
        action["bargeIn"] = True
    if language:
        action["language"] = language
    return action


def connect_websocket(call: InboundCall, *, stream: StreamTarget, event_url: str, extra: dict[str, str]) -> Action:
    """Connect the call's audio to the recorder, with the call's ids, a stream token and `extra`
    headers. Every stream connect is synchronous: when the socket closes or cannot open, Vonage
    asks `event_url` what to do next."""
    headers = {
        "conversation_uuid": call.conversation_uuid,
        "uuid": call.uuid,
        "from": call.from_[:32],
        "to": call.to[:32],
        "token": stream.token,
        **(extra or {}),
    }
    size = websocket_headers_size(headers)
    if size > WEBSOCKET_HEADERS_LIMIT:
        raise ValueError(f"websocket headers are {size} bytes, over Vonage's {WEBSOCKET_HEADERS_LIMIT}")
    action: Action = {
        "action": "connect",
        "endpoint": [
            {
                "type": "websocket",
                "uri": stream.uri,
                "content-type": f"audio/l16;rate={stream.sample_rate}",
                "headers": headers,
            }
        ],
        "eventUrl": [event_url],
        "eventType": "synchronous",
    }
    if is_shaped(call.to, E164):
        action["from"] = call.to
    else:
        action["randomFromNumber"] = True
    return action


def stream_connect(call: InboundCall, *, stream: StreamTarget, event_url: str, leg: int) -> Action:
    """Connect the call's audio to the recorder as websocket leg `leg`. The connect is synchronous:
    when the socket closes before the call, Vonage asks `event_url` what to do next, and its
    answer can connect the call again."""
    return connect_websocket(call, stream=stream, event_url=event_url, extra={LEG_HEADER: str(leg)})


def stream_answer(call: InboundCall, *, greeting: str, stream: StreamTarget, event_url: str) -> list[Action]:
    """Greet the caller, then stream the call's audio to the recorder."""
    return [talk(greeting), stream_connect(call, stream=stream, event_url=event_url, leg=1)]


def stream_reconnect(call: InboundCall, *, stream: StreamTarget, event_url: str, leg: int) -> list[Action]:
    """Connect the call to the recorder again, as leg `leg`: the same headers, a fresh token."""
    return [stream_connect(call, stream=stream, event_url=event_url, leg=leg)]


def voicemail_greeting(owner: str) -> str:
    """What a voicemail says first, in the owner's name."""
    who = owner or "this number"
    return f"You have reached {who}. Please leave a message after the tone, then hang up or press hash."


def _greeting(owner: str, language: str) -> Action:
    return talk(voicemail_greeting(owner), language=language)


def _thanks(language: str) -> Action:
    return talk("Thank you for your message. Goodbye.", language=language)


def record_transcription(language: str, event_url: str) -> Action:
    """A record action's `transcription`: Vonage transcribes the recording in `language` and
    posts its transcription webhook to `event_url`."""
    return {"language": language, "eventUrl": [event_url], "eventMethod": "POST"}


def _transcribed(record: Action, transcription: Action | None) -> Action:
    return {**record, "transcription": transcription} if transcription else record


def voicemail_record(
    *, language: str, max_seconds: int | None, recording_url: str, transcription: Action | None = None
) -> list[Action]:
    """Record after a beep until silence, '#' or the limit, then thank: the message as a recording
    (which Vonage transcribes too, given `transcription`)."""
    record: Action = {
        "action": "record",
        "format": "mp3",
        "endOnSilence": VOICEMAIL_SILENCE,
        "endOnKey": "#",
        "beepStart": True,
        "timeOut": max_seconds or VOICEMAIL_SECONDS,
        "eventUrl": [recording_url],
        "eventMethod": "POST",
    }
    return [_transcribed(record, transcription), _thanks(language)]


def voicemail_answer(
    call: InboundCall,
    *,
    owner: str,
    language: str,
    max_seconds: int | None,
    recording_url: str,
    transcription: Action | None = None,
) -> list[Action]:
    """Greet in the owner's name, record after a beep until silence, '#' or the limit, then thank."""
    del call  # the same words for every caller
    record = voicemail_record(
        language=language, max_seconds=max_seconds, recording_url=recording_url, transcription=transcription
    )
    return [_greeting(owner, language), *record]


def live_voicemail_answer(
    call: InboundCall,
    *,
    owner: str,
    language: str,
    max_seconds: int | None,
    stream: StreamTarget,
    fallback_url: str,
) -> list[Action]:
    """Greet, then stream the message to the recorder, which beeps and closes the socket when the
    message ends; Vonage then goes on to the thanks. The connect is synchronous: if the recorder
    cannot be reached, Vonage asks `fallback_url` what to do instead (record the message)."""
    limits = {"capture": "voicemail", "max_seconds": str(max_seconds or VOICEMAIL_SECONDS)}
    connect = connect_websocket(call, stream=stream, event_url=fallback_url, extra=limits)
    return [_greeting(owner, language), connect, _thanks(language)]


def conversation_answer(
    *,
    parties: tuple[str, ...],
    caller_id: str,
    announcement: str,
    language: str,
    media_format: str,
    max_seconds: int | None,
    recording_url: str,
    event_url: str,
    transcription: Action | None = None,
) -> list[Action]:
    """Speak the announcement, record one channel per party, then connect each party.

    The record action comes first and has no ending condition, so it runs in the background
    for the rest of the call and captures every leg from the start: the caller on channel 0,
    party k on channel k. Several parties get one connect each, as in Vonage's multi-party sample.
    """
    actions: list[Action] = [talk(announcement, language=language)] if announcement else []
    record: Action = {
        "action": "record",
        "split": "conversation",
        "channels": 1 + len(parties),
        "format": media_format,
        "eventUrl": [recording_url],
        "eventMethod": "POST",
    }
    actions.append(_transcribed(record, transcription))
    for number in parties:
        connect: Action = {
            "action": "connect",
            "endpoint": [{"type": "phone", "number": number}],
            "eventUrl": [event_url],
        }
        if is_shaped(caller_id, E164):
            connect["from"] = caller_id
        else:
            connect["randomFromNumber"] = True
        if max_seconds:
            connect["limit"] = max_seconds
        actions.append(connect)
    return actions
