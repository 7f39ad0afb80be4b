"""The staged bundles as Google builds and starts them: staged by the deploy's own code, each
bundle's requirements.txt alone installed into a virtual environment of its own, and each started
the way its platform starts it (functions-framework for a function, app.yaml's `entrypoint` for an
App Engine service).

Google installs a bundle's requirements with pip on its side. Here uv installs them, in pip's
hash-checking mode when the file carries hashes (as pip turns it on), into an environment made
from this machine's Python 3.11, the version both runtimes name.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from tools import deploy
from tools.locks import REQUIREMENTS

__all__ = [
    "BUNDLES",
    "REQUIREMENTS",
    "ROOT",
    "Bundle",
    "Staged",
    "bundle_environ",
    "bundle_venv",
    "distribution_of",
    "entrypoint",
    "gunicorn_worker_module",
    "imported_modules",
    "missing_distributions",
    "pinned",
    "plugin_sources",
    "stage_all",
    "staged_env",
]

ROOT = Path(__file__).resolve().parents[1]
# Built environments are kept here by the hash of the requirements they hold.
VENVS = Path(os.environ.get("BUNDLE_VENVS") or Path.home() / ".cache" / "tapedeck" / "bundle-venvs")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==", re.MULTILINE)
_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError"}


@dataclass(frozen=True)
class Bundle:
    """One upload folder of `nox -s deploy`: its folder under the staging root and its dependency group."""

    folder: str
    group: str


BUNDLES = {
    "functions": Bundle("functions", "functions"),
    "recorder": Bundle("appengine", "recorder"),
    "browser": Bundle("browser", "browser"),
}


@dataclass(frozen=True)
class Staged:
    """The staging folder of a dry-run deploy, and the plan it printed."""

    root: Path
    plan: str

    def folder(self, bundle: str) -> Path:
        return self.root / BUNDLES[bundle].folder

    def function_env(self, name: str) -> dict[str, str]:
        """The plain variables the plan deploys function `name` with (`--set-env-vars`)."""
        for line in self.plan.splitlines():
            words = shlex.split(line)
            if words[:4] == ["gcloud", "functions", "deploy", name]:
                flag = next((w for w in words if w.startswith("--set-env-vars=")), "--set-env-vars=")
                return _list_flag_pairs(flag.split("=", 1)[1])
        raise AssertionError(f"the plan deploys no function {name!r}")


def _list_flag_pairs(value: str) -> dict[str, str]:
    """gcloud's `a=1,b=2`, or `^D^a=1Db=2` with another delimiter D."""
    delimiter = ","
    if value.startswith("^") and value.find("^", 1) > 1:
        delimiter, value = value[1 : value.find("^", 1)], value[value.find("^", 1) + 1 :]
    pairs = (pair.split("=", 1) for pair in value.split(delimiter) if pair)
    return {name: setting for name, setting in pairs}


def stage_all(out: Path, env: dict[str, str]) -> Staged:
    """Stage every bundle with `nox -s deploy -- --dry-run`'s own code, for `env`'s settings."""
    argv = ["--dry-run", "--project", "tapedeck-test", "--region", "europe-west1", "--out", str(out)]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = deploy.main(argv, environ=env)
    assert status == 0, "the dry-run deploy failed to stage"
    return Staged(out, printed.getvalue())


# --- what a bundle imports -------------------------------------------------------------------------


def _goes_on_without(handler: ast.ExceptHandler) -> bool:
    """Whether the handler catches ImportError and carries on, rather than raising another error."""
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    catches = any(isinstance(kind, ast.Name) and kind.id in _IMPORT_ERRORS for kind in kinds)
    return catches and not any(isinstance(statement, ast.Raise) for statement in handler.body)


