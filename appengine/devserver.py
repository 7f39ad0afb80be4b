"""The local platform: every Cloud Function at `/<name>`, the recorder at `/socket` and the recordings
browser at `/`, in one app."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import flask

from appengine.browser import browser_blueprint
from appengine.local_queue import local_dispatcher
from appengine.main import create_app
from shared.runtime.services import services_from_env

__all__ = ["FUNCTIONS_SOURCE", "create_dev_app", "load_functions"]

FUNCTIONS_SOURCE = Path(__file__).resolve().parent.parent / "functions" / "main.py"
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def load_functions(source: Path = FUNCTIONS_SOURCE) -> ModuleType:
    """Load functions/main.py by path, as functions-framework does."""
    spec = importlib.util.spec_from_file_location("tapedeck_functions", source)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def create_dev_app() -> flask.Flask:
    """The recorder app with each function of functions/main.py mounted at `/<name>`, and the
    recordings browser's pages (answering on loopback only)."""
    # The functions and the recorder share one settings object, so tokens minted by
    # `answer` verify at `/socket` even with the per-process secret of a local run.
    services = services_from_env()
    app = create_app(services.settings, services, handle_sigterm=True)
    if services.settings.tasks.queue == "local":
        # The embedded queue's worker: it calls /tasks back, as Cloud Tasks would, from this process.
        local_dispatcher(services).start()
    app.register_blueprint(browser_blueprint(services))
    functions = load_functions()
    for name in functions.__all__:
        target = getattr(functions, name)

        def view(target: Any = target, **_: Any) -> Any:
            return target(flask.request)

        app.add_url_rule(f"/{name}", name, view, methods=_METHODS)
        # Cloud Functions hands a function every path under its URL, such as /call/<tid>.
        app.add_url_rule(f"/{name}/<path:rest>", f"{name}-path", view, methods=_METHODS)
    return app
