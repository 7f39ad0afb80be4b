"""The HTTP boundary shared by the functions and the recorder: reading webhooks, answering errors."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import parse_qsl

import flask
from werkzeug.exceptions import HTTPException

from shared.config.settings import Settings
from shared.core.errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    TapedeckError,
    Unauthorized,
    Unsigned,
)
from shared.core.payloads import load_json_object
from shared.core.ports import StorageConflict
from shared.core.signatures import API_KEY_HEADER, api_key_matches, query_payloads, verify_webhook
from shared.core.tasks import ATTEMPT_HEADER, QUEUE_KEY_HEADER
from shared.runtime.logs import TRACE_HEADER, current_trace, trace_context

__all__ = [
    "API_KEY_HEADER",
    "MAX_BODY_BYTES",
    "check_api_key",
    "check_queue_caller",
    "guarded",
    "is_secure",
    "read_query",
    "read_transcription_event",
    "read_webhook",
    "serve_object",
    "subpath",
    "task_attempt",
]

log = logging.getLogger(__name__)

# Vonage webhooks are a few hundred bytes; anything near this is not one.
MAX_BODY_BYTES = 64 * 1024
# A Vonage webhook has about a dozen fields.
_MAX_FIELDS = 100

Handler = Callable[[flask.Request], Any]


def _error(status: int, message: str, fields: dict[str, str] | None = None) -> flask.Response:
    response = flask.jsonify({"error": message, "fields": fields} if fields else {"error": message})
    response.status_code = status
    return response


def _refusal(request: flask.Request, err: TapedeckError) -> flask.Response:
    """The JSON answer for an error tapedeck raised on purpose; a 5xx hides its message unless public."""
    where = {"path": request.path, "status": err.status, "error": str(err)}
    if isinstance(err, Unsigned):
        log.warning("unsigned webhook refused; Vonage will retry it", extra=where)
    elif err.status >= 500:
        log.error("request failed", extra=where)
    else:
        log.info("request refused", extra=where)
    message = str(err) if err.public or err.status < 500 else "internal error"
    response = _error(err.status, message, getattr(err, "fields", None))
    response.headers.update(err.headers)
    return response


def guarded(methods: tuple[str, ...]) -> Callable[[Handler], Handler]:
    """Allow only `methods`, and turn every error into a JSON answer without a stack trace."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def run(request: flask.Request) -> Any:
            token = trace_context.set(current_trace(request.headers.get(TRACE_HEADER)))
            try:
                if request.method not in methods:
                    raise MethodNotAllowed(f"use {' or '.join(methods)}")
                return handler(request)
            except TapedeckError as err:
                return _refusal(request, err)
            except StorageConflict as err:
                # Storage's own error, answered as HTTP here: the object kept changing under the request.
                return _refusal(request, PreconditionFailed(str(err)))
            except HTTPException as err:
                return _error(err.code or 400, err.description or err.name)
            except Exception:
                log.exception("unexpected error", extra={"path": request.path})
                return _error(500, "internal error")
            finally:
                trace_context.reset(token)

        return run

    return wrap


def _pairs(text: str, what: str) -> list[tuple[str, str]]:
    """Form-encoded fields in their order; a repeated name is refused, since which one counts is ambiguous."""
    try:
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=True, errors="strict", max_num_fields=_MAX_FIELDS
        )
    except (UnicodeDecodeError, ValueError) as err:
        raise BadRequest(f"malformed {what}") from err
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise BadRequest(f"the {what} repeats a field")
    return pairs


def read_query(request: flask.Request) -> list[tuple[str, str]]:
    """The query parameters in the order of the URL, as Vonage hashes them for a GET."""
    try:
        text = request.query_string.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadRequest("the query string is not UTF-8") from err
    return _pairs(text, "query string")


