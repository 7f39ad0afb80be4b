"""Each deployable's requirements.txt, exported from uv.lock: every package pinned, with hashes.

`python -m tools.locks` (what `nox -s lock` runs after `uv lock`) writes them; `--check` says which
are stale instead. The declaration is `[dependency-groups]` in pyproject.toml, and uv.lock resolves
every group together, so a package has one version in every bundle and in the tests. Standard
library only, and `uv` on PATH.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["REQUIREMENTS", "ROOT", "export_command", "exported", "pin", "stale"]

ROOT = Path(__file__).resolve().parents[1]
# Dependency group -> the requirements file exported from it, relative to the repository.
REQUIREMENTS = {
    "functions": "functions/requirements.txt",
    "recorder": "appengine/requirements.txt",
    "browser": "appengine/requirements-browser.txt",
    "standin": "tools/standin/requirements.txt",
    "tests": "tests/requirements.txt",
}


def export_command(group: str, uv: str = "uv") -> list[str]:
    """The uv command that prints `group`'s requirements from uv.lock, without touching the lock."""
    return [uv, "export", "--frozen", "--only-group", group, "--no-emit-project", "--no-header", "--quiet"]


def exported(group: str, uv: str = "uv", root: Path = ROOT) -> str:
    """`group`'s requirements as uv.lock has them now, headed by how to remake them."""
    done = subprocess.run(export_command(group, uv), cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"uv export of {group} failed: {done.stderr.strip()}")
    head = f"# Exported from uv.lock (group {group!r} of pyproject.toml) by `nox -s lock`; do not edit.\n"
    return head + done.stdout


def pin(requirements: str, package: str, root: Path = ROOT) -> str:
    """`package==version` as the requirements file `requirements` (relative to `root`) pins it, for a
    session that needs that one package at the version a bundle deploys with."""
    for line in (root / requirements).read_text(encoding="utf-8").splitlines():
        name, pinned, rest = line.partition("==")
        if pinned and name.strip().lower() == package.lower():
            return f"{name.strip()}=={rest.split()[0]}"
    raise KeyError(f"{requirements} does not pin {package}")


def stale(uv: str = "uv", root: Path = ROOT) -> list[str]:
    """The requirements files that differ from what uv.lock exports."""
    return [path for group, path in REQUIREMENTS.items() if _read(root / path) != exported(group, uv, root)]


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.locks", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="list stale files and exit 1 instead of writing")
    args = parser.parse_args(argv)
    uv = shutil.which("uv")
    if uv is None:
        print("locks: uv is not on PATH (pip install uv)", file=sys.stderr)
        return 2
    if args.check:
        old = stale(uv)
        for path in old:
            print(f"locks: {path} is stale: run `nox -s lock`", file=sys.stderr)
        return 1 if old else 0
    for group, path in REQUIREMENTS.items():
        (ROOT / path).write_text(exported(group, uv), encoding="utf-8")
        print(f"locks: wrote {path} from group {group!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
