"""The routes file: which flow each called number gets, and its mailbox.

YAML or JSON (JSON is read as YAML), one entry per number:

    "447700900001":
      flow: voicemail
      owner: Sam
      recipients: ["447700900111"]
      language: en-US
      max_seconds: 120
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.errors import ConfigError

__all__ = ["FLOWS", "Route", "Routes", "load_routes", "parse_routes"]

FLOWS = ("stream", "voicemail")
_NUMBER = re.compile(r"^\d{5,15}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Z]{2})?$")
_FIELDS = {"flow", "owner", "recipients", "language", "max_seconds"}


@dataclass(frozen=True)
class Route:
    flow: str
    owner: str = ""
    recipients: tuple[str, ...] = ()
    language: str = "en-US"
    max_seconds: int = 120


@dataclass(frozen=True)
class Routes:
    by_number: dict[str, Route] = field(default_factory=dict)
    default_flow: str = "stream"

    def for_number(self, number: str) -> Route:
        """The route of a called number; unlisted numbers get the default flow."""
        return self.by_number.get(number.lstrip("+")) or Route(flow=self.default_flow)


def _fail(source: str, node: Any, message: str) -> ConfigError:
    return ConfigError(f"{source}, line {node.start_mark.line + 1}: {message}")


def _scalar(source: str, node: Any, what: str) -> str:
    import yaml

    if not isinstance(node, yaml.ScalarNode):
        raise _fail(source, node, f"{what} must be a single value")
    return str(node.value)


def _route(source: str, node: Any, number: str, number_node: Any) -> Route:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        raise _fail(source, node, f"the entry for {number} must be a mapping")
    values: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = _scalar(source, key_node, "a field name")
        if key not in _FIELDS:
            raise _fail(source, key_node, f"unknown field {key!r} (expected one of {', '.join(sorted(_FIELDS))})")
        if key == "recipients":
            items = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            recipients = tuple(_scalar(source, item, "a recipient").lstrip("+") for item in items)
            for item, recipient in zip(items, recipients, strict=True):
                if not _NUMBER.match(recipient):
                    raise _fail(source, item, f"recipient {recipient!r} is not a phone number")
            values[key] = recipients
            continue
        text = _scalar(source, value_node, key)
        if key == "flow" and text not in FLOWS:
            raise _fail(source, value_node, f"flow must be one of {', '.join(FLOWS)}, not {text!r}")
        if key == "language" and not _LANGUAGE.match(text):
            raise _fail(source, value_node, f"language {text!r} is not a BCP-47 tag like en-US")
        if key == "max_seconds":
            if not text.isdigit() or not 3 <= int(text) <= 7200:
                raise _fail(source, value_node, "max_seconds must be a whole number from 3 to 7200")
            values[key] = int(text)
            continue
        values[key] = text
    if "flow" not in values:
        raise _fail(source, number_node, f"the entry for {number} has no flow")
    if values["flow"] == "voicemail" and not values.get("recipients"):
        raise _fail(source, number_node, f"the voicemail entry for {number} needs at least one recipient")
    return Route(**values)


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
        if not _NUMBER.match(number):
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
