"""Short-lived HMAC tokens that bind a websocket stream to one conversation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from shared.core.errors import Unauthorized

__all__ = ["mint_stream_token", "sign_caller", "verify_caller", "verify_stream_token"]

_EXPIRY = re.compile(r"[0-9]{1,12}", re.ASCII)


def _same(given: str, expected: str) -> bool:
    """Constant-time equality that takes any text: compare_digest refuses non-ASCII strings."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


def _mac(secret: str, conversation_uuid: str, expires: int) -> str:
    digest = hmac.new(secret.encode(), f"{conversation_uuid}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def mint_stream_token(secret: str, conversation_uuid: str, now: float, ttl: int) -> str:
    """A token `<expiry>.<mac>` valid for `ttl` seconds, for this conversation only."""
    expires = int(now) + ttl
    return f"{expires}.{_mac(secret, conversation_uuid, expires)}"


def verify_stream_token(secret: str, conversation_uuid: str, token: str, now: float) -> None:
    """Raise Unauthorized unless `token` was minted for this conversation and has not expired."""
    expires_text, _, mac = token.partition(".")
    if not _EXPIRY.fullmatch(expires_text) or not mac:
        raise Unauthorized("malformed stream token")
    expires = int(expires_text)
    if not _same(mac, _mac(secret, conversation_uuid, expires)):
        raise Unauthorized("stream token does not match this conversation")
    if now > expires:
        raise Unauthorized("stream token has expired")


def sign_caller(secret: str, conversation_uuid: str, caller: str) -> str:
    """An HMAC over the caller's number, carried in the record eventUrl next to it.

    Vonage signs a webhook's body, not its query string, so the number needs its own seal.
    """
    digest = hmac.new(secret.encode(), f"caller:{conversation_uuid}:{caller}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def verify_caller(secret: str, conversation_uuid: str, caller: str, signature: str) -> None:
    """Raise Unauthorized unless `signature` seals `caller` (any sealed text) to this id."""
    if not _same(signature, sign_caller(secret, conversation_uuid, caller)):
        raise Unauthorized("the webhook URL's seal does not match its parameters")
