"""Identity-Aware Proxy's signed header: the facts about it, and who it says signed in.

IAP puts `x-goog-iap-jwt-assertion` on every request it lets through: an ES256 JWT signed by one
of Google's keys (a JSON object of key id to PEM at `KEYS_URL`), issued by `ISSUER`, for the
audience `/projects/PROJECT_NUMBER/apps/PROJECT_ID` on App Engine. The verifier that fetches the
keys and checks a token is `shared.runtime.iap`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ALGORITHM",
    "ASSERTION_HEADER",
    "AUDIENCE",
    "ISSUER",
    "KEYS_URL",
    "MAX_CLOCK_SKEW",
    "IapIdentity",
    "app_engine_audience",
]

ASSERTION_HEADER = "X-Goog-IAP-JWT-Assertion"
KEYS_URL = "https://www.gstatic.com/iap/verify/public_key"
ISSUER = "https://cloud.google.com/iap"
ALGORITHM = "ES256"
# Google's own samples allow 30 s of clock difference either way.
MAX_CLOCK_SKEW = 30
# An App Engine app's audience: its project number, then its project id (6 to 30 characters,
# a letter first; a domain-scoped id carries `domain:` before it).
AUDIENCE = re.compile(r"/projects/[0-9]{1,20}/apps/(?:[a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]")


def app_engine_audience(project_number: str, project_id: str) -> str:
    """The audience IAP signs for an App Engine app: `/projects/<number>/apps/<id>`."""
    audience = f"/projects/{project_number}/apps/{project_id}"
    if not AUDIENCE.fullmatch(audience):
        raise ValueError(f"{audience!r} is not an App Engine IAP audience (/projects/NUMBER/apps/PROJECT_ID)")
    return audience


@dataclass(frozen=True)
class IapIdentity:
    """Who IAP let through: the Google account's email and its stable id (`accounts.google.com:…`)."""

    email: str
    sub: str