def read_webhook(
    request: flask.Request, signature_secret: str | None, now: float, own: Collection[str] = ()
) -> dict[str, Any]:
    """The webhook's fields, from the query (GET) or a JSON or form body (POST).

    With a signature secret, the request must carry Vonage's signed JWT for its payload: the body
    of a POST, the query of a GET. `own` names the query parameters tapedeck put in the webhook
    URL itself (sealed separately). A query parameter wins over a body field of the same name.
    """
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body over {MAX_BODY_BYTES} bytes")
    body = request.stream.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body over {MAX_BODY_BYTES} bytes")
    query = read_query(request)
    if signature_secret:
        payloads = [body] if request.method == "POST" else query_payloads(query, own)
        verify_webhook(request.headers.get("Authorization"), payloads, signature_secret, now)
    params: dict[str, Any] = {}
    if request.method != "GET" and body:
        if request.mimetype == "application/x-www-form-urlencoded":
            try:
                params.update(_pairs(body.decode("utf-8"), "form body"))
            except UnicodeDecodeError as err:
                raise BadRequest("the form body is not UTF-8") from err
        else:
            params.update(load_json_object(body))
    params.update(query)
    return params


def check_api_key(request: flask.Request, expected: str | None) -> None:
    """The API-key header EventBridge's connection sends; anything else is refused with 401."""
    if not api_key_matches(request.headers.get(API_KEY_HEADER, ""), expected):
        raise Unauthorized(f"missing or wrong {API_KEY_HEADER}")


def check_queue_caller(request: flask.Request, settings: Settings) -> None:
    """Who may run tasks. Deployed, Cloud Run lets only the queue's service account through (the
    function is not public); locally, only the embedded queue, which shows a key derived from the
    deployment's secret."""
    if settings.tasks.queue != "local":
        return
    if not api_key_matches(request.headers.get(QUEUE_KEY_HEADER, ""), settings.local_queue_key):
        raise Unauthorized("tasks come only from tapedeck's task queue")


def task_attempt(request: flask.Request) -> int:
    """Which run of the task this is, from 1: Cloud Tasks counts earlier dispatches in a header."""
    count = request.headers.get(ATTEMPT_HEADER, "0")
    return int(count) + 1 if count.isascii() and count.isdigit() and len(count) < 6 else 1


def read_transcription_event(event: dict[str, Any]) -> str:
    """The job name of an EventBridge "Transcribe Job State Change" event."""
    detail = event.get("detail")
    name = detail.get("TranscriptionJobName") if isinstance(detail, dict) else None
    if event.get("source") != "aws.transcribe" or not isinstance(name, str) or not name:
        raise BadRequest("not a Transcribe Job State Change event")
    return name


def serve_object(store: Any, key: str, ttl_seconds: int, download_as: str | None = None) -> Any:
    """Redirect to a fresh signed URL where the store can sign; otherwise send the bytes, answering
    range requests. With `download_as`, either way the audio comes as an attachment of that name."""
    signer = getattr(store, "signed_url", None)
    if signer is not None:
        url = signer(key, ttl_seconds, download_as) if download_as else signer(key, ttl_seconds)
        return flask.redirect(url, code=302)
    blob = store.read(key)
    if blob is None:
        raise NotFound("the audio is no longer stored")
    mimetype = "audio/wav" if key.endswith(".wav") else "audio/mpeg"
    response = flask.Response(blob.data, mimetype=mimetype, headers={"Cache-Control": "private, no-store"})
    if download_as:
        response.headers.set("Content-Disposition", "attachment", filename=download_as)
    # Range requests: a player seeks without fetching the whole recording again.
    return response.make_conditional(flask.request, accept_ranges=True, complete_length=len(blob.data))


def subpath(request: flask.Request, name: str) -> str:
    """The path below a function's own URL: `/<tid>` on Cloud Functions, `/<name>/<tid>` locally."""
    path = request.path
    if path == f"/{name}" or path.startswith(f"/{name}/"):
        path = path[len(name) + 1 :]
    return path.strip("/")


def is_secure(request: flask.Request, *, allow_loopback: bool) -> bool:
    """Whether the request came over HTTPS (Cloud Functions' front end says so in X-Forwarded-Proto).

    With `allow_loopback` (local development) a request from this machine counts too.
    """
    if request.scheme == "https" or request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip() == "https":
        return True
    return allow_loopback and request.remote_addr in ("127.0.0.1", "::1")
