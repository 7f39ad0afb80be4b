"""The layers of `shared/` import only inward: read from the sources' imports with ast.

core ← config ← flows, and core ← config ← adapters; runtime may import them all. Nothing
deployed imports the operator tools, and each layer has a short list of outside packages it may use.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Which of tapedeck's layers each layer may import, besides itself.
INWARD = {
    "core": set(),
    "config": {"core"},
    "flows": {"core", "config"},
    "adapters": {"core", "config"},
    "runtime": {"core", "config", "flows", "adapters"},
}
# Packages from outside the standard library each layer may import; runtime and adapters are
# where SDKs and frameworks live.
OUTSIDE = {
    "core": {"numpy", "miniaudio"},
    "config": {"yaml"},
    "flows": {"numpy"},
}
# Typing helpers are not a dependency of behaviour: any layer may use them.
TYPING = {"typing_extensions"}
# Standard library modules that mean I/O, a clock, logging or concurrency: not in the pure core.
IMPURE = {
    "logging",
    "time",
    "os",
    "sys",
    "socket",
    "pathlib",
    "threading",
    "subprocess",
    "asyncio",
    "concurrent",
    "random",
    "shutil",
    "tempfile",
    "http",
    "urllib.request",
}


def imports_of(source: str) -> set[str]:
    """Every module a source names in an import, anywhere in it (lazy and TYPE_CHECKING ones too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "shared" and parts[1] in INWARD else None


def violations(module: str, source: str) -> list[str]:
    """What `module` (dotted name) imports that its place in the tree does not allow."""
    found = []
    layer = layer_of(module)
    top = module.split(".")[0]
    for name in sorted(imports_of(source)):
        root = name.split(".")[0]
        if root == "tools" and top != "tools" and top != "tests":
            found.append(f"{module} imports {name}: tools are not deployed")
        if layer is None:
            continue
        if root == "shared":
            target = layer_of(name)
            if target is not None and target != layer and target not in INWARD[layer]:
                found.append(f"{module} ({layer}) imports {name} ({target}): outward")
        elif root in ("functions", "appengine", "tests"):
            found.append(f"{module} imports {name}: shared/ never imports an entry point or a test")
        elif root not in sys.stdlib_module_names and root != "__future__":
            if layer in OUTSIDE and root not in OUTSIDE[layer] | TYPING:
                found.append(f"{module} ({layer}) imports {name}: an outside package this layer may not use")
        elif layer == "core" and (root in IMPURE or name in IMPURE):
            found.append(f"{module} (core) imports {name}: I/O, clock or logging in the pure core")
    return found


def _modules() -> list[tuple[str, Path]]:
    found = []
    for folder in ("shared", "functions", "appengine"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found.append((dotted, path))
    return found


def test_every_deployed_module_imports_only_inward() -> None:
    modules = _modules()
    assert len([m for m, _ in modules if layer_of(m)]) > 40
    problems = [problem for module, path in modules for problem in violations(module, path.read_text())]
    assert problems == []


def test_every_module_of_shared_sits_in_a_layer() -> None:
    loose = [m for m, _ in _modules() if m.startswith("shared.") and layer_of(m) is None]
    assert loose == []


@pytest.mark.parametrize(
    ("module", "source", "complaint"),
    [
        ("shared.core.ncco", "import logging\n", "I/O, clock or logging"),
        ("shared.core.ncco", "def f():\n    import time\n", "I/O, clock or logging"),
        ("shared.core.ncco", "from shared.flows import voicemail\n", "outward"),
        ("shared.core.wav", "import flask\n", "outside package"),
        ("shared.config.settings", "from shared.flows.delivery import deliver_once\n", "outward"),
        ("shared.flows.voicemail", "from shared.adapters.outbox_messenger import OutboxMessenger\n", "outward"),
        ("shared.flows.voicemail", "from shared.runtime.services import Services\n", "outward"),
        ("shared.flows.jobs", "import boto3\n", "outside package"),
        ("shared.flows.jobs", "from google.cloud import storage\n", "outside package"),
        ("shared.adapters.gcs_blob_store", "from shared.flows.documents import update_document\n", "outward"),
        ("shared.adapters.gcs_blob_store", "from shared.runtime.logs import trace_context\n", "outward"),
        ("shared.runtime.web", "from tools.standin import VonageStandin\n", "tools are not deployed"),
        ("functions.main", "from tools.deploy import deploy_plan\n", "tools are not deployed"),
        ("shared.flows.jobs", "from tests.servers import free_port\n", "never imports an entry point"),
    ],
)
def test_the_rules_catch_an_outward_import(module: str, source: str, complaint: str) -> None:
    problems = violations(module, source)
    assert len(problems) == 1
    assert complaint in problems[0]


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("shared.core.audio", "import numpy as np\nfrom shared.core.wav import read_wav\n"),
        ("shared.flows.voicemail", "import logging\nfrom shared.config.settings import Settings\n"),
        ("shared.adapters.gcs_blob_store", "from google.cloud import storage\nfrom shared.core.ports import Blob\n"),
        ("shared.runtime.services", "from shared.adapters.local_blob_store import LocalBlobStore\n"),
        ("tools.deploy", "from shared.config.settings import Settings\n"),
    ],
)
def test_the_rules_allow_an_inward_import(module: str, source: str) -> None:
    assert violations(module, source) == []
