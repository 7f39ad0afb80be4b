"""Vonage's webhook signature, made here with PyJWT and hashlib alone, apart from tapedeck's code.

A POST is signed over its body; a GET over its query parameters written as a JSON object in URL
order with no whitespace (Vonage API Support article 19033783342876).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from urllib.parse import parse_qsl

import flask
import jwt


def vonage_token(payload: bytes, secret: str, iat: float | None = None, alg: str = "HS256") -> str:
    claims = {
        "iat": int(iat if iat is not None else time.time()),
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(payload).hexdigest(),
        "api_key": "abcd1234",
        "application_id": str(uuid.uuid4()),
    }
    return jwt.encode(claims, secret, algorithm=alg)


def query_payload(pairs: Sequence[tuple[str, str]], escaped: bool = True) -> bytes:
    """What a GET webhook's payload_hash covers; how non-ASCII is written is unconfirmed, so both."""
    return json.dumps(dict(pairs), separators=(",", ":"), ensure_ascii=escaped).encode()


def bearer(payload: bytes, secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {vonage_token(payload, secret)}"}


def is_signed_as_vonage_signs(request: flask.Request, secret: str) -> bool:
    """Whether a received request carries a valid signature over its body (POST) or query (GET)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer":
        return False
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"])
    except jwt.InvalidTokenError:
        return False
    if request.method == "GET":
        payload = query_payload(parse_qsl(request.query_string.decode(), keep_blank_values=True))
    else:
        payload = request.get_data()
    return bool(claims.get("payload_hash") == hashlib.sha256(payload).hexdigest())
