"""The kinds of environment variable tapedeck reads, one reader per kind of value, and the list
every declaration joins (shared/config/environment.py declares them; shared/config/settings.py
reads them into groups)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from shared.core.errors import ConfigError
from shared.core.iap import admin_member
from shared.core.vonage_limits import TALK_LIMIT, check_talk_text

__all__ = [
    "DECLARED",
    "HEADING_STARTS",
    "LOOPBACK",
    "Accounts",
    "Choice",
    "Host",
    "Seconds",
    "Speech",
    "Text",
    "Url",
    "Variable",
    "Whole",
    "heading",
    "secret_id",
]

_HOST = re.compile(r"[A-Za-z0-9.-]+(:\d+)?")
LOOPBACK = ("localhost", "127.0.0.1", "::1")
# What a URL may hold (RFC 3986): Vonage refuses an NCCO whose URLs are not URIs.
_URI = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+", re.ASCII)


def secret_id(name: str) -> str:
    """The Secret Manager secret holding a setting: `STREAM_TOKEN_SECRET` → `tapedeck-stream-token-secret`."""
    return "tapedeck-" + name.lower().replace("_", "-")


_N = TypeVar("_N", int, float)
DECLARED: list[Variable] = []
# Each heading of docs/reference/settings.md, and where its variables start in DECLARED.
HEADING_STARTS: list[tuple[str, int]] = []


def heading(title: str) -> None:
    """The variables declared from here on go under `title`."""
    HEADING_STARTS.append((title, len(DECLARED)))


@dataclass(frozen=True)
class Variable:
    """One environment variable. `secret`: deployed from Secret Manager, never as a plain variable.
    `deployed`: passed on to the deployed functions and recorder (not those the platform or a local
    run sets). `browser`: passed on to the recordings browser, which gets nothing else. `meaning`:
    what it sets, in a sentence; `unset`: what leaving it unset means, where that is not a default."""

    name: str
    secret: bool = field(default=False, kw_only=True)
    deployed: bool = field(default=True, kw_only=True)
    browser: bool = field(default=False, kw_only=True)
    meaning: str = field(kw_only=True)
    unset: str = field(default="", kw_only=True)
    # What every variable of a kind takes, in words, where that does not depend on the variable.
    takes: ClassVar[str] = ""

    def __post_init__(self) -> None:
        DECLARED.append(self)

    @property
    def deployables(self) -> tuple[str, ...]:
        """The deployables `nox -s deploy` passes it on to."""
        deployed = ("functions", "recorder") if self.deployed else ()
        return deployed + (("browser",) if self.browser else ())

    @property
    def accepts(self) -> str:
        """What values it takes, in words; empty where any text goes."""
        return self.takes

    @property
    def shown_default(self) -> str | None:
        """Its default as it would be written, or None without one."""
        value = getattr(self, "default", None)
        if value is None or value == "":
            return None
        return f"{value:g}" if isinstance(value, float) else str(value)

    @property
    def label(self) -> str:
        """How an error names it: a secret also by the Secret Manager secret it comes from."""
        return f"{self.name} (Secret Manager secret {secret_id(self.name)})" if self.secret else self.name

    def raw(self, env: Mapping[str, str]) -> str | None:
        """The value as given, or None when unset or empty."""
        return env.get(self.name) or None

    def read(self, env: Mapping[str, str]) -> Any:
        """The value, checked as its kind checks it; each kind reads its own."""
        raise NotImplementedError

    def parsed(self, env: Mapping[str, str], parse: Callable[[str], _N], noun: str) -> _N | None:
        """The value as `parse` reads it, or None when unset; one it cannot read is refused as not `noun`."""
        raw = self.raw(env)
        if raw is None:
            return None
        try:
            return parse(raw)
        except ValueError as err:
            raise ConfigError(f"{self.name} must be {noun}, got {raw!r}") from err


@dataclass(frozen=True)
class Text(Variable):
    default: str | None = None
    # The whole value's shape, when it has one, and what it looks like.
    shape: re.Pattern[str] | None = field(default=None, kw_only=True)
    why: str = field(default="", kw_only=True)

    @property
    def accepts(self) -> str:
        return f"like `{self.why}`" if self.shape is not None else ""

    def read(self, env: Mapping[str, str]) -> str | None:
        value = self.raw(env) or self.default
        if self.shape is not None and value is not None and not self.shape.fullmatch(value):
            raise ConfigError(f"{self.name} must look like {self.why}, got {value!r}")
        return value


@dataclass(frozen=True)
class Choice(Variable):
    options: tuple[str, ...] = ()
    default: str = ""
    upper: bool = field(default=False, kw_only=True)
    why: str = field(default="", kw_only=True)

    @property
    def accepts(self) -> str:
        return ", ".join(self.options) + self.why

    def read(self, env: Mapping[str, str]) -> str:
        given = self.raw(env) or self.default
        value = given.upper() if self.upper else given.lower()
        if value not in self.options:
            raise ConfigError(f"{self.name} must be one of {self.accepts}, got {env.get(self.name)!r}")
        return value


@dataclass(frozen=True)
class Speech(Variable):
    """Text Vonage reads out in a talk action, checked as Vonage checks it."""

    default: str = ""
    takes = f"text to speak, at most {TALK_LIMIT:,} characters (SSML tags not counted)"

    def read(self, env: Mapping[str, str]) -> str:
        # Checked as given: set but empty says nothing.
        value = env.get(self.name, self.default)
        fault = check_talk_text(value)
        if fault is not None:
            raise ConfigError(f"{self.name} {fault}")
        return value


@dataclass(frozen=True)
class Whole(Variable):
    """A whole number from `low` to `high`, one of `allowed`, or a positive multiple of `multiple`."""

    default: int = 0
    low: int | None = None
    high: int | None = None
    unit: str = ""
    allowed: tuple[int, ...] = field(default=(), kw_only=True)
    multiple: int | None = field(default=None, kw_only=True)
    why: str = field(default="", kw_only=True)

    @property
    def accepts(self) -> str:
        if self.allowed:
            return ", ".join(str(value) for value in self.allowed)
        if self.multiple:
            return f"a positive multiple of {self.multiple}"
        return self.span

    @property
    def span(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.low} to {self.high}{unit}{self.why}"

    def read(self, env: Mapping[str, str]) -> int:
        value = self.parsed(env, int, "a whole number")
        if value is None:
            return self.default
        if self.allowed and value not in self.allowed:
            raise ConfigError(f"{self.name} must be one of {self.allowed}, got {value}")
        if self.multiple and (value <= 0 or value % self.multiple):
            raise ConfigError(f"{self.name} must be a positive multiple of {self.multiple}, got {value}")
        if self.low is not None and self.high is not None and not self.low <= value <= self.high:
            raise ConfigError(f"{self.name} must be from {self.span}, got {value}")
        return value


@dataclass(frozen=True)
class Seconds(Variable):
    default: float = 0.0
    low: float = 0.0
    high: float = 0.0

    @property
    def accepts(self) -> str:
        return f"{self.low:g} to {self.high:g} seconds"

    def read(self, env: Mapping[str, str]) -> float:
        value = self.parsed(env, float, "a number of seconds")
        if value is None:
            return self.default
        if not self.low <= value <= self.high:
            raise ConfigError(f"{self.name} must be from {self.accepts}")
        return value


@dataclass(frozen=True)
class Url(Variable):
    """A URL of one of `schemes`. `base`: tapedeck adds paths to it, so it has no query or fragment."""

    schemes: tuple[str, ...] = ("http", "https")
    default: str | None = None
    base: bool = field(default=False, kw_only=True)

    @property
    def accepts(self) -> str:
        wanted = " or ".join(f"`{scheme}://`" for scheme in self.schemes)
        return f"{wanted} URL" + (", without query or fragment" if self.base else "")

    def read(self, env: Mapping[str, str], default: str | None = None) -> str:
        value = self.raw(env) or default or self.default or ""
        wanted = " or ".join(s + "://" for s in self.schemes)
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises on a port out of range
        except ValueError as err:
            raise ConfigError(f"{self.name} must be a {wanted} URL, got {value!r}: {err}") from err
        if parts.scheme not in self.schemes or not parts.netloc:
            raise ConfigError(f"{self.name} must be a {wanted} URL, got {value!r}")
        if not _URI.fullmatch(value):
            raise ConfigError(f"{self.name} must be a URL without spaces or characters outside RFC 3986, got {value!r}")
        if self.base and (parts.query or parts.fragment or "?" in value or "#" in value):
            raise ConfigError(f"{self.name} must have no query or fragment (tapedeck adds paths to it), got {value!r}")
        return value


@dataclass(frozen=True)
class Host(Variable):
    default: str = ""
    takes = "host[:port]"

    def read(self, env: Mapping[str, str]) -> str:
        host = self.raw(env) or self.default
        if not _HOST.fullmatch(host):
            raise ConfigError(f"{self.name} must be a {self.takes}, got {host!r}")
        return host


@dataclass(frozen=True)
class Accounts(Variable):
    """Accounts separated by commas, each an email or an IAM member of one account (`user:…`,
    `serviceAccount:…`), read as IAM members."""

    takes = "accounts separated by commas: an email, `user:EMAIL` or `serviceAccount:EMAIL` (no groups)"

    def read(self, env: Mapping[str, str]) -> tuple[str, ...]:
        entries = [part.strip() for part in (self.raw(env) or "").split(",") if part.strip()]
        try:
            return tuple(dict.fromkeys(admin_member(entry) for entry in entries))
        except ValueError as err:
            raise ConfigError(f"{self.name}: {err}") from err
