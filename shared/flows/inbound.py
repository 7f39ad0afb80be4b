"""Use cases of an inbound call: answering it, and keeping its status events."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.config.routes import Route
from shared.config.settings import Settings
from shared.core import ncco
from shared.core.call_record import ENDED_STATUSES, CallRecord, Flow, call_ended, record_status
from shared.core.webhooks import InboundCall, parse_call_event, parse_inbound_call
from shared.flows.calls import update_call
from shared.flows.reconnects import stream_event_url, stream_target
from shared.flows.stitching import StitchServices, queue_stitch

__all__ = ["RecordedEvent", "answer_call", "record_call_event"]

log = logging.getLogger(__name__)


def answer_call(settings: Settings, params: Mapping[str, Any], now: float) -> list[ncco.Action]:
    """The NCCO for an inbound call, by the called number's route: stream, voicemail or conversation,
    after the route's announcement, which comes before anything is recorded or streamed."""
    call = parse_inbound_call(params)
    route = settings.routes.for_number(call.to)
    log.info("answering", extra={"call": call.conversation_uuid, "flow": route.flow})
    if route.flow == Flow.CONVERSATION:
        # A conversation's builder speaks the announcement itself, before it records.
        return _flow_answer(settings, route, call, now)
    announcement = [ncco.talk(route.announcement, language=route.language)] if route.announcement else []
    return [*announcement, *_flow_answer(settings, route, call, now)]


def _flow_answer(settings: Settings, route: Route, call: InboundCall, now: float) -> list[ncco.Action]:
    if route.flow in (Flow.VOICEMAIL, Flow.CONVERSATION):
        from shared.flows.jobs import recording_event_url

        recording_url = recording_event_url(settings, call.conversation_uuid, call.from_, call.to)
        # Vonage's transcription webhook comes to the same sealed URL as its recording webhook.
        transcription = (
            ncco.record_transcription(route.language, recording_url) if route.transcribed_by_vonage else None
        )
        if route.flow == Flow.CONVERSATION:
            return ncco.conversation_answer(
                parties=route.connect,
                caller_id=route.caller_id or call.to,
                announcement=route.announcement,
                language=route.language,
                media_format=route.format,
                max_seconds=route.max_seconds,
                recording_url=recording_url,
                event_url=f"{settings.public_url}/event",
                transcription=transcription,
            )
        if route.capture == "stream":
            from shared.flows.jobs import voicemail_fallback_url

            return ncco.live_voicemail_answer(
                call,
                owner=route.owner,
                language=route.language,
                max_seconds=route.max_seconds,
                stream=stream_target(settings, call.conversation_uuid, now),
                fallback_url=voicemail_fallback_url(settings, call.conversation_uuid, call.from_, call.to),
            )
        return ncco.voicemail_answer(
            call,
            owner=route.owner,
            language=route.language,
            max_seconds=route.max_seconds,
            recording_url=recording_url,
            transcription=transcription,
        )
    return ncco.stream_answer(
        call,
        greeting=settings.stream.greeting,
        stream=stream_target(settings, call.conversation_uuid, now),
        event_url=stream_event_url(settings, call.conversation_uuid, 1),
    )


@dataclass(frozen=True)
class RecordedEvent:
    """An event kept in call.json: the call as it is now, the leg the event was about, and whether
    the event was new."""

    call: CallRecord
    leg: str | None
    added: bool


def record_call_event(services: StitchServices, params: Mapping[str, Any], now: float) -> RecordedEvent | None:
    """Add an event to call.json; a duplicate changes nothing. None for an event that names no
    conversation (none of Vonage's documented ones): it is logged, not kept. The end of a call
    recorded in several sessions queues the stitching of its recording."""
    event = parse_call_event(params)
    if not event.conversation_uuid:
        log.warning("event without a conversation", extra={"fields": sorted(params)[:20]})
        return None
    added = False

    def change(call: CallRecord) -> None:
        nonlocal added
        added = record_status(
            call,
            status=event.status,
            timestamp=event.timestamp,
            uuid=event.uuid or None,
            from_=event.from_ or None,
            to=event.to or None,
            direction=event.direction or None,
            details=event.details,
        )

    call = update_call(services.store, event.conversation_uuid, change, now)
    log.info("call event", extra={"call": event.conversation_uuid, "status": event.status, "duplicate": not added})
    if added and event.status in ENDED_STATUSES and call_ended(call):
        queue_stitch(services, call, "over")
    return RecordedEvent(call, event.uuid or None, added)
