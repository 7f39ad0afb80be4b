"""Signed webhooks, checked against tokens made by PyJWT exactly as Vonage makes them."""

from __future__ import annotations

import hashlib
import time
import uuid

import jwt
import pytest

from shared.errors import Unauthorized
from shared.signatures import sign_webhook, verify_webhook

SECRET = "signature-secret-of-the-vonage-account-0123456789abcdef"
BODY = b'{"status": "answered", "conversation_uuid": "CON-1"}'


def vonage_token(body: bytes, secret: str = SECRET, iat: float | None = None, alg: str = "HS256") -> str:
    claims = {
        "iat": int(iat if iat is not None else time.time()),
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        "api_key": "abcd1234",
        "application_id": str(uuid.uuid4()),
    }
    return jwt.encode(claims, secret, algorithm=alg)


def test_a_vonage_signed_webhook_verifies() -> None:
    claims = verify_webhook(f"Bearer {vonage_token(BODY)}", BODY, SECRET, time.time())
    assert claims["api_key"] == "abcd1234"


def test_our_signer_makes_tokens_pyjwt_accepts() -> None:
    token = sign_webhook(BODY, SECRET, time.time(), "j1")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["payload_hash"] == hashlib.sha256(BODY).hexdigest()
    assert claims["iss"] == "Vonage"


@pytest.mark.parametrize(
    ("authorization", "match"),
    [
        (None, "missing"),
        ("Basic abc", "missing"),
        ("Bearer not.a.jwt", "malformed"),
        ("Bearer !!!", "malformed"),
        (
            f"Bearer {vonage_token(BODY, secret='forged-secret-that-is-long-enough-for-hs512-keys-0123456789abcdef')}",
            "bad webhook signature",
        ),
        (f"Bearer {vonage_token(b'other body')}", "payload_hash"),
        (f"Bearer {vonage_token(BODY, iat=time.time() - 3600)}", "expired"),
        (f"Bearer {vonage_token(BODY, iat=time.time() + 3600)}", "not yet valid"),
        (f"Bearer {vonage_token(BODY, alg='HS512')}", "HS256"),
    ],
)
def test_forged_or_stale_signatures_are_refused(authorization: str | None, match: str) -> None:
    with pytest.raises(Unauthorized, match=match):
        verify_webhook(authorization, BODY, SECRET, time.time())


def test_an_unsigned_none_algorithm_token_is_refused() -> None:
    token = jwt.encode({"iat": int(time.time()), "payload_hash": hashlib.sha256(BODY).hexdigest()}, None, "none")
    with pytest.raises(Unauthorized):
        verify_webhook(f"Bearer {token}", BODY, SECRET, time.time())
