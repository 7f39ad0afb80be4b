"""Vonage signed webhooks: HS256 JWTs whose `payload_hash` is the SHA-256 of the payload.

The payload of a POST is its body. The payload of a GET (the answer webhook's default) is its
query parameters written as a JSON object in URL order with no whitespace (Vonage API Support
article 19033783342876). Verification is written against the standard library so the `answer`
path stays light; the tests cross-check it with tokens made by PyJWT.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Collection, Sequence
from typing import Any

from shared.core.errors import TapedeckError, Unauthorized, Unsigned
from shared.core.payloads import TooDeep, load_json_object

__all__ = [
    "API_KEY_HEADER",
    "MAX_CLOCK_SKEW",
    "MAX_TOKEN_AGE",
    "api_key_matches",
    "query_payloads",
    "sign_webhook",
    "unverified_claims",
    "verify_webhook",
]

# The header EventBridge's API-destination connection sends to the `transcription` function.
API_KEY_HEADER = "X-Tapedeck-Key"
# Vonage signs each delivery when it sends it, so an old token is a replay.
MAX_TOKEN_AGE = 300
MAX_CLOCK_SKEW = 60
# A Vonage token is about 400 characters; one far past that is not one.
_MAX_TOKEN_CHARS = 4096


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


def query_payloads(pairs: Sequence[tuple[str, str]], own: Collection[str] = ()) -> list[bytes]:
    """What a GET webhook's `payload_hash` may be the hash of: its query as a compact JSON object.

    Two points are unconfirmed, so each reading is a candidate: how non-ASCII values are written
    (`\\u00e9` or raw UTF-8), and whether the parameters tapedeck put in the webhook URL itself
    (`own`, sealed by tapedeck separately) are part of the object or only the ones Vonage added.
    """
    candidates: list[bytes] = []
    for subset in (list(pairs), [(k, v) for k, v in pairs if k not in own]):
        for escaped in (True, False):
            payload = json.dumps(dict(subset), separators=(",", ":"), ensure_ascii=escaped).encode()
            if payload not in candidates:
                candidates.append(payload)
    return candidates


def api_key_matches(given: str, expected: str | None) -> bool:
    """Whether an API-key header equals the configured key (none configured: never), in constant time."""
    return bool(expected) and hmac.compare_digest(given.encode(), str(expected).encode())


def _token_json(part: str, what: str) -> dict[str, Any]:
    try:
        return load_json_object(_b64decode(part), what)
    except TooDeep:
        raise
    except (ValueError, binascii.Error, TapedeckError) as err:
        raise Unauthorized("malformed signature token") from err


def unverified_claims(token: str) -> dict[str, Any]:
    """A JWT's claims without checking its signature (for tokens someone else verifies)."""
    parts = token.split(".")
    if len(parts) != 3 or len(token) > _MAX_TOKEN_CHARS:
        raise Unauthorized("the bearer token is not a JWT")
    try:
        return _token_json(parts[1], "the bearer token's claims")
    except Unauthorized as err:
        raise Unauthorized("the bearer token is not a JWT") from err


def verify_webhook(authorization: str | None, payloads: Sequence[bytes], secret: str, now: float) -> dict[str, Any]:
    """Check a webhook's `Authorization: Bearer` JWT against its payload; return its claims.

    `payloads` are the readings of what was signed (one body for a POST, see `query_payloads`
    for a GET); the token's `payload_hash` must be the SHA-256 of one of them. No header at all
    raises Unsigned (Vonage retries on a 5xx); anything wrong with a header raises Unauthorized.
    """
    if not (authorization or "").strip():
        raise Unsigned("the webhook is not signed; Vonage signs every webhook, so retry it")
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token or len(token) > _MAX_TOKEN_CHARS:
        raise Unauthorized("Authorization must be a Bearer signature token")
    try:
        header_part, claims_part, mac_part = token.split(".")
        mac = _b64decode(mac_part)
    except (ValueError, binascii.Error) as err:
        raise Unauthorized("malformed signature token") from err
    header = _token_json(header_part, "the signature token's header")
    claims = _token_json(claims_part, "the signature token's claims")
    if header.get("alg") != "HS256":
        raise Unauthorized("signature token must be an HS256 JWT")
    expected = hmac.new(secret.encode(), f"{header_part}.{claims_part}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise Unauthorized("bad webhook signature")
    issued = claims.get("iat")
    if isinstance(issued, bool) or not isinstance(issued, int | float):
        raise Unauthorized("signature token has no iat")
    if not now - MAX_TOKEN_AGE <= issued <= now + MAX_CLOCK_SKEW:
        raise Unauthorized("webhook signature is expired or not yet valid")
    payload_hash = claims.get("payload_hash")
    given = payload_hash.encode() if isinstance(payload_hash, str) else b""
    if not any(hmac.compare_digest(given, hashlib.sha256(p).hexdigest().encode()) for p in payloads):
        raise Unauthorized("payload_hash does not match the request's payload")
    return claims
