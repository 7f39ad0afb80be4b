"""The pre-commit hooks run what CI runs: the same ruff, and mypy through the nox session CI's
type check shares its environment with."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def hooks() -> dict[str, dict[str, Any]]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    return {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}


def noxfile_linters() -> tuple[str, ...]:
    for node in ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "LINTERS" for t in node.targets):
            value = ast.literal_eval(node.value)
            assert isinstance(value, tuple)
            return value
    raise AssertionError("noxfile.py declares no LINTERS")


def test_the_hooks_pin_the_ruff_ci_runs() -> None:
    [ruff] = [pin for pin in noxfile_linters() if pin.startswith("ruff==")]
    found = hooks()
    for name in ("ruff-check", "ruff-format"):
        assert found[name]["additional_dependencies"] == [ruff]


def test_the_mypy_hook_runs_a_nox_session_that_exists_with_the_nox_ci_installs() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    [nox] = hooks()["mypy"]["additional_dependencies"]
    assert f'"{nox}"' in ci
    entry = hooks()["mypy"]["entry"].split()
    session = entry[entry.index("--session") + 1]
    sessions = [
        node.name
        for node in ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8")).body
        if isinstance(node, ast.FunctionDef)
        and any(isinstance(d, ast.Attribute | ast.Call) and "session" in ast.unparse(d) for d in node.decorator_list)
    ]
    assert session in sessions
