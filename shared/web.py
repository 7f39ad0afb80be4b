"""The HTTP boundary shared by the functions and the recorder: reading webhooks, answering errors."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import flask
from werkzeug.exceptions import HTTPException

from shared.errors import (
    BadGateway,
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    TapedeckError,
    Unauthorized,
)
from shared.signatures import API_KEY_HEADER, api_key_matches, verify_webhook

__all__ = [
    "API_KEY_HEADER",
    "MAX_BODY_BYTES",
    "check_api_key",
    "guarded",
    "is_secure",
    "read_transcription_event",
    "read_webhook",
    "serve_object",
    "subpath",
]

log = logging.getLogger(__name__)

# Vonage webhooks are a few hundred bytes; anything near this is not one.
MAX_BODY_BYTES = 64 * 1024

Handler = Callable[[flask.Request], Any]


def _error(status: int, message: str, fields: dict[str, str] | None = None) -> flask.Response:
    response = flask.jsonify({"error": message, "fields": fields} if fields else {"error": message})
    response.status_code = status
    return response


def guarded(methods: tuple[str, ...]) -> Callable[[Handler], Handler]:
    """Allow only `methods`, and turn every error into a JSON answer without a stack trace."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def run(request: flask.Request) -> Any:
            try:
                if request.method not in methods:
                    raise MethodNotAllowed(f"use {' or '.join(methods)}")
                return handler(request)
            except BadGateway as err:
                log.error("upstream failed", extra={"path": request.path, "error": str(err)})
                return _error(err.status, str(err))
            except TapedeckError as err:
                if err.status >= 500:
                    log.error("request failed", extra={"path": request.path, "error": str(err)})
                    return _error(err.status, "internal error")
                log.info("request refused", extra={"path": request.path, "status": err.status, "error": str(err)})
                return _error(err.status, str(err), getattr(err, "fields", None))
            except HTTPException as err:
                return _error(err.code or 400, err.description or err.name)
            except Exception:
                log.exception("unexpected error", extra={"path": request.path})
                return _error(500, "internal error")

        return run

    return wrap


def read_webhook(request: flask.Request, signature_secret: str | None, now: float) -> dict[str, Any]:
    """The webhook's fields, from the query (GET) or a JSON or form body (POST).

    With a signature secret, the request must carry Vonage's signed JWT for this body.
    """
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body over {MAX_BODY_BYTES} bytes")
    body = request.stream.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body over {MAX_BODY_BYTES} bytes")
    if signature_secret:
        verify_webhook(request.headers.get("Authorization"), body, signature_secret, now)
    params: dict[str, Any] = dict(request.args)
    if request.method == "GET" or not body:
        return params
    if request.mimetype == "application/x-www-form-urlencoded":
        from urllib.parse import parse_qsl

        try:
            params.update(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError) as err:
            raise BadRequest("malformed form body") from err
        return params
    import json

    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as err:
        raise BadRequest("body is not valid JSON") from err
    if not isinstance(payload, dict):
        raise BadRequest("body must be a JSON object")
    params.update(payload)
    return params


def check_api_key(request: flask.Request, expected: str | None) -> None:
    """The API-key header EventBridge's connection sends; anything else is refused with 401."""
    if not api_key_matches(request.headers.get(API_KEY_HEADER, ""), expected):
        raise Unauthorized(f"missing or wrong {API_KEY_HEADER}")


def read_transcription_event(event: dict[str, Any]) -> str:
    """The job name of an EventBridge "Transcribe Job State Change" event."""
    detail = event.get("detail")
    name = detail.get("TranscriptionJobName") if isinstance(detail, dict) else None
    if event.get("source") != "aws.transcribe" or not isinstance(name, str) or not name:
        raise BadRequest("not a Transcribe Job State Change event")
    return name


def serve_object(store: Any, key: str, ttl_seconds: int) -> Any:
    """Redirect to a fresh signed URL where the store can sign; otherwise send the bytes."""
    signer = getattr(store, "signed_url", None)
    if signer is not None:
        return flask.redirect(signer(key, ttl_seconds), code=302)
    blob = store.read(key)
    if blob is None:
        raise NotFound("the audio is no longer stored")
    mimetype = "audio/wav" if key.endswith(".wav") else "audio/mpeg"
    return flask.Response(blob.data, mimetype=mimetype, headers={"Cache-Control": "private, no-store"})


def subpath(request: flask.Request, name: str) -> str:
    """The path below a function's own URL: `/<tid>` on Cloud Functions, `/<name>/<tid>` locally."""
    path = request.path
    if path == f"/{name}" or path.startswith(f"/{name}/"):
        path = path[len(name) + 1 :]
    return path.strip("/")


def is_secure(request: flask.Request, allow_loopback: bool) -> bool:
    """Whether the request came over HTTPS (Cloud Functions' front end says so in X-Forwarded-Proto).

    With `allow_loopback` (local development) a request from this machine counts too.
    """
    if request.scheme == "https" or request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip() == "https":
        return True
    return allow_loopback and request.remote_addr in ("127.0.0.1", "::1")
