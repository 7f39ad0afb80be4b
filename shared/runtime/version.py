"""Which version of tapedeck this is: pyproject.toml's, the one place it is written.

A deployed bundle has no pyproject.toml, so `nox -s deploy` writes the version into the bundle's
copy of shared/ (`shared/version.txt`); a checkout reads pyproject.toml beside shared/.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

__all__ = ["VERSION_FILE", "project_version", "tapedeck_version"]

VERSION_FILE = "version.txt"
_SHARED = Path(__file__).resolve().parents[1]


def project_version(root: Path) -> str:
    """The version in `root`/pyproject.toml."""
    with (root / "pyproject.toml").open("rb") as file:
        return str(tomllib.load(file)["project"]["version"])


@cache
def tapedeck_version() -> str:
    """The version running: the bundle's version.txt, else the checkout's pyproject.toml."""
    staged = _SHARED / VERSION_FILE
    if staged.is_file():
        return staged.read_text(encoding="utf-8").strip()
    if (_SHARED.parent / "pyproject.toml").is_file():
        return project_version(_SHARED.parent)
    return "unknown"
