"""Cloud Functions entry points: one thin function per Vonage webhook."""

from __future__ import annotations

import time
from typing import Any

import flask
import functions_framework

from shared.inbound import answer_call, record_call_event
from shared.services import services_from_env
from shared.web import guarded, read_webhook

__all__ = ["answer", "event"]


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
