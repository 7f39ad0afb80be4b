"""The routes file: which flow each called number gets, with that flow's settings.

YAML or JSON (JSON is read as YAML), one entry per number; `nox -s serve` writes a demo one
(`data/routes.yaml`). What an entry may hold is declared once, field by field, in
shared/config/route_fields.py: the parser takes its field names, its list and flag fields and the
routes each may be given on from there (docs/reference/routes.md is written from it too), and
checks each value here, every fault naming its number, its field and its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shared.config.route_fields import (
    BATCH_ENGINES,
    CAPTURES,
    ENGINES,
    FLOWS,
    LANGUAGES_MOST,
    MAX_RETENTION_DAYS,
    MAX_SECONDS,
    RECORDING_FORMATS,
    ROUTE_FIELDS,
    Route,
)
from shared.core.call_record import Flow
from shared.core.errors import BadRequest, ConfigError
from shared.core.identifiers import LANGUAGE_TAG, ROUTE_NUMBER, is_shaped
from shared.core.ncco import voicemail_greeting
from shared.core.payloads import split_url
from shared.core.redaction import REDACT_CHOICES, Redact
from shared.core.vocabulary import check_phrase, check_vocabulary
from shared.core.vonage_limits import (
    MP3_CHANNELS,
    RECORD_CHANNELS,
    TTS_LANGUAGES,
    check_language,
    check_phone_number,
    check_record_format,
    check_talk_text,
)

__all__ = ["Flow", "Route", "Routes", "load_routes", "parse_routes"]

_SECONDS = re.compile(r"[0-9]{1,4}", re.ASCII)
_DAYS = re.compile(r"[0-9]{1,5}", re.ASCII)
_WEBHOOK_FIELDS = ("result_webhook", "live_webhook", "recording_webhook")
_FLAGS = {"true": True, "false": False}


@dataclass(frozen=True)
class Routes:
    by_number: dict[str, Route] = field(default_factory=dict)
    default_flow: str = "stream"

    def for_number(self, number: str) -> Route:
        """The route of a called number; unlisted numbers get the default flow."""
        return self.by_number.get(number.lstrip("+")) or Route(flow=Flow(self.default_flow))


_FIELDS = {route_field.name: route_field for route_field in ROUTE_FIELDS}
_LIST_FIELDS = {route_field.name for route_field in ROUTE_FIELDS if route_field.kind == "list"}


def _fail(source: str, node: Any, message: str) -> ConfigError:
    return ConfigError(f"{source}, line {node.start_mark.line + 1}: {message}")


def _scalar(source: str, node: Any, what: str) -> str:
    import yaml

    if not isinstance(node, yaml.ScalarNode):
        raise _fail(source, node, f"{what} must be a single value")
    return str(node.value)


@dataclass
class _Entry:
    """One entry being read, so that a fault names its number, its field and the line."""

    source: str
    number: str
    number_node: Any
    nodes: dict[str, Any] = field(default_factory=dict)

    def fail(self, key: str | None, message: str, node: Any = None) -> ConfigError:
        """A fault of field `key` (None: of the entry as a whole), at `node` or the field's line."""
        at = node if node is not None else self.nodes.get(key or "", self.number_node)
        return _fail(
            self.source, at, f"route {self.number}, {key}: {message}" if key else f"route {self.number}: {message}"
        )


def _route(source: str, node: Any, number: str, number_node: Any) -> Route:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        raise _fail(source, node, f"the entry for {number} must be a mapping")
    entry = _Entry(source, number, number_node)
    values = _read_fields(entry, node)
    if "flow" not in values:
        raise entry.fail(None, "the entry has no flow")
    if values["flow"] == Flow.VOICEMAIL and not values.get("recipients"):
        raise entry.fail(None, "a voicemail entry needs at least one recipient")
    if values["flow"] == Flow.CONVERSATION:
        _check_conversation(entry, values)
    if values.get("keep_unredacted") and not values.get("redact"):
        raise entry.fail("keep_unredacted", "only a route that redacts can keep the unredacted words")
    route = Route(**values)
    for declared in ROUTE_FIELDS:
        refusal = declared.scope.refusal
        if refusal and getattr(route, declared.name) and not declared.scope.takes(route):
            raise entry.fail(declared.name, refusal)
    if route.engines and route.engine:
        raise entry.fail("engines", "give engine or engines, not both")
    if len(route.languages) == 1:
        raise entry.fail("languages", "give two or more to choose among; one is the route's language")
    if route.languages and route.language not in route.languages:
        raise entry.fail("languages", f"must include the route's language, {route.language}")
    _check_speech(entry, route)
    return _check_vocabulary(entry, route)


