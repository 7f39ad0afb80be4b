"""Reading what arrives from outside: JSON and URLs, strictly and within bounds. Pure, no I/O.

Python's `json` accepts `NaN`, `Infinity`, numbers that overflow to `inf` and repeated keys, and
recurses once per nesting level; `urlsplit` raises on `https://[::1`. Each of those became a 500
somewhere; here each is a BadRequest that names what was wrong.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Protocol, Self, TypeAlias, cast, runtime_checkable
from urllib.parse import SplitResult, urlsplit

from shared.core.errors import BadRequest

__all__ = [
    "MAX_JSON_DEPTH",
    "FieldReaders",
    "FlatRecord",
    "JsonObject",
    "JsonValue",
    "StoredDocument",
    "TooDeep",
    "each",
    "load_json",
    "load_json_object",
    "split_url",
    "unknown_fields",
    "unless_none",
]

# What JSON holds, for a stored document's fields whose shape is not tapedeck's to choose.
JsonValue: TypeAlias = "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"
# How a stored document's fields are converted as read, by JSON name (see StoredDocument).
FieldReaders: TypeAlias = Mapping[str, Callable[[Any], Any]]

# Vonage's deepest payload is two levels (an input's `dtmf`); tapedeck's own documents about four.
MAX_JSON_DEPTH = 32
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def unknown_fields(doc: Mapping[str, Any], *known: str) -> JsonObject:
    """The fields of a stored document not in `known`: kept as they were, for whatever wrote them."""
    return {k: v for k, v in doc.items() if k not in known}


def _read_fields(
    doc: Mapping[str, Any],
    required: Iterable[str],
    optional: Iterable[str] = (),
    *,
    renamed: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A stored document's fields as its dataclass's keyword arguments: each `required` one, each
    `optional` one or None, under its attribute's name (`renamed` gives those that differ, as
    `from` is `from_`), and `extra`, the fields not named, kept as they were."""
    required, optional, renamed = tuple(required), tuple(optional), renamed or {}
    values = {renamed.get(name, name): doc[name] for name in required}
    values.update((renamed.get(name, name), doc.get(name)) for name in optional)
    values["extra"] = unknown_fields(doc, *required, *optional)
    return values


@runtime_checkable
class _Written(Protocol):
    def to_json(self) -> Any: ...


def _plain(value: object) -> object:
    """A field's value as JSON holds it: a nested record by its own `to_json`, a list or an object
    copied; enums stay themselves (a StrEnum is written as its string)."""
    if isinstance(value, _Written):
        return value.to_json()
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _write_fields(
    record: object,
    names: Iterable[str],
    *,
    optional: Collection[str] = (),
    renamed: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """A typed document as the JSON object stored: its fields in the order of `names`, read from
    its attributes (`renamed` as for `_read_fields`), those in `optional` left out while None or an
    empty list, then its `extra` fields as they were read."""
    renamed = renamed or {}
    doc: dict[str, object] = {}
    for name in names:
        value = getattr(record, renamed.get(name, name))
        if name not in optional or (value is not None and value != []):
            doc[name] = _plain(value)
    extra: JsonObject = getattr(record, "extra", {})
    return doc | extra


def each(read: Callable[[Any], Any]) -> Callable[[Any], list[Any]]:
    """A reader of a list field: `read` applied to each item; an absent list is empty."""
    return lambda items: [read(item) for item in items or ()]


def unless_none(read: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A reader of a field that may be null or absent: `read` applied to it when it is there."""
    return lambda value: None if value is None else read(value)


@dataclass
class StoredDocument:
    """A dataclass stored as one JSON object. A subclass names its fields in the order they are
    written, as `class CallRecord(StoredDocument, fields=..., later=...)`: `fields` are always
    there, `later` ones are None (and left out while None or empty) until set, `renamed` gives
    attributes named otherwise (`from_` for `from`), and `read` converts a field as read (an
    enum, a nested record). Fields this version does not know are kept in `extra` as they were.
    """

    extra: JsonObject = field(default_factory=dict, kw_only=True)
    _fields: ClassVar[tuple[str, ...]] = ()
    _later: ClassVar[tuple[str, ...]] = ()
    _renamed: ClassVar[Mapping[str, str]] = {}
    _read: ClassVar[FieldReaders] = {}

    def __init_subclass__(
        cls,
        *,
        fields: tuple[str, ...] = (),
        later: tuple[str, ...] = (),
        renamed: Mapping[str, str] | None = None,
        read: FieldReaders | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls._fields, cls._later, cls._renamed, cls._read = fields, later, renamed or {}, read or {}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Self:
        values = _read_fields(doc, cls._fields, cls._later, renamed=cls._renamed)
        for name, read in cls._read.items():
            attribute = cls._renamed.get(name, name)
            values[attribute] = read(values[attribute])
        return cls(**values)

    def omitted_while_none(self) -> Collection[str]:
        """The fields left out of the JSON while None or empty."""
        return self._later

    def to_json(self) -> dict[str, object]:
        names = (*self._fields, *self._later)
        return _write_fields(self, names, optional=self.omitted_while_none(), renamed=self._renamed)


class FlatRecord:
    """A dataclass stored as the JSON object of its fields, by their names, each a plain value."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Self:
        make: Any = cls
        return cast(Self, make(*(doc[field.name] for field in fields(make))))

    def to_json(self) -> dict[str, object]:
        return asdict(self)


class TooDeep(BadRequest):
    """JSON nested past MAX_JSON_DEPTH: refused before the parser recurses into it."""


def _nesting_depth(text: str) -> int:
    depth = deepest = 0
    for bracket in _BRACKET.finditer(_STRING.sub('""', text)):
        depth += 1 if bracket.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("an object repeats a key")
    return result


def load_json(data: bytes | str, what: str = "body") -> Any:
    """Parse JSON from outside: finite numbers, unique keys, at most MAX_JSON_DEPTH levels deep."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        if _nesting_depth(text) > MAX_JSON_DEPTH:
            raise TooDeep(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels")
        value = json.loads(text, parse_float=_finite, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
        # `"\ud800"` is valid JSON but no text: a lone surrogate fails wherever the value is encoded.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
        return value
    except (UnicodeError, ValueError, RecursionError) as err:
        raise BadRequest(f"{what} is not valid JSON: {str(err)[:80]}") from err


def load_json_object(data: bytes | str, what: str = "body") -> dict[str, Any]:
    """`load_json`, for input that must be one JSON object."""
    value = load_json(data, what)
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object")
    return value


def split_url(url: str, what: str = "URL") -> SplitResult:
    """The parts of an absolute URL; BadRequest for one that cannot be parsed (`https://[::1`, a bad port)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it validates the port
    except ValueError as err:
        raise BadRequest(f"{what} is not a valid URL: {err}") from err
    if not parts.scheme or not parts.hostname:
        raise BadRequest(f"{what} must be an absolute URL")
    return parts
