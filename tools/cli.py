"""The edge of every command-line tool: a refusal the tool expects is one line on stderr, named
after the tool, and exit status 1, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["exit_status"]


def exit_status(name: str, work: Callable[[], object], refusals: tuple[type[Exception], ...]) -> int:
    """0 once `work` is done; 1, saying why on stderr as `name: why`, when it raises one of `refusals`."""
    try:
        work()
    except refusals as err:
        print(f"{name}: {err}", file=sys.stderr)
        return 1
    return 0