def _read_fields(entry: _Entry, node: Any) -> dict[str, Any]:
    """Each field of an entry, read and checked on its own."""
    values: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = _scalar(entry.source, key_node, "a field name")
        if key not in _FIELDS:
            known = ", ".join(sorted(_FIELDS))
            raise entry.fail(None, f"unknown field {key!r} (expected one of {known})", key_node)
        entry.nodes[key] = value_node
        if key in _LIST_FIELDS:
            listed = _list(entry, key, value_node)
            values[key] = tuple(Redact(kind) for kind in listed) if key == "redact" else listed
            continue
        text = _scalar(entry.source, value_node, key)
        if key == "flow":
            if text not in FLOWS:
                raise entry.fail(key, f"must be one of {', '.join(FLOWS)}, not {text!r}")
            values[key] = Flow(text)
            continue
        if key == "max_seconds":
            low, high = MAX_SECONDS
            if not is_shaped(text, _SECONDS) or not low <= int(text) <= high:
                raise entry.fail(key, f"must be a whole number from {low} to {high} (Vonage's record timeOut)")
            values[key] = int(text)
            continue
        if key == "retention_days":
            if not is_shaped(text, _DAYS) or int(text) > MAX_RETENTION_DAYS:
                most = MAX_RETENTION_DAYS
                raise entry.fail(key, f"must be a whole number of days from 0 (kept until deleted) to {most}")
            values[key] = int(text)
            continue
        if _FIELDS[key].kind == "flag":
            if text.lower() not in _FLAGS:
                raise entry.fail(key, f"must be true or false, not {text!r}")
            values[key] = _FLAGS[text.lower()]
            continue
        if key == "capture" and text not in CAPTURES:
            raise entry.fail(key, f"must be one of {', '.join(CAPTURES)}, not {text!r}")
        if key == "engine" and text not in ENGINES:
            raise entry.fail(key, f"must be one of {', '.join(ENGINES)}, not {text!r}")
        _check_value(entry, key, text)
        if key == "notice":
            if "announcement" in entry.nodes:
                raise entry.fail(key, "is the older name of announcement: give one of them", key_node)
            key = "announcement"
        elif key == "announcement" and "notice" in entry.nodes:
            raise entry.fail(key, "notice is its older name: give one of them", key_node)
        values[key] = text.lstrip("+") if key == "caller_id" else text
    return values


def _list(entry: _Entry, key: str, node: Any) -> tuple[str, ...]:
    """A list field (a single value counts as a list of one); numbers are checked as numbers."""
    import yaml

    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    values = []
    for item in items:
        text = _scalar(entry.source, item, f"a {_FIELDS[key].item}")
        if key == "redact":
            if text not in REDACT_CHOICES:
                raise entry.fail(key, f"must be some of {', '.join(REDACT_CHOICES)}, not {text!r}", item)
            if text not in values:
                values.append(text)
            continue
        if key == "vocabulary":
            values.append(" ".join(text.split()))
            continue
        if key in ("engines", "languages"):
            values.append(_listed_choice(entry, key, text, values, item))
            continue
        if key == "labels":
            if not 0 < len(text.strip()) <= 40:
                raise entry.fail(key, "a label must be 1 to 40 characters", item)
            values.append(text.strip())
            continue
        number = text.lstrip("+")
        # A party is a phone endpoint of Vonage's connect; a recipient is paged by SMS.
        fault = check_phone_number(number) if key == "connect" else None
        if fault is None and not is_shaped(number, ROUTE_NUMBER):
            fault = f"{number!r} is not a phone number (5 to 15 digits)"
        if fault is not None:
            raise entry.fail(key, fault, item)
        values.append(number)
    return tuple(values)


def _listed_choice(entry: _Entry, key: str, text: str, earlier: list[str], node: Any) -> str:
    """One of a route's engines or languages: known, given once, and no more than the most."""
    if key == "engines" and text not in BATCH_ENGINES:
        raise entry.fail(key, f"must be some of {', '.join(BATCH_ENGINES)}, not {text!r}", node)
    if key == "languages" and not is_shaped(text, LANGUAGE_TAG):
        raise entry.fail(key, f"{text!r} is not a BCP-47 tag like en-US", node)
    if text in earlier:
        raise entry.fail(key, f"{text} is given twice", node)
    most = len(BATCH_ENGINES) if key == "engines" else LANGUAGES_MOST
    if len(earlier) >= most:
        raise entry.fail(key, f"at most {most}", node)
    return text


