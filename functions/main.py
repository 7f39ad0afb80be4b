"""Cloud Functions entry points: one thin function per Vonage webhook.

Every deployed function loads this whole file, so the use cases behind the recording and
prompt functions are imported when those run, not at start-up: `answer` stays quick to load.
"""

from __future__ import annotations

from typing import Any

import flask
import functions_framework

from shared.core.call_record import call_ended_at
from shared.core.errors import NotFound
from shared.flows.inbound import answer_call, record_call_event
from shared.flows.links import resolve_link
from shared.runtime.services import Services, app_services
from shared.runtime.web import (
    API_KEY_HEADER,
    check_api_key,
    guarded,
    is_secure,
    read_query,
    read_transcription_event,
    read_webhook,
    serve_object,
    subpath,
)

__all__ = ["answer", "call", "event", "link", "prompt", "recording", "tasks", "transcription"]


def _vonage_webhook(request: flask.Request, own: tuple[str, ...] = ()) -> tuple[Services, dict[str, Any], float]:
    """This app's services, the fields of a Vonage webhook (its signature checked when
    VONAGE_SIGNATURE_SECRET is set; `own` are tapedeck's own URL parameters), and the time now."""
    services = app_services()
    now = services.clock()
    return services, read_webhook(request, services.settings.vonage.signature_secret, now, own=own), now


@functions_framework.http
@guarded(methods=("GET", "POST"))
def answer(request: flask.Request) -> Any:
    """Vonage's answer webhook: return the NCCO for the call."""
    services, params, now = _vonage_webhook(request)
    return flask.jsonify(answer_call(services.settings, params, now))


@functions_framework.http
@guarded(methods=("GET", "POST"))
def event(request: flask.Request) -> Any:
    """Vonage's event webhook: keep each call status in call.json, answer 204; once the call is
    over, a task settles its recordings. A stream's websocket connect reports here too (`?leg=`),
    and gets the NCCO that connects the call again when its socket closed before the call; a live
    voicemail's (`?fallback=`) gets the NCCO that records the message instead when the recorder
    could not be reached."""
    if request.args.get("fallback") == "voicemail":
        from shared.flows.jobs import FALLBACK_URL_PARAMS
        from shared.flows.voicemail import voicemail_fallback

        services, params, _ = _vonage_webhook(request, own=FALLBACK_URL_PARAMS)
        actions = voicemail_fallback(services.settings, params)
        return flask.jsonify(actions) if actions is not None else ("", 204)
    if "leg" in request.args:
        from shared.flows.reconnects import LEG_URL_PARAMS, answer_stream_event

        services, params, now = _vonage_webhook(request, own=LEG_URL_PARAMS)
        actions = answer_stream_event(services.settings, services.store, params, now)
        return flask.jsonify(actions) if actions is not None else ("", 204)
    services, params, now = _vonage_webhook(request)
    recorded = record_call_event(services, params, now)
    if recorded is not None and recorded.added and call_ended_at(recorded.call) is not None:
        from shared.flows.recording_outcomes import follow_call_end

        # The call is over: its recordings can take their final state.
        follow_call_end(services, recorded.call, recorded.leg)
    return "", 204


@functions_framework.http
@guarded(methods=("GET", "POST"))
def recording(request: flask.Request) -> Any:
    """Vonage's recording webhook (voicemail or conversation): store it, queue its transcription,
    answer. Vonage's transcription webhook, for a route Vonage transcribes, comes here too."""
    from shared.core.vonage_transcripts import is_transcription_webhook
    from shared.flows.jobs import RECORDING_URL_PARAMS
    from shared.flows.transcription import receive_recording, transcribe_task

    services, params, now = _vonage_webhook(request, own=RECORDING_URL_PARAMS)
    if is_transcription_webhook(params):
        from shared.flows.vonage_transcription import receive_vonage_transcription

        services.queue.enqueue(receive_vonage_transcription(services.settings, params))
        return "", 204
    job = receive_recording(services, params, now)
    if job is not None:
        services.queue.enqueue(transcribe_task(job))
    return "", 204


@functions_framework.http
@guarded(methods=("POST",))
def transcription(request: flask.Request) -> Any:
    """EventBridge's API destination: a Transcribe job changed state."""
    from shared.flows.transcription import on_transcription_event

    services = app_services()
    now = services.clock()
    check_api_key(request, services.settings.transcription.api_key)
    name = read_transcription_event(read_webhook(request, None, now))
    return flask.jsonify({"job": name, "result": on_transcription_event(services, name, now)})


@functions_framework.http
@guarded(methods=("POST",))
def tasks(request: flask.Request) -> Any:
    """The task queue calling back: run one deferred step within this request. Not public."""
    from shared.core.tasks import parse_task
    from shared.runtime.task_dispatch import run_task
    from shared.runtime.web import check_queue_caller, task_attempt

    services = app_services()
    now = services.clock()
    check_queue_caller(request, services.settings)
    task = parse_task(read_webhook(request, None, now))
    result = run_task(services, task, task_attempt(request), now)
    return flask.jsonify({"task": task.name, "result": result})


@functions_framework.http
@guarded(methods=("GET",))
def link(request: flask.Request) -> Any:
    """A short link to a message's audio: a fresh signed URL at each click, or the audio locally."""
    services = app_services()
    now = services.clock()
    object_key = resolve_link(services.store, request.args.get("id", ""), now)
    return serve_object(services.store, object_key, services.settings.storage.signed_url_ttl)


@functions_framework.http
@guarded(methods=("GET", "POST"))
def call(request: flask.Request) -> Any:
    """The PIN prompt API: POST places a call and answers its tid; GET /<tid> answers its status."""
    from shared.flows.pin_calls import create_prompt_call, credentials_for, prompt_status

    services = app_services()
    now = services.clock()
    settings, tid = services.settings, subpath(request, "call")
    if request.method == "GET":
        check_api_key(request, settings.prompt.api_key)
        return flask.jsonify(prompt_status(services, tid, now))
    if tid:
        raise NotFound("POST to /call itself")
    fields = read_webhook(request, None, now)
    credentials, mode = credentials_for(
        settings,
        request.headers.get(API_KEY_HEADER, ""),
        request.headers.get("Authorization", ""),
        fields,
        secure=is_secure(request, allow_loopback=settings.delivery.allow_private),
    )
    return flask.jsonify({"tid": create_prompt_call(services, fields, credentials, mode, now)})


@functions_framework.http
@guarded(methods=("GET", "POST"))
def prompt(request: flask.Request) -> Any:
    """Vonage's answer, input and event webhooks of one PIN prompt call (`?tid=&step=&sig=`).

    No new NCCO is no content: an NCCO holds at least one action, and without one Vonage goes on
    with the rest of the current NCCO, which after the last input is nothing, so the call ends."""
    from shared.flows.pin_calls import WEBHOOK_URL_PARAMS, webhook

    services = app_services()
    now = services.clock()
    query = dict(read_query(request))
    ncco = webhook(services, query, lambda secret: read_webhook(request, secret, now, own=WEBHOOK_URL_PARAMS), now)
    return flask.jsonify(ncco) if ncco else ("", 204)
