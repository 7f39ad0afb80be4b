"""Vonage signed webhooks: HS256 JWTs whose `payload_hash` is the SHA-256 of the body.

Verification is written against the standard library so the `answer` path stays light;
the tests cross-check it with tokens made by PyJWT.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from shared.errors import Unauthorized

__all__ = [
    "API_KEY_HEADER",
    "MAX_CLOCK_SKEW",
    "MAX_TOKEN_AGE",
    "api_key_matches",
    "sign_webhook",
    "unverified_claims",
    "verify_webhook",
]

# The header EventBridge's API-destination connection sends to the `transcription` function.
API_KEY_HEADER = "X-Tapedeck-Key"
# Vonage signs each delivery when it sends it, so an old token is a replay.
MAX_TOKEN_AGE = 300
MAX_CLOCK_SKEW = 60


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_webhook(body: bytes, secret: str, now: float, jti: str, api_key: str = "tapedeck") -> str:
    """A token shaped as Vonage signs webhooks: HS256 with iat, jti, iss and payload_hash."""
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {
        "iat": int(now),
        "jti": jti,
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        "api_key": api_key,
    }
    signing_input = f"{_b64encode(json.dumps(header).encode())}.{_b64encode(json.dumps(claims).encode())}"
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64encode(mac)}"


def api_key_matches(given: str, expected: str | None) -> bool:
    """Whether an API-key header equals the configured key (none configured: never), in constant time."""
    return bool(expected) and hmac.compare_digest(given.encode(), str(expected).encode())


def unverified_claims(token: str) -> dict[str, Any]:
    """A JWT's claims without checking its signature (for tokens someone else verifies)."""
    try:
        claims = json.loads(_b64decode(token.split(".")[1]))
    except (IndexError, ValueError, binascii.Error, UnicodeDecodeError) as err:
        raise Unauthorized("the bearer token is not a JWT") from err
    if not isinstance(claims, dict):
        raise Unauthorized("the bearer token is not a JWT")
    return claims


def verify_webhook(authorization: str | None, body: bytes, secret: str, now: float) -> dict[str, Any]:
    """Check a webhook's `Authorization: Bearer` JWT against the body; return its claims."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing Authorization: Bearer signature")
    try:
        header_part, claims_part, mac_part = token.split(".")
        header = json.loads(_b64decode(header_part))
        claims = json.loads(_b64decode(claims_part))
        mac = _b64decode(mac_part)
    except (ValueError, binascii.Error, UnicodeDecodeError) as err:
        raise Unauthorized("malformed signature token") from err
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        raise Unauthorized("signature token must be an HS256 JWT")
    expected = hmac.new(secret.encode(), f"{header_part}.{claims_part}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise Unauthorized("bad webhook signature")
    issued = claims.get("iat")
    if not isinstance(issued, int | float) or not now - MAX_TOKEN_AGE <= issued <= now + MAX_CLOCK_SKEW:
        raise Unauthorized("webhook signature is expired or not yet valid")
    payload_hash = claims.get("payload_hash")
    if not isinstance(payload_hash, str) or not hmac.compare_digest(payload_hash, hashlib.sha256(body).hexdigest()):
        raise Unauthorized("payload_hash does not match the request body")
    return claims