def _check_value(entry: _Entry, key: str, text: str) -> None:
    fault = None
    if key == "language" and text not in TTS_LANGUAGES and not is_shaped(text, LANGUAGE_TAG):
        fault = f"{text!r} is not a BCP-47 tag like en-US"
    # Connect's `from`: one of the account's numbers, in E.164.
    if key == "caller_id":
        fault = check_phone_number(text.lstrip("+"))
    if key == "format" and text not in RECORDING_FORMATS:
        fault = f"must be one of {', '.join(RECORDING_FORMATS)}, not {text!r}"
    # An empty announcement is none.
    if key in ("announcement", "notice") and text:
        fault = check_talk_text(text)
    if key == "owner":
        greeting = check_talk_text(voicemail_greeting(text))
        fault = f"the greeting that names the owner {greeting}" if greeting else None
    if key in _WEBHOOK_FIELDS:
        try:
            scheme = split_url(text, key).scheme
        except BadRequest:
            scheme = ""
        if scheme not in ("https", "http"):
            fault = f"{text!r} must be an https:// URL"
    if fault is not None:
        raise entry.fail(key, fault)


def _check_conversation(entry: _Entry, values: dict[str, Any]) -> None:
    parties = values.get("connect", ())
    if not parties:
        raise entry.fail(None, "a conversation entry needs at least one number to connect")
    channels = 1 + len(parties)
    most = RECORD_CHANNELS[1]
    if channels > most:
        raise entry.fail(
            "connect",
            f"a conversation records at most {most} channels, the caller's and one per party: {len(parties)} parties",
        )
    if len(values.get("labels", ())) > channels:
        raise entry.fail("labels", f"more labels than channels (the caller plus {len(parties)})")
    if "format" not in values:
        # Vonage's own default: mp3, but wav above the two channels an mp3 holds.
        values["format"] = "wav" if channels > MP3_CHANNELS else "mp3"
    fault = check_record_format(values["format"], channels)
    if fault is not None:
        raise entry.fail("format", f"{fault} (the caller and {len(parties)} parties)")


def _check_speech(entry: _Entry, route: Route) -> None:
    """The language of what a route says: one Vonage speaks. A conversation without an announcement
    says nothing, and its language is only the transcription's."""
    speaks = route.flow == Flow.VOICEMAIL or bool(route.announcement)
    fault = check_language(route.language) if speaks else None
    if fault is not None:
        raise entry.fail("language", fault)


def _check_vocabulary(entry: _Entry, route: Route) -> Route:
    """Each phrase checked in the route's language (at its own line), the whole against the
    engines' limits; a phrase given twice is kept once."""
    import yaml

    node = entry.nodes.get("vocabulary")
    if node is None:
        return route
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    for item, phrase in zip(items, route.vocabulary, strict=True):
        fault = check_phrase(phrase, route.language)
        if fault is not None:
            raise entry.fail("vocabulary", fault, item)
    phrases = tuple(dict.fromkeys(route.vocabulary))
    fault = check_vocabulary(phrases)
    if fault is not None:
        raise entry.fail("vocabulary", fault)
    return replace(route, vocabulary=phrases)


def parse_routes(text: str, source: str, default_flow: str = "stream") -> Routes:
    """Parse and check a routes document; any fault names its line."""
    import yaml

    try:
        root = yaml.compose(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{source}{line}: not valid YAML or JSON ({getattr(err, 'problem', err)})") from err
    if root is None:
        return Routes(default_flow=default_flow)
    if not isinstance(root, yaml.MappingNode):
        raise _fail(source, root, "the routes file must map numbers to entries")
    routes: dict[str, Route] = {}
    for key_node, value_node in root.value:
        number = _scalar(source, key_node, "a number").lstrip("+")
        if not is_shaped(number, ROUTE_NUMBER):
            raise _fail(source, key_node, f"{number!r} is not a phone number (5 to 15 digits)")
        if number in routes:
            raise _fail(source, key_node, f"{number} is listed twice")
        routes[number] = _route(source, value_node, number, key_node)
    return Routes(routes, default_flow)


def load_routes(path: Path | None, default_flow: str) -> Routes:
    if path is None:
        return Routes(default_flow=default_flow)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"ROUTES_FILE {path} cannot be read: {err.strerror}") from err
    return parse_routes(text, str(path), default_flow)