def _imports(node: ast.AST, optional: bool = False) -> Iterator[tuple[str, bool]]:
    """(module, optional) for each import under `node`, in functions too; an import in a `try:`
    whose handler catches ImportError and goes on is optional: the code runs without it."""
    if isinstance(node, ast.Import):
        yield from ((alias.name, optional) for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        # `from a import b` may import the module a.b; resolving tries that first.
        yield from ((f"{node.module}.{alias.name}", optional) for alias in node.names)
    elif isinstance(node, ast.Try):
        guarded = optional or any(_goes_on_without(h) for h in node.handlers)
        for statement in node.body:
            yield from _imports(statement, guarded)
        for rest in (*node.handlers, *node.orelse, *node.finalbody):
            yield from _imports(rest, optional)
    else:
        for child in ast.iter_child_nodes(node):
            yield from _imports(child, optional)


def _own_names(folder: Path) -> set[str]:
    """The top-level modules and packages a bundle carries itself."""
    modules = {path.stem for path in folder.glob("*.py")}
    return modules | {path.parent.name for path in folder.glob("*/__init__.py")}


def imported_modules(folder: Path, extra: tuple[Path, ...] = ()) -> dict[str, set[str]]:
    """Every module outside the standard library and the bundle itself that a module staged in
    `folder` (or one of `extra`, such as a server's plugin) imports, with the files importing it."""
    own = _own_names(folder)
    found: dict[str, set[str]] = {}
    sources = [*(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts), *extra]
    for source in sources:
        where = source.relative_to(folder).as_posix() if source.is_relative_to(folder) else str(source)
        for module, optional in _imports(ast.parse(source.read_text(encoding="utf-8"))):
            top = module.split(".", 1)[0]
            if optional or top in own or top in sys.stdlib_module_names or top == "__future__":
                continue
            found.setdefault(module, set()).add(where)
    return found


def _module_of(file: importlib.metadata.PackagePath) -> str | None:
    parts = file.parts
    if file.suffix == ".py":
        names = parts[:-1] if file.stem == "__init__" else (*parts[:-1], file.stem)
    elif file.suffix in (".so", ".pyd"):
        names = (*parts[:-1], file.name.split(".", 1)[0])
    else:
        return None
    if not names or any(not name.isidentifier() for name in names):
        return None
    return ".".join(names)


def _owners() -> dict[str, str]:
    """Module name -> the installed distribution that ships it (this environment's)."""
    owners: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = _canonical(dist.metadata["Name"])
        for file in dist.files or ():
            module = _module_of(file)
            if module:
                owners.setdefault(module, name)
    return owners


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distribution_of(module: str, owners: dict[str, str]) -> str | None:
    """The distribution that provides `module`, from its longest name that some distribution ships."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        owner = owners.get(".".join(parts[:end]))
        if owner:
            return owner
    return None


def pinned(requirements: str) -> set[str]:
    """The distributions a requirements file pins (`name==version`), by canonical name."""
    return {_canonical(name) for name in _PIN.findall(requirements)}


def missing_distributions(imports: dict[str, set[str]], requirements: str) -> dict[str, set[str]]:
    """Distribution (or unresolved module) -> the files whose imports need it and `requirements` lacks."""
    owners, have = _owners(), pinned(requirements)
    missing: dict[str, set[str]] = {}
    for module, files in imports.items():
        owner = distribution_of(module, owners)
        if owner not in have:
            missing.setdefault(owner or f"{module} (no installed distribution ships it)", set()).update(files)
    return missing


# --- how the platform starts a bundle ---------------------------------------------------------------


def app_yaml(folder: Path) -> dict[str, object]:
    loaded = yaml.safe_load((folder / "app.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def entrypoint(folder: Path) -> str:
    """The staged app.yaml's `entrypoint`, as App Engine runs it."""
    line = app_yaml(folder).get("entrypoint")
    assert isinstance(line, str), f"{folder}/app.yaml has no entrypoint"
    return line


def staged_env(folder: Path) -> dict[str, str]:
    """The staged app.yaml's `env_variables`, as App Engine sets them."""
    values = app_yaml(folder).get("env_variables") or {}
    assert isinstance(values, dict)
    return {str(name): str(value) for name, value in values.items()}


def gunicorn_worker_module(command: str) -> str:
    """The module of the gunicorn worker an entrypoint names, which gunicorn imports by name."""
    from gunicorn.workers import SUPPORTED_WORKERS

    words = shlex.split(command)
    worker = "sync"
    for index, word in enumerate(words):
        if word in ("-k", "--worker-class"):
            worker = words[index + 1]
        elif word.startswith("--worker-class="):
            worker = word.split("=", 1)[1]
        elif word == "--threads" and int(words[index + 1]) > 1 and worker == "sync":
            worker = "gthread"
    path = str(SUPPORTED_WORKERS.get(worker, worker))
    return path.rsplit(".", 1)[0]


def plugin_sources(folder: Path) -> tuple[Path, ...]:
    """Source files a bundle's server loads by name: the gunicorn worker its entrypoint asks for."""
    if not (folder / "app.yaml").exists():
        return ()
    spec = importlib.util.find_spec(gunicorn_worker_module(entrypoint(folder)))
    assert spec and spec.origin, "gunicorn's worker module is not installed here"
    return (Path(spec.origin),)


# --- the bundle's own environment ---------------------------------------------------------------------


def bundle_venv(requirements: Path) -> Path:
    """A virtual environment holding only `requirements` (kept by their hash); returns its bin folder."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    venv = VENVS / digest
    done = venv / "installed"
    if done.exists():
        return venv / "bin"
    if venv.exists():
        shutil.rmtree(venv)
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert uv, "uv is not installed: it is in tests/requirements.txt"
    python = venv / "bin" / "python"
    _run([uv, "venv", "--quiet", str(venv), "--python", sys.executable])
    # pip checks hashes, and requires one for every package, once any requirement carries one.
    hashes = ["--require-hashes"] if "--hash=" in requirements.read_text(encoding="utf-8") else []
    _run([uv, "pip", "install", "--quiet", *hashes, "-r", str(requirements), "--python", str(python)])
    # Written last: a build cut short is started again, never taken for a whole one.
    done.write_text(requirements.read_text(encoding="utf-8"), encoding="utf-8")
    return venv / "bin"


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, f"{shlex.join(command)} failed:\n{done.stdout}\n{done.stderr}"


def bundle_environ(bin_dir: Path, settings: dict[str, str]) -> dict[str, str]:
    """A process environment like the platform's: the bundle's own environment first on PATH, no
    repository on PYTHONPATH, and no tapedeck setting of the caller's shell, only `settings`."""
    keep = {k: v for k, v in os.environ.items() if k not in deploy.ENV_NAMES and k != "PYTHONPATH"}
    return {**keep, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", **settings}
