"""Webhooks sent the way the Vonage platform sends them: JSON POSTs or GET queries, signed."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import requests

from shared.signatures import sign_webhook

__all__ = ["send_webhook", "signed_headers"]

log = logging.getLogger(__name__)


def signed_headers(body: bytes, secret: str | None) -> dict[str, str]:
    """Vonage's `Authorization: Bearer` signature of `body`; none without a signature secret."""
    if not secret:
        return {}
    token = sign_webhook(body, secret, time.time(), str(uuid.uuid4()))
    return {"Authorization": f"Bearer {token}"}


def send_webhook(
    http: requests.Session, url: str, payload: Mapping[str, Any], secret: str | None, method: str = "POST"
) -> requests.Response:
    """Send one webhook: POST as a JSON body, or GET with the fields in the query (signed over an empty body)."""
    if method.upper() == "GET":
        # A query holds only strings: nested values (an input's `dtmf`) go as JSON text.
        fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in payload.items()}
        target = f"{url}{'&' if '?' in url else '?'}{urlencode(fields)}"
        response = http.get(target, headers=signed_headers(b"", secret), timeout=10)
    else:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", **signed_headers(body, secret)}
        response = http.post(url, data=body, headers=headers, timeout=10)
    log.info(
        "webhook sent",
        extra={"url": url, "method": method, "status": payload.get("status"), "http": response.status_code},
    )
    return response
