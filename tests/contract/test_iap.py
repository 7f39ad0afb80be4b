"""The IAP assertion verifier against a key list served over HTTP on loopback, as Google serves it.

Tokens are forged with freshly made P-256 keys: what IAP signs is accepted, and every way a token
can be wrong, old, foreign or unsigned is a 401.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.core.errors import BadGateway, Unauthorized
from shared.core.iap import IapIdentity
from shared.runtime.iap import KEYS_MAX_AGE, KEYS_MIN_INTERVAL, IapVerifier
from tests.iap_keys import AUDIENCE, NOW, KeyList, claims, forge, pem


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(keys_url: str, clock: Clock) -> IapVerifier:
    return IapVerifier(AUDIENCE, keys_url, clock=clock)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_an_assertion_signed_by_iap_names_the_user(verifier: IapVerifier, key_list: KeyList) -> None:
    token = forge(key_list.keys["kid-1"])

    assert verifier.verify(token) == IapIdentity(email="sam@example.com", sub="accounts.google.com:1234567890")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"aud": "/projects/999/apps/someone-else"}, "(?i)audience"),
        ({"aud": [AUDIENCE]}, "claim format"),
        ({"iss": "https://accounts.google.com"}, "(?i)issuer"),
        ({"iss": None}, "iss"),
        ({"exp": int(NOW) - 31, "iat": int(NOW) - 631}, "expired"),
        ({"iat": int(NOW) + 31}, "not valid yet"),
        ({"nbf": int(NOW) + 31}, "not valid yet"),
        ({"email": None}, "email"),
        ({"email": ""}, "names no account"),
        ({"exp": str(int(NOW) + 60)}, "whole seconds"),
    ],
)
def test_a_token_with_the_wrong_claims_is_refused(
    verifier: IapVerifier, key_list: KeyList, changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(Unauthorized, match=reason):
        verifier.verify(forge(key_list.keys["kid-1"], **changes))


def test_thirty_seconds_of_clock_skew_are_allowed(verifier: IapVerifier, key_list: KeyList) -> None:
    key = key_list.keys["kid-1"]
    assert verifier.verify(forge(key, iat=int(NOW) + 29)).email == "sam@example.com"
    assert verifier.verify(forge(key, exp=int(NOW) - 29)).email == "sam@example.com"


def test_a_token_signed_by_another_key_under_a_known_id_is_refused(verifier: IapVerifier) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())

    with pytest.raises(Unauthorized, match="Signature verification failed"):
        verifier.verify(forge(stranger, kid="kid-1"))


def test_a_token_naming_a_key_google_does_not_list_is_refused(verifier: IapVerifier) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())

    with pytest.raises(Unauthorized, match="unknown key"):
        verifier.verify(forge(stranger, kid="kid-stranger"))


def test_an_unsigned_token_is_refused(verifier: IapVerifier) -> None:
    token = f"{_b64({'alg': 'none', 'kid': 'kid-1', 'typ': 'JWT'})}.{_b64(claims())}."

    with pytest.raises(Unauthorized, match="ES256"):
        verifier.verify(token)


def test_hs256_keyed_with_the_public_key_is_refused(verifier: IapVerifier, key_list: KeyList) -> None:
    # The old algorithm-confusion attack: an HMAC whose secret is the verifier's public key.
    public_pem = pem(key_list.keys["kid-1"]).encode()
    header = _b64({"alg": "HS256", "kid": "kid-1", "typ": "JWT"})
    signing_input = f"{header}.{_b64(claims())}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"

    with pytest.raises(Unauthorized, match="ES256"):
        verifier.verify(token)


def test_an_es256_header_over_another_algorithms_signature_is_refused(verifier: IapVerifier, key_list: KeyList) -> None:
    rsa_like = jwt.encode(claims(), "not-a-key-at-all-but-long-enough-for-hs256!", algorithm="HS256")
    _, payload, signature = rsa_like.split(".")
    token = f"{_b64({'alg': 'ES256', 'kid': 'kid-1'})}.{payload}.{signature}"

    with pytest.raises(Unauthorized):
        verifier.verify(token)


@pytest.mark.parametrize("assertion", [None, "", "garbage", "a.b.c", "....", "x" * 9000, "é.é.é"])
def test_a_missing_or_unreadable_header_is_refused(verifier: IapVerifier, assertion: str | None) -> None:
    with pytest.raises(Unauthorized):
        verifier.verify(assertion)


def test_keys_are_fetched_once_and_kept(verifier: IapVerifier, key_list: KeyList, clock: Clock) -> None:
    token = forge(key_list.keys["kid-1"], exp=int(NOW) + 10 * 3600)
    for _ in range(5):
        verifier.verify(token)
    assert key_list.fetches == 1

    clock.now += KEYS_MAX_AGE
    verifier.verify(token)
    assert key_list.fetches == 2


def test_a_rotated_key_is_fetched_when_a_token_first_names_it(
    verifier: IapVerifier, key_list: KeyList, clock: Clock
) -> None:
    verifier.verify(forge(key_list.keys["kid-1"]))
    clock.now += KEYS_MIN_INTERVAL
    new = key_list.add("kid-2")

    assert verifier.verify(forge(new, kid="kid-2", iat=int(clock.now), exp=int(clock.now) + 600)).email
    assert key_list.fetches == 2


def test_unknown_key_ids_fetch_the_keys_at_most_once_a_minute(
    verifier: IapVerifier, key_list: KeyList, clock: Clock
) -> None:
    verifier.verify(forge(key_list.keys["kid-1"]))
    stranger = ec.generate_private_key(ec.SECP256R1())
    for n in range(20):
        with pytest.raises(Unauthorized, match="unknown key"):
            verifier.verify(forge(stranger, kid=f"kid-{n + 100}"))
    assert key_list.fetches == 1

    clock.now += KEYS_MIN_INTERVAL
    with pytest.raises(Unauthorized, match="unknown key"):
        verifier.verify(forge(stranger, kid="kid-999"))
    assert key_list.fetches == 2


def test_keys_fetched_before_stay_in_use_when_google_cannot_be_reached(key_list: KeyList, clock: Clock) -> None:
    served = json.dumps({kid: pem(key) for kid, key in key_list.keys.items()}).encode()
    answers: list[bytes | OSError] = [served, OSError("connection refused")]

    def fetch(url: str, timeout: float) -> bytes:
        assert timeout <= 10
        answer = answers.pop(0) if answers else OSError("still down")
        if isinstance(answer, OSError):
            raise answer
        return answer

    verifier = IapVerifier(AUDIENCE, "https://keys.example.test", clock=clock, fetch=fetch)
    token = forge(key_list.keys["kid-1"], exp=int(NOW) + 10 * 3600)
    verifier.verify(token)
    clock.now += KEYS_MAX_AGE

    assert verifier.verify(token).email == "sam@example.com"


def test_no_keys_at_all_is_a_bad_gateway_not_a_pass(key_list: KeyList, clock: Clock) -> None:
    def fetch(url: str, timeout: float) -> bytes:
        raise OSError("no route to host")

    verifier = IapVerifier(AUDIENCE, "https://keys.example.test", clock=clock, fetch=fetch)

    with pytest.raises(BadGateway):
        verifier.verify(forge(key_list.keys["kid-1"]))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(
    st.one_of(
        st.text(max_size=300),
        st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
        st.lists(st.text(max_size=80), min_size=2, max_size=4).map(".".join),
        st.tuples(st.dictionaries(st.text(max_size=8), st.text(max_size=8)), st.binary(max_size=80)).map(
            lambda t: f"{_b64(t[0])}.{base64.urlsafe_b64encode(t[1]).decode()}.x"
        ),
        # A header that passes the first checks, over any claims and any signature bytes.
        st.tuples(st.sampled_from(["kid-1", "kid-2"]), st.binary(max_size=200), st.binary(max_size=80)).map(
            lambda t: ".".join(
                [
                    _b64({"alg": "ES256", "kid": t[0]}),
                    base64.urlsafe_b64encode(t[1]).decode().rstrip("="),
                    base64.urlsafe_b64encode(t[2]).decode().rstrip("="),
                ]
            )
        ),
    )
)
def test_any_header_value_is_accepted_or_unauthorized_never_anything_else(assertion: str) -> None:
    # A verifier whose key list is served in-process: hypothesis runs many examples per fixture.
    with contextlib.suppress(Unauthorized):
        VERIFIER.verify(assertion)


def _in_process_fetch(url: str, timeout: float) -> bytes:
    return json.dumps({"kid-1": pem(_FUZZ_KEY)}).encode()


_FUZZ_KEY = ec.generate_private_key(ec.SECP256R1())
VERIFIER = IapVerifier(AUDIENCE, "https://keys.example.test", clock=Clock(), fetch=_in_process_fetch)
