"""Structured logging: one JSON object per line, with the keys Cloud Logging reads.

Each line written while a request is handled carries `logging.googleapis.com/trace` from the
request's `X-Cloud-Trace-Context`, so Cloud Logging shows one call's lines together; a task
carries the trace of the request that queued it, and the queue hands it back on the task's
request, so the deferred steps join the same story.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from typing import Any

__all__ = ["TRACE_HEADER", "JsonFormatter", "configure_logging", "current_trace", "trace_context"]

TRACE_HEADER = "X-Cloud-Trace-Context"
# `TRACE_ID/SPAN_ID;o=OPTIONS`, of which the trace id is what Cloud Logging groups by.
_TRACE = re.compile(r"([0-9a-fA-F]{32})(?:/[0-9]{1,20})?(?:;o=[0-9])?", re.ASCII)
# The X-Cloud-Trace-Context of the request being handled, if it had one.
trace_context: ContextVar[str | None] = ContextVar("trace_context", default=None)


def current_trace(header: str | None) -> str | None:
    """The header's value if it is a well-formed trace context, else None."""
    return header if header and _TRACE.fullmatch(header) else None


# Attributes every LogRecord has; anything else came in through `extra=` and is logged as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Formats a record as `{"severity", "message", "logger", ...extra}` on one line."""

    def __init__(self, project: str | None = None) -> None:
        super().__init__()
        self.project = project

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        trace = trace_context.get()
        if trace:
            trace_id = trace.split("/", 1)[0].split(";", 1)[0]
            entry["logging.googleapis.com/trace"] = (
                f"projects/{self.project}/traces/{trace_id}" if self.project else trace_id
            )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", project: str | None = None) -> None:
    """Send every tapedeck log record to stderr as JSON lines, once per process; `project` names
    the Google Cloud project that traces belong to."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(project))
    root.addHandler(handler)
    root.setLevel(level)
