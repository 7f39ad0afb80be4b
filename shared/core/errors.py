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
    """Base of every error tapedeck raises on purpose; `status` is its HTTP status."""

    status = 500
    # Whether the message may reach the caller even for a 5xx (a 5xx otherwise says "internal error").
    public = False
    headers: dict[str, str] = {}  # noqa: RUF012 - read-only defaults, overridden per class


class ConfigError(TapedeckError):
    """A setting is missing or malformed; raised at start-up."""


class BadRequest(TapedeckError):
    status = 400

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        # What is wrong with each named field, for a client to show.
        self.fields = fields or {}


class Unauthorized(TapedeckError):
    status = 401


class Forbidden(TapedeckError):
    status = 403


class NotFound(TapedeckError):
    status = 404


class MethodNotAllowed(TapedeckError):
    status = 405


class Conflict(TapedeckError):
    status = 409


class Gone(TapedeckError):
    status = 410


class PreconditionFailed(TapedeckError):
    """The object a request works on kept changing under it (storage's StorageConflict, at the boundary)."""

    status = 412


class PayloadTooLarge(TapedeckError):
    status = 413


class BadGateway(TapedeckError):
    """An upstream service (Vonage) refused or failed; its reason is safe to pass on."""

    status = 502
    public = True


class Unsigned(TapedeckError):
    """A webhook came without Vonage's signature while signing is required.

    Vonage may send a webhook unsigned after an internal error of its own, and retries it when
    answered with a 5xx, so this is a 503 with Retry-After and not a 401 (which it never retries).
    """

    status = 503
    public = True
    headers = {"Retry-After": "5"}  # noqa: RUF012
