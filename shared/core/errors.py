"""One error base for tapedeck, each subclass carrying the HTTP status it maps to."""

from __future__ import annotations

__all__ = [
    "BadGateway",
    "BadRequest",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "Gone",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionFailed",
    "TapedeckError",
    "Unauthorized",
    "Unsigned",
]


class TapedeckError(Exception):
    """Base of every error tapedeck raises on purpose; `status` is its HTTP status. A subclass names
    its own in its header: `class Gone(TapedeckError, status=410)`."""

    status = 500
    # Whether the message may reach the caller even for a 5xx (a 5xx otherwise says "internal error").
    public = False
    headers: dict[str, str] = {}  # noqa: RUF012 - read-only defaults, overridden per class

    def __init_subclass__(cls, *, status: int | None = None, public: bool | None = None) -> None:
        super().__init_subclass__()
        cls.status = cls.status if status is None else status
        cls.public = cls.public if public is None else public


class ConfigError(TapedeckError):
    """A setting is missing or malformed; raised at start-up."""


class BadRequest(TapedeckError, status=400):
    """The request is malformed; `fields` says what is wrong with each named field."""

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        # What is wrong with each named field, for a client to show.
        self.fields = fields or {}


class Unauthorized(TapedeckError, status=401):
    """No credentials, or wrong ones."""


class Forbidden(TapedeckError, status=403):
    """Credentials that may not do this."""


class NotFound(TapedeckError, status=404):
    """Nothing of that name."""


class MethodNotAllowed(TapedeckError, status=405):
    """Not an HTTP method this endpoint answers."""


class Conflict(TapedeckError, status=409):
    """The request clashes with the state of what it works on."""


class Gone(TapedeckError, status=410):
    """It was there, and has been erased or has expired."""


class PreconditionFailed(TapedeckError, status=412):
    """The object a request works on kept changing under it (storage's StorageConflict, at the boundary)."""


class PayloadTooLarge(TapedeckError, status=413):
    """More than this endpoint takes."""


class BadGateway(TapedeckError, status=502, public=True):
    """An upstream service (Vonage) refused or failed; its reason is safe to pass on."""


class Unsigned(TapedeckError, status=503, public=True):
    """A webhook came without Vonage's signature while signing is required.

    Vonage may send a webhook unsigned after an internal error of its own, and retries it when
    answered with a 5xx, so this is a 503 with Retry-After and not a 401 (which it never retries).
    """

    headers = {"Retry-After": "5"}  # noqa: RUF012
