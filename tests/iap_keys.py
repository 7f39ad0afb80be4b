"""Identity-Aware Proxy as the tests forge it: Google's key list of P-256 keys served over HTTP,
and assertions signed with them for a signed-in user."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import flask
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shared.core.iap import ISSUER

__all__ = ["AUDIENCE", "NOW", "KeyList", "claims", "forge", "pem"]

AUDIENCE = "/projects/123456789012/apps/tapedeck-demo"
NOW = 1_800_000_000.0


def pem(key: ec.EllipticCurvePrivateKey) -> str:
    """A key's public half, as Google's key list serves it."""
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return public.decode()


@dataclass
class KeyList:
    """Google's key list as a tiny HTTP server: key id → PEM, and how often it was fetched."""

    keys: dict[str, ec.EllipticCurvePrivateKey] = field(default_factory=dict)
    fetches: int = 0

    def add(self, kid: str) -> ec.EllipticCurvePrivateKey:
        self.keys[kid] = ec.generate_private_key(ec.SECP256R1())
        return self.keys[kid]

    def app(self) -> flask.Flask:
        app = flask.Flask("iap-keys")

        @app.get("/iap/verify/public_key")
        def public_key() -> flask.Response:
            self.fetches += 1
            return flask.jsonify({kid: pem(key) for kid, key in self.keys.items()})

        return app


def claims(**changes: Any) -> dict[str, Any]:
    """What IAP signs for a signed-in user, with `changes` over it (None removes a claim)."""
    base = {
        "aud": AUDIENCE,
        "iss": ISSUER,
        "iat": int(NOW) - 10,
        "exp": int(NOW) + 590,
        "sub": "accounts.google.com:1234567890",
        "email": "sam@example.com",
        "hd": "example.com",
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def forge(key: Any, kid: str = "kid-1", algorithm: str = "ES256", **changes: Any) -> str:
    return jwt.encode(claims(**changes), key, algorithm=algorithm, headers={"kid": kid})
