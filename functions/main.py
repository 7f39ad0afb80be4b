"""Cloud Functions entry points: one thin function per Vonage webhook."""

from __future__ import annotations

import time
from typing import Any

import flask
import functions_framework

from shared.inbound import answer_call, record_call_event
from shared.links import resolve_link
from shared.recorded_calls import on_transcription_event, receive_recording, transcribe_in_background
from shared.services import services_from_env
from shared.web import check_api_key, guarded, read_transcription_event, read_webhook, serve_object

__all__ = ["answer", "event", "link", "recording", "transcription"]


@functions_framework.http
@guarded(methods=("GET", "POST"))
def answer(request: flask.Request) -> Any:
    """Vonage's answer webhook: return the NCCO for the call."""
    services = services_from_env()
    params = read_webhook(request, services.settings.vonage_signature_secret, time.time())
    return flask.jsonify(answer_call(services.settings, params, time.time()))


@functions_framework.http
@guarded(methods=("GET", "POST"))
def event(request: flask.Request) -> Any:
    """Vonage's event webhook: keep each call status in call.json, answer 204."""
    services = services_from_env()
    params = read_webhook(request, services.settings.vonage_signature_secret, time.time())
    record_call_event(services.store, params)
    return "", 204


@functions_framework.http
@guarded(methods=("POST",))
def recording(request: flask.Request) -> Any:
    """Vonage's recording webhook (voicemail or conversation): store it, answer, transcribe in the background."""
    services = services_from_env()
    params = read_webhook(request, services.settings.vonage_signature_secret, time.time())
    job = receive_recording(services, params, time.time())
    if job is not None:
        services.background.submit(transcribe_in_background, services, job, time.time())
    return "", 204


@functions_framework.http
@guarded(methods=("POST",))
def transcription(request: flask.Request) -> Any:
    """EventBridge's API destination: a Transcribe job changed state."""
    services = services_from_env()
    check_api_key(request, services.settings.transcription_api_key)
    name = read_transcription_event(read_webhook(request, None, time.time()))
    return flask.jsonify({"job": name, "result": on_transcription_event(services, name, time.time())})


@functions_framework.http
@guarded(methods=("GET",))
def link(request: flask.Request) -> Any:
    """A short link to a message's audio: a fresh signed URL at each click, or the audio locally."""
    services = services_from_env()
    object_key = resolve_link(services.store, request.args.get("id", ""), time.time())
    return serve_object(services.store, object_key, services.settings.signed_url_ttl)
