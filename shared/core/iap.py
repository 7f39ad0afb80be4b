"""Identity-Aware Proxy's signed header: the facts about it, and who it says signed in.

IAP puts `x-goog-iap-jwt-assertion` on every request it lets through: an ES256 JWT signed by one
of Google's keys (a JSON object of key id to PEM at `KEYS_URL`), issued by `ISSUER`, for the
audience `/projects/PROJECT_NUMBER/apps/PROJECT_ID` on App Engine. The verifier that fetches the
keys and checks a token is `shared.runtime.iap`.

The assertion names one account, never the groups it is in: what the app itself can tell apart
is accounts, so the recordings browser's admins are listed as accounts (`admin_member`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ACCOUNT_KINDS",
    "ALGORITHM",
    "ASSERTION_HEADER",
    "AUDIENCE",
    "ISSUER",
    "KEYS_URL",
    "MAX_CLOCK_SKEW",
    "IapIdentity",
    "admin_member",
    "app_engine_audience",
    "is_listed",
]

ASSERTION_HEADER = "X-Goog-IAP-JWT-Assertion"
KEYS_URL = "https://www.gstatic.com/iap/verify/public_key"
ISSUER = "https://cloud.google.com/iap"
ALGORITHM = "ES256"
# Google's own samples allow 30 s of clock difference either way.
MAX_CLOCK_SKEW = 30
# An App Engine app's audience: its project number, then its project id (6 to 30 characters,
# a letter first; a domain-scoped id carries `domain:` before it).
# IAM members that are one account, so an assertion's email can be matched against them.
ACCOUNT_KINDS = ("user", "serviceAccount")
_EMAIL = re.compile(r"[^@\s,:]+@[^@\s,:]+\.[^@\s,:]+")
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


def admin_member(entry: str) -> str:
    """One admin as an IAM member: `user:sam@example.com` or `serviceAccount:…` as given, a bare
    email as `user:` it. ValueError for a group, a domain or anyone else: IAP's assertion does not
    say which groups an account is in."""
    kind, sep, email = entry.partition(":")
    if not sep:
        kind, email = "user", entry
    if kind not in ACCOUNT_KINDS or not _EMAIL.fullmatch(email):
        kinds = " or ".join(f"{k}:EMAIL" for k in ACCOUNT_KINDS)
        raise ValueError(f"{entry!r} is not one account: give an email, or {kinds} (groups cannot be checked)")
    return f"{kind}:{email}"


def is_listed(email: str, members: tuple[str, ...]) -> bool:
    """Whether the account IAP signed in is one of `members` (IAM members of one account each);
    email addresses compare without regard to case."""
    return email.casefold() in {member.partition(":")[2].casefold() for member in members}
