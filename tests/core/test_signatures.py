"""Signed webhooks, checked against tokens made by PyJWT exactly as Vonage makes them."""

from __future__ import annotations

import base64
import hashlib
import json
import time

import jwt
import pytest

from shared.core.errors import BadRequest, Unauthorized, Unsigned
from shared.core.signatures import query_payloads, sign_webhook, verify_webhook
from tests.vonage_signing import query_payload, vonage_token

SECRET = "signature-secret-of-the-vonage-account-0123456789abcdef"
BODY = b'{"status": "answered", "conversation_uuid": "CON-1"}'
# The parametrized tokens below are made when the module is collected.
MINTED = time.time()


def test_a_vonage_signed_webhook_verifies() -> None:
    claims = verify_webhook(f"Bearer {vonage_token(BODY, SECRET)}", [BODY], SECRET, time.time())
    assert claims["api_key"] == "abcd1234"


def test_our_signer_makes_tokens_pyjwt_accepts() -> None:
    token = sign_webhook(BODY, SECRET, time.time(), "j1")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["payload_hash"] == hashlib.sha256(BODY).hexdigest()
    assert claims["iss"] == "Vonage"


@pytest.mark.parametrize(
    ("authorization", "match"),
    [
        ("Basic abc", "Bearer"),
        ("Bearer", "Bearer"),
        ("Bearer not.a.jwt", "malformed"),
        ("Bearer !!!", "malformed"),
        (
            f"Bearer {vonage_token(BODY, secret='forged-secret-that-is-long-enough-for-hs512-keys-0123456789abcdef')}",
            "bad webhook signature",
        ),
        (f"Bearer {vonage_token(b'other body', SECRET)}", "payload_hash"),
        (f"Bearer {vonage_token(BODY, SECRET, iat=MINTED - 3600)}", "expired"),
        (f"Bearer {vonage_token(BODY, SECRET, iat=MINTED + 3600)}", "not yet valid"),
        (f"Bearer {vonage_token(BODY, SECRET, alg='HS512')}", "HS256"),
        ("Bearer é.ü.ß", "malformed"),
        ("Bearer " + "a" * 5000, "Bearer"),
    ],
)
def test_forged_or_stale_signatures_are_refused(authorization: str | None, match: str) -> None:
    # Checked at the moment the tokens were made: the test may run minutes after collection.
    with pytest.raises(Unauthorized, match=match):
        verify_webhook(authorization, [BODY], SECRET, MINTED)


@pytest.mark.parametrize("authorization", [None, "", "   "])
def test_no_signature_at_all_is_unsigned_not_forged(authorization: str | None) -> None:
    with pytest.raises(Unsigned) as caught:
        verify_webhook(authorization, [BODY], SECRET, time.time())
    assert caught.value.status == 503 and caught.value.headers["Retry-After"]


def test_deeply_nested_json_in_a_token_part_is_a_bad_request() -> None:
    deep = base64.urlsafe_b64encode(b"[" * 500 + b"]" * 500).rstrip(b"=").decode()
    header = base64.urlsafe_b64encode(b'{"alg":"HS256"}').rstrip(b"=").decode()
    with pytest.raises(BadRequest, match="nested"):
        verify_webhook(f"Bearer {header}.{deep}.sig", [BODY], SECRET, time.time())


QUERY = [("to", "447700900000"), ("from", "447700900123"), ("conversation_uuid", "CON-1"), ("uuid", "leg")]


def test_a_get_is_signed_over_its_query_as_compact_json_in_url_order() -> None:
    payload = b'{"to":"447700900000","from":"447700900123","conversation_uuid":"CON-1","uuid":"leg"}'
    assert query_payload(QUERY) == payload
    assert payload in query_payloads(QUERY)
    token = f"Bearer {vonage_token(payload, SECRET)}"
    assert verify_webhook(token, query_payloads(QUERY), SECRET, time.time())["iss"] == "Vonage"
    with pytest.raises(Unauthorized, match="payload_hash"):
        verify_webhook(token, query_payloads(QUERY[::-1]), SECRET, time.time())


def test_a_get_may_be_signed_with_or_without_the_url_s_own_parameters() -> None:
    own = [("tid", "t-1"), ("step", "answer"), ("sig", "seal")]
    for signed in (own + QUERY, QUERY):
        token = f"Bearer {vonage_token(query_payload(signed), SECRET)}"
        verify_webhook(token, query_payloads(own + QUERY, own=("tid", "step", "sig")), SECRET, time.time())
    # Leaving out a parameter Vonage added is never a reading: that would let it be forged.
    token = f"Bearer {vonage_token(query_payload(QUERY[1:]), SECRET)}"
    with pytest.raises(Unauthorized):
        verify_webhook(token, query_payloads(own + QUERY, own=("tid", "step", "sig")), SECRET, time.time())


def test_non_ascii_values_are_hashed_escaped_or_raw() -> None:
    pairs = [*QUERY, ("SipHeader_X-Name", "Zoë")]
    assert json.dumps("Zoë") == '"Zo\\u00eb"'
    for escaped in (True, False):
        token = f"Bearer {vonage_token(query_payload(pairs, escaped), SECRET)}"
        verify_webhook(token, query_payloads(pairs), SECRET, time.time())


def test_an_unsigned_none_algorithm_token_is_refused() -> None:
    token = jwt.encode({"iat": int(time.time()), "payload_hash": hashlib.sha256(BODY).hexdigest()}, "", "none")
    with pytest.raises(Unauthorized):
        verify_webhook(f"Bearer {token}", [BODY], SECRET, time.time())
