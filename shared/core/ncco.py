"""NCCO builders: pure functions from a call and settings to Vonage actions."""

from __future__ import annotations

from shared.core.identifiers import E164, is_shaped
from shared.core.webhooks import InboundCall

__all__ = [
    "HEADERS_LIMIT",
    "VOICEMAIL_SECONDS",
    "connect_websocket",
    "conversation_answer",
    "stream_answer",
    "talk",
    "voicemail_answer",
]

Action = dict[str, object]
VOICEMAIL_SECONDS = 120
# Vonage caps a websocket endpoint's headers at 512 bytes in all.
HEADERS_LIMIT = 512


def talk(text: str, *, barge_in: bool = False, language: str | None = None) -> Action:
    action: Action = {"action": "talk", "text": text}
    if barge_in:
        action["bargeIn"] = True
    if language:
        action["language"] = language
    return action


def connect_websocket(call: InboundCall, *, uri: str, sample_rate: int, token: str, event_url: str) -> Action:
    """Connect the call's audio to the recorder, with the call's ids and a stream token."""
    headers = {
        "conversation_uuid": call.conversation_uuid,
        "uuid": call.uuid,
        "from": call.from_[:32],
        "to": call.to[:32],
        "token": token,
    }
    size = sum(len(k) + len(v) for k, v in headers.items())
    if size > HEADERS_LIMIT:
        raise ValueError(f"websocket headers are {size} bytes, over Vonage's {HEADERS_LIMIT}")
    action: Action = {
        "action": "connect",
        "endpoint": [
            {
                "type": "websocket",
                "uri": uri,
                "content-type": f"audio/l16;rate={sample_rate}",
                "headers": headers,
            }
        ],
        "eventUrl": [event_url],
    }
    if is_shaped(call.to, E164):
        action["from"] = call.to
    else:
        action["randomFromNumber"] = True
    return action


def stream_answer(
    call: InboundCall, *, greeting: str, recorder_url: str, sample_rate: int, token: str, event_url: str
) -> list[Action]:
    """Greet the caller, then stream the call's audio to the recorder."""
    return [
        talk(greeting),
        connect_websocket(call, uri=recorder_url, sample_rate=sample_rate, token=token, event_url=event_url),
    ]


def voicemail_answer(
    call: InboundCall, *, owner: str, language: str, max_seconds: int | None, recording_url: str
) -> list[Action]:
    """Greet in the owner's name, record after a beep until silence, '#' or the limit, then thank."""
    who = owner or "this number"
    return [
        talk(
            f"You have reached {who}. Please leave a message after the tone, then hang up or press hash.",
            language=language,
        ),
        {
            "action": "record",
            "format": "mp3",
            "endOnSilence": 3,
            "endOnKey": "#",
            "beepStart": True,
            "timeOut": max_seconds or VOICEMAIL_SECONDS,
            "eventUrl": [recording_url],
            "eventMethod": "POST",
        },
        talk("Thank you for your message. Goodbye.", language=language),
    ]


def conversation_answer(
    *,
    parties: tuple[str, ...],
    caller_id: str,
    notice: str,
    language: str,
    media_format: str,
    max_seconds: int | None,
    recording_url: str,
    event_url: str,
) -> list[Action]:
    """Read the notice, record one channel per party, then connect each party.

    The record action comes first and has no ending condition, so it runs in the background
    for the rest of the call and captures every leg from the start: the caller on channel 0,
    party k on channel k. Several parties get one connect each, as in Vonage's multi-party sample.
    """
    actions: list[Action] = [talk(notice, language=language)] if notice else []
    actions.append(
        {
            "action": "record",
            "split": "conversation",
            "channels": 1 + len(parties),
            "format": media_format,
            "eventUrl": [recording_url],
            "eventMethod": "POST",
        }
    )
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
