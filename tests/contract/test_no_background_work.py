"""Nothing in the Cloud Functions outlives its request: no thread, timer or pool, in the code or at run time.

On Cloud Functions an instance gets CPU only while it handles a request, so work left running after
the answer stalls. Deferred work goes on the task queue instead.
"""

from __future__ import annotations

import ast
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from shared.config.settings import Settings
from shared.core.pin_prompt import PromptRequest, new_transaction
from shared.core.tasks import QUEUE_KEY_HEADER
from shared.core.tokens import sign_caller
from shared.flows.jobs import recording_event_url
from shared.flows.pin_calls import transaction_key
from tests.servers import ROOT
from tests.testbed import TOKEN_SECRET, client
from tools.standin.api import make_application_key

# What starts work that runs on after the caller returns (a Lock or an exception class does not).
BACKGROUND = {
    "Thread",
    "Timer",
    "ThreadPoolExecutor",
    "ProcessPoolExecutor",
    "Process",
    "Pool",
    "start_new_thread",
    "scheduler",
    "ensure_future",
    "run_in_executor",
    "submit",
}


def imported(path: Path) -> set[str]:
    """Every module a source file imports, at its top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def starters(path: Path) -> set[str]:
    """The names in a source file that start background work, imported or called as attributes."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            found |= {alias.name for alias in node.names} & BACKGROUND
        elif isinstance(node, ast.Attribute) and node.attr in BACKGROUND:
            found.add(node.attr)
        elif isinstance(node, ast.Name) and node.id in BACKGROUND:
            found.add(node.id)
    return found


def function_code() -> dict[str, Path]:
    """functions/main.py and every tapedeck module it reaches, by module name."""
    found: dict[str, Path] = {}
    pending = [ROOT / "functions" / "main.py"]
    while pending:
        path = pending.pop()
        name = path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
        if name in found:
            continue
        found[name] = path
        for module in imported(path):
            if module.startswith("shared."):
                candidate = ROOT / (module.replace(".", "/") + ".py")
                if candidate.is_file():
                    pending.append(candidate)
    return found


def test_no_function_code_imports_threads_timers_or_pools() -> None:
    modules = function_code()
    assert {
        "functions.main",
        "shared.flows.pin_calls",
        "shared.runtime.task_dispatch",
        "shared.adapters.local_task_queue",
    } <= set(modules)
    offenders = {name: sorted(starters(path)) for name, path in modules.items() if starters(path)}
    assert offenders == {}


def test_the_check_finds_a_timer_and_a_pool(tmp_path: Path) -> None:
    source = tmp_path / "late.py"
    source.write_text(
        "import concurrent.futures\n"
        "def later():\n    from threading import Timer\n    Timer(5, print).start()\n"
        "pool = concurrent.futures.ThreadPoolExecutor()\n"
    )
    assert starters(source) == {"Timer", "ThreadPoolExecutor"}


def drive_every_deferring_request(tmp_path: Path, environment: Callable[..., None]) -> None:
    make_application_key(tmp_path / "application.pem")
    routes = tmp_path / "routes.yaml"
    routes.write_text('"447700900001":\n  flow: voicemail\n  owner: Sam\n  recipients: ["447700900111"]\n')
    env = {
        "ROUTES_FILE": str(routes),
        "VONAGE_APPLICATION_ID": "app",
        "VONAGE_PRIVATE_KEY": str(tmp_path / "application.pem"),
        "ALLOW_PRIVATE_CALLBACKS": "true",
        "CALLBACK_ATTEMPTS": "1",
    }
    environment(**env)
    settings = Settings.from_env({"STREAM_TOKEN_SECRET": TOKEN_SECRET, "PUBLIC_URL": "https://fn.example.test", **env})
    conversation = "CON-1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9"
    query = parse_qsl(urlsplit(recording_event_url(settings, conversation, "447700900123", "447700900001")).query)
    body = {"recording_uuid": "r-1", "recording_url": "", "size": 0, "conversation_uuid": conversation}
    assert client("recording").post("/", query_string=query, json=body).status_code == 204
    tid = "7c6b5a49-3827-4160-9f5e-4d3c2b1a0f9e"
    request = PromptRequest("447700900001", "447700900000", "PIN?", "1234", "http://127.0.0.1:1/cb")
    doc = new_transaction(tid, request, time.time(), 7).to_json() | {"status": "answered"}
    (tmp_path / "data" / "prompts").mkdir(parents=True)
    (tmp_path / "data" / transaction_key(tid)).write_text(json.dumps(doc))
    seal = sign_caller(TOKEN_SECRET, tid, "prompt-input")
    webhook = {"tid": tid, "step": "input", "sig": seal, "attempt": "1"}
    typed = {"dtmf": {"digits": "1234", "timed_out": False}}
    assert client("prompt").post("/", query_string=webhook, json=typed).status_code == 200
    seal = sign_caller(TOKEN_SECRET, tid, "prompt-event")
    event = {"status": "completed", "timestamp": "2026-11-30T10:00:00.000Z"}
    assert (
        client("prompt").post("/", query_string={"tid": tid, "step": "event", "sig": seal}, json=event).status_code
        == 204
    )
    task: dict[str, object] = {"kind": "deliver-callback", "key": tid, "payload": {}, "trace": None}
    key = {QUEUE_KEY_HEADER: settings.local_queue_key}
    assert client("tasks").post("/", json=task, headers=key).status_code == 200
    queued = sorted(p.name for p in (tmp_path / "data" / "tasks").glob("*.json"))
    assert queued == [f"deliver-callback-{tid}.json", f"settle-hangup-{tid}.json"]


def test_requests_that_defer_work_leave_no_thread_running(tmp_path: Path, environment: Callable[..., None]) -> None:
    before = set(threading.enumerate())
    drive_every_deferring_request(tmp_path, environment)
    assert set(threading.enumerate()) - before == set()
