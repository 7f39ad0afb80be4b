"""Each bundle's requirements: exported from uv.lock, which is current with pyproject.toml's
dependency groups, every package pinned with hashes, and covering every import of every module
the bundle stages, plugins its server loads by name included."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.bundles import (
    BUNDLES,
    REQUIREMENTS,
    ROOT,
    gunicorn_worker_module,
    imported_modules,
    missing_distributions,
    pinned,
    plugin_sources,
)
from tools.deploy import stage_browser, stage_functions, stage_recorder
from tools.locks import exported

UV = shutil.which("uv")
needs_uv = pytest.mark.skipif(UV is None, reason="uv is not installed: `nox -s tests` installs it")


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("build")
    return {
        "functions": stage_functions(ROOT, out),
        "recorder": stage_recorder(ROOT, out),
        "browser": stage_browser(ROOT, out),
    }


@needs_uv
def test_uv_lock_is_current_with_the_declared_groups() -> None:
    assert UV
    done = subprocess.run([UV, "lock", "--check", "--offline"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"uv.lock is stale against pyproject.toml: run `nox -s lock`\n{done.stderr}"


@needs_uv
@pytest.mark.parametrize("group", sorted(REQUIREMENTS))
def test_each_requirements_file_is_what_the_lock_exports(group: str) -> None:
    assert UV
    committed = (ROOT / REQUIREMENTS[group]).read_text(encoding="utf-8")
    assert committed == exported(group, UV), f"{REQUIREMENTS[group]} is stale: run `nox -s lock`"


@pytest.mark.parametrize("group", sorted(REQUIREMENTS))
def test_every_package_is_pinned_with_its_hashes(group: str) -> None:
    text = (ROOT / REQUIREMENTS[group]).read_text(encoding="utf-8")
    entries = [e for e in text.replace("\\\n", " ").splitlines() if e.strip() and not e.lstrip().startswith("#")]
    assert entries
    for entry in entries:
        requirement = entry.split(";", 1)[0].split("--hash", 1)[0].strip()
        assert "==" in requirement and "--hash=sha256:" in entry, f"{REQUIREMENTS[group]}: {entry.strip()[:80]}"


@pytest.mark.parametrize("bundle", sorted(BUNDLES))
def test_every_import_a_bundle_stages_is_in_its_requirements(bundle: str, staged: dict[str, Path]) -> None:
    folder = staged[bundle]
    imports = imported_modules(folder, plugin_sources(folder))

    missing = missing_distributions(imports, (folder / "requirements.txt").read_text(encoding="utf-8"))

    assert missing == {}, f"{bundle}: imported but not in requirements.txt: {missing}"


def test_the_recorders_entrypoint_loads_the_gevent_worker_and_its_imports_count(staged: dict[str, Path]) -> None:
    folder = staged["recorder"]
    (worker,) = plugin_sources(folder)

    assert gunicorn_worker_module('gunicorn --worker-class gevent "app:make()"') == "gunicorn.workers.ggevent"
    assert gunicorn_worker_module("gunicorn --workers 1 --threads 8 app:app") == "gunicorn.workers.gthread"
    assert worker.name == "ggevent.py"
    assert {"gevent", "packaging.version.parse"} <= set(imported_modules(folder, (worker,)))


def test_a_missing_package_is_named_with_the_files_that_import_it(staged: dict[str, Path]) -> None:
    """The recorder's requirements as they were before they were exported from the lock: no numpy
    (shared/core imports it) and no packaging (gunicorn's gevent worker imports it)."""
    folder = staged["recorder"]
    before = "\n".join(
        f"{name}==1"
        for name in sorted(pinned((folder / "requirements.txt").read_text(encoding="utf-8")))
        if name not in ("numpy", "packaging")
    )

    missing = missing_distributions(imported_modules(folder, plugin_sources(folder)), before)

    assert set(missing) == {"numpy", "packaging"}
    assert "shared/core/message_end.py" in missing["numpy"]
    assert any(file.endswith("ggevent.py") for file in missing["packaging"])


def test_an_import_guarded_by_import_error_is_optional_and_one_inside_a_function_is_not(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(
        "try:\n    import not_a_package\nexcept ImportError:\n    pass\n"
        "try:\n    import needed\nexcept ImportError:\n    raise RuntimeError('needed')\n"
        "def later():\n    import numpy.typing\n    from yaml import safe_load\n"
    )

    assert set(imported_modules(tmp_path)) == {"needed", "numpy.typing", "yaml.safe_load"}
