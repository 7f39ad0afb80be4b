"""Signed HTTP deliveries to a customer's URL: an SSRF guard, an HMAC signature, one attempt at a time.

The receiver checks `X-Tapedeck-Signature: t=<unix seconds>,v1=<hex>`, where the hex is
HMAC-SHA256(secret, "<t>." + body) and, for a GET, the body is the query string. Each attempt is
one run of a task: the task queue retries a failed one with its own backoff.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
from collections.abc import Callable, Mapping
from typing import Protocol
from urllib.parse import urlencode, urlsplit

from shared.config.settings import DeliveryPolicy
from shared.core.deliveries import DeliveryOutcome, DeliveryRequest, Encoding, delivery_state
from shared.core.errors import BadRequest

__all__ = [
    "SIGNATURE_HEADER",
    "DeliveryOutcome",
    "DeliveryRequest",
    "Encoding",
    "HttpClient",
    "check_target",
    "deliver_once",
    "delivery_state",
    "sign_delivery",
    "verify_delivery",
]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Tapedeck-Signature"
# A signature older than this is refused by verify_delivery: a replay, or a clock far off.
SIGNATURE_TOLERANCE = 300

Resolver = Callable[[str, int], list[str]]


def _resolve(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)]


class HttpResponse(Protocol):
    @property
    def status_code(self) -> int: ...


class HttpClient(Protocol):
    """What deliveries need of an HTTP client; a requests.Session fits."""

    def request(
        self,
        method: str,
        url: str,
        *,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = True,
    ) -> HttpResponse: ...


def sign_delivery(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_delivery(secret: str, header: str, body: bytes, now: float) -> bool:
    """Whether `header` signs `body` with `secret`, recently; what a receiver should check."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > SIGNATURE_TOLERANCE:
        return False
    expected = sign_delivery(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def check_target(url: str, *, allow_private: bool, resolve: Resolver = _resolve) -> None:
    """Refuse URLs a delivery must not reach: not https, or resolving to a private address.

    The address check guards against server-side request forgery into the project's network.
    """
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise BadRequest(f"{url!r} is not an {' or '.join(s + '://' for s in schemes)} URL")
    if parts.username or parts.password:
        raise BadRequest("a callback URL must not carry credentials")
    if allow_private:
        return
    try:
        port = parts.port or 443
        addresses = resolve(parts.hostname, port)
    except (OSError, ValueError) as err:
        raise BadRequest(f"the host of {url!r} cannot be resolved") from err
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global or ip.is_multicast:
            raise BadRequest(f"{parts.hostname} resolves to a private or reserved address ({ip})")


def deliver_once(
    http: HttpClient,
    policy: DeliveryPolicy,
    secret: str,
    request: DeliveryRequest,
    *,
    attempt: int,
    now: float,
    resolve: Resolver = _resolve,
) -> DeliveryOutcome:
    """Send the request's payload (GET query, POST form, or POST JSON) once, signed; a 2xx is delivered.

    Redirects are not followed: the guard checked this URL, not theirs. A URL the guard refuses
    is a permanent failure, never sent.
    """
    url, method, payload = request.url, request.method, request.payload
    try:
        check_target(url, allow_private=policy.allow_private, resolve=resolve)
    except BadRequest as err:
        return DeliveryOutcome(False, attempt, error=str(err), permanent=True)
    if method == "GET":
        body = urlencode(payload).encode()
        target = f"{url}{'&' if urlsplit(url).query else '?'}{body.decode()}"
        headers: dict[str, str] = {}
        data = None
    elif request.encoding == Encoding.FORM:
        body = urlencode(payload).encode()
        target, data = url, body
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    else:
        body = json.dumps(payload, separators=(",", ":")).encode()
        target, data = url, body
        headers = {"Content-Type": "application/json"}
    headers[SIGNATURE_HEADER] = sign_delivery(secret, int(now), body)
    try:
        response = http.request(
            method, target, data=data, headers=headers, timeout=policy.timeout, allow_redirects=False
        )
    except OSError as err:  # requests' errors are IOErrors
        log.warning("delivery failed", extra={"url": url, "attempt": attempt, "error": type(err).__name__})
        return DeliveryOutcome(False, attempt, None, type(err).__name__)
    status = int(response.status_code)
    if 200 <= status < 300:
        log.info("delivered", extra={"url": url, "attempt": attempt, "http": status})
        return DeliveryOutcome(True, attempt, status)
    log.warning("delivery failed", extra={"url": url, "attempt": attempt, "http": status})
    return DeliveryOutcome(False, attempt, status, f"HTTP {status}")
