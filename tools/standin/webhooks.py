"""Webhooks sent the way the Vonage platform sends them: JSON POSTs or GET queries, signed.

Vonage's signature is an HS256 JWT whose `payload_hash` is the SHA-256 of the payload: a POST's
body, or a GET's query parameters written as a JSON object in URL order with no whitespace
(Vonage API Support article 19033783342876). Two details are unconfirmed, so both readings can
be played: whether the object holds the parameters that were already in the webhook URL, and
whether non-ASCII values are escaped.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests

from shared.core.signatures import sign_webhook

__all__ = ["QUERY_READINGS", "WebhookSigning", "query_text", "send_webhook", "signed_headers"]

log = logging.getLogger(__name__)

# "all": every query parameter of the URL; "added": only those Vonage appended to the webhook URL.
QUERY_READINGS = ("all", "added")
# Vonage tries a webhook twice, the second time about a second later.
_ATTEMPTS = 2
_RETRY_AFTER = 1.0


@dataclass(frozen=True)
class WebhookSigning:
    """How the stand-in signs webhooks; without a secret they go unsigned."""

    secret: str | None = None
    query_reading: str = "all"
    escape_non_ascii: bool = True
    # Vonage may send a webhook unsigned after an internal error, and sends it again when the
    # answer is a 5xx: with this, each webhook's first delivery goes out unsigned.
    unsigned_first: bool = False

    def __post_init__(self) -> None:
        if self.query_reading not in QUERY_READINGS:
            raise ValueError(f"query_reading must be one of {', '.join(QUERY_READINGS)}")


def query_text(value: Any) -> str:
    """A field as a GET query carries it: strings as they are, anything else as compact JSON text
    (a GET input webhook sends `dtmf={"digits":"3","timed_out":true}`)."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def signed_headers(payload: bytes, secret: str | None) -> dict[str, str]:
    """Vonage's `Authorization: Bearer` signature of `payload`; none without a signature secret."""
    if not secret:
        return {}
    token = sign_webhook(payload, secret, time.time(), str(uuid.uuid4()))
    return {"Authorization": f"Bearer {token}"}


def _hashed_query(url: str, added: list[tuple[str, str]], signing: WebhookSigning) -> bytes:
    own = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    pairs = added if signing.query_reading == "added" else own + added
    return json.dumps(dict(pairs), separators=(",", ":"), ensure_ascii=signing.escape_non_ascii).encode()


def send_webhook(
    http: requests.Session,
    url: str,
    payload: Mapping[str, Any],
    signing: WebhookSigning,
    method: str = "POST",
) -> requests.Response:
    """Send one webhook, as a JSON POST or a GET query; with `unsigned_first`, unsigned then signed."""
    if method.upper() == "GET":
        added = [(k, query_text(v)) for k, v in payload.items()]
        target = f"{url}{'&' if '?' in url else '?'}{urlencode(added)}"
        hashed, body = _hashed_query(url, added, signing), None
    else:
        body = json.dumps(payload).encode()
        target, hashed = url, body
    kinds = ("unsigned", "signed") if signing.unsigned_first and signing.secret else ("signed",)
    for kind in kinds:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if kind == "signed":
            headers |= signed_headers(hashed, signing.secret)
        response = _request(http, method.upper(), target, body, headers)
        log.info(
            "webhook sent",
            extra={
                "url": url,
                "method": method,
                "status": payload.get("status"),
                "signed": kind == "signed",
                "http": response.status_code,
            },
        )
        if response.status_code < 500:
            break
    return response


def _request(
    http: requests.Session, method: str, url: str, body: bytes | None, headers: dict[str, str]
) -> requests.Response:
    """One delivery; a connection that fails (refused, reset) is tried once more after about a
    second, as Vonage tries an event URL twice (its troubleshooting guide)."""
    for attempt in range(_ATTEMPTS):
        try:
            return http.request(method, url, data=body, headers=headers, timeout=10)
        except requests.ConnectionError:
            if attempt + 1 == _ATTEMPTS:
                raise
            log.info("webhook connection failed, trying again", extra={"url": url})
            time.sleep(_RETRY_AFTER)
    raise AssertionError("unreachable")
