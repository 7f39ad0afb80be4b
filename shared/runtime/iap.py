"""Checking Identity-Aware Proxy's signed header, with Google's keys fetched and kept.

Only the signed `x-goog-iap-jwt-assertion` is trusted: the unsigned email header IAP also sends
could be forged by anyone who reaches the app around the proxy. google-auth's verifier does not
check the issuer and fetches the keys on every call, so this one is written on PyJWT with a cache:
the keys are fetched when first needed, again after an hour, and again when a token names a key
id not yet seen, at most once a minute however many such tokens come.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from shared.core.errors import BadGateway, TapedeckError, Unauthorized
from shared.core.iap import ALGORITHM, ISSUER, KEYS_URL, MAX_CLOCK_SKEW, IapIdentity
from shared.core.payloads import load_json_object

__all__ = ["KEYS_MAX_AGE", "KEYS_MIN_INTERVAL", "FetchKeys", "IapVerifier", "fetch_keys"]

log = logging.getLogger(__name__)

# Fetch the keys again after this long, so a key Google has retired stops being trusted.
KEYS_MAX_AGE = 3600.0
# A token with an unknown key id fetches the keys again, but no more often than this.
KEYS_MIN_INTERVAL = 60.0
# An IAP assertion is about 600 characters; one far past that is not one.
_MAX_ASSERTION_CHARS = 8192
_FETCH_TIMEOUT = 5.0
_MAX_KEYS_BYTES = 64 * 1024

# `fetch(url, timeout)` → the body of Google's key list.
FetchKeys = Callable[[str, float], bytes]


def fetch_keys(url: str, timeout: float) -> bytes:
    """GET the key list with a short timeout."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read(_MAX_KEYS_BYTES + 1)
    if len(body) > _MAX_KEYS_BYTES:
        raise ValueError(f"the key list at {url} is over {_MAX_KEYS_BYTES} bytes")
    return body


def _parse_keys(body: bytes) -> dict[str, ec.EllipticCurvePublicKey]:
    """Key id → P-256 public key; entries that are not such a key are left out."""
    listed = json.loads(body)
    if not isinstance(listed, dict):
        raise ValueError("the key list is not a JSON object")
    keys = {}
    for kid, pem in listed.items():
        if not isinstance(pem, str):
            continue
        try:
            key = load_pem_public_key(pem.encode())
        except ValueError:
            continue
        if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            keys[kid] = key
    return keys


class IapVerifier:
    """`verify(assertion)` → the identity IAP vouches for, or Unauthorized. Safe across threads."""

    def __init__(
        self,
        audience: str,
        keys_url: str = KEYS_URL,
        clock: Callable[[], float] = time.time,
        fetch: FetchKeys | None = None,
    ) -> None:
        self.audience = audience
        self.keys_url = keys_url
        self._clock = clock
        self._fetch = fetch or fetch_keys
        self._keys: Mapping[str, ec.EllipticCurvePublicKey] = {}
        self._fetched_at: float | None = None
        self._tried_at: float | None = None
        self._lock = threading.Lock()

    def verify(self, assertion: str | None) -> IapIdentity:
        if not assertion:
            raise Unauthorized("no IAP assertion: the request did not come through Identity-Aware Proxy")
        if len(assertion) > _MAX_ASSERTION_CHARS:
            raise Unauthorized("the IAP assertion is too long")
        header = _header(assertion)
        if header.get("alg") != ALGORITHM:
            raise Unauthorized(f"the IAP assertion must be signed with {ALGORITHM}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("the IAP assertion names no key")
        key = self._key(kid)
        try:
            claims = jwt.decode(
                assertion,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=ISSUER,
                # Its times are checked below against this verifier's clock, not PyJWT's.
                options={
                    "require": ["exp", "iat", "aud", "iss", "sub", "email"],
                    "strict_aud": True,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as err:
            raise Unauthorized(f"the IAP assertion is not valid: {err}") from err
        _check_times(claims, self._clock())
        return _identity(claims)

    def _key(self, kid: str) -> ec.EllipticCurvePublicKey:
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= KEYS_MAX_AGE
            unknown = kid not in self._keys
            may_retry = self._tried_at is None or now - self._tried_at >= KEYS_MIN_INTERVAL
            if (stale or unknown) and may_retry:
                self._refresh(now)
            if not self._keys:
                raise BadGateway("Google's IAP keys could not be fetched")
            key = self._keys.get(kid)
        if key is None:
            raise Unauthorized("the IAP assertion is signed by an unknown key")
        return key

    def _refresh(self, now: float) -> None:
        self._tried_at = now
        try:
            keys = _parse_keys(self._fetch(self.keys_url, _FETCH_TIMEOUT))
        except (OSError, ValueError) as err:
            # Keys fetched before stay in use until a fetch works again.
            log.warning("IAP keys not fetched", extra={"url": self.keys_url, "reason": str(err)})
            return
        self._keys, self._fetched_at = keys, now


def _header(assertion: str) -> dict[str, Any]:
    """The token's header, read strictly before anything else is trusted."""
    part, dot, _ = assertion.partition(".")
    if not dot:
        raise Unauthorized("the IAP assertion is not a JWT")
    try:
        raw = base64.urlsafe_b64decode(part.encode("ascii") + b"=" * (-len(part) % 4))
        return load_json_object(raw, "the IAP assertion's header")
    except (UnicodeEncodeError, binascii.Error, ValueError, TapedeckError) as err:
        raise Unauthorized("the IAP assertion's header is not readable") from err


def _check_times(claims: Mapping[str, Any], now: float) -> None:
    """Issued (and valid from) no later than now, expiring after now, within the clock skew."""
    times: dict[str, int] = {}
    for name in ("iat", "exp", "nbf"):
        value = claims.get(name, claims["iat"])
        # bool is an int to Python, not to JSON's readers.
        if type(value) is not int:
            raise Unauthorized("the IAP assertion's times must be whole seconds")
        times[name] = value
    if times["exp"] <= now - MAX_CLOCK_SKEW:
        raise Unauthorized("the IAP assertion has expired")
    if max(times["iat"], times["nbf"]) > now + MAX_CLOCK_SKEW:
        raise Unauthorized("the IAP assertion is not valid yet")


def _identity(claims: Mapping[str, Any]) -> IapIdentity:
    email, sub = claims.get("email"), claims.get("sub")
    if not isinstance(email, str) or not email or not isinstance(sub, str) or not sub:
        raise Unauthorized("the IAP assertion names no account")
    return IapIdentity(email=email, sub=sub)
