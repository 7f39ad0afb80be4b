"""Many gcloud commands in one start-up, for the tests: run by gcloud's own launcher in place of its
lib/gcloud.py (`CLOUDSDK_PYTHON_ARGS=<this file> gcloud`), which it then gets as its last argument.

gcloud spends about a second importing itself before it reads a command line. Here that import
happens once; each job then runs in a forked child, a command line through gcloud.py's own
`main()`, so it is parsed and run as `gcloud ...` would run it, with its exit status and output.
A job is a command line (`{"argv": [...]}`, without the leading `gcloud`) or an app.yaml
(`{"app_yaml": path}`) put through the checks `gcloud app deploy` makes before it needs
credentials. Reads `{"jobs": [...], "parallel": n, "timeout": seconds}` on standard input and
writes `[{"status": n, "stdout": ..., "stderr": ...}, ...]`, one per job in order, on standard
output. Every job reads an empty standard input; one still running after `timeout` is killed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import tempfile
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

# A child that crashed outside gcloud's own handling (sysexits' EX_SOFTWARE).
CRASHED = 70


def load_gcloud(gcloud_py: str) -> ModuleType:
    """gcloud.py as a module, with gcloud itself imported as its `main()` would."""
    spec = importlib.util.spec_from_file_location("gcloud", gcloud_py)
    assert spec is not None and spec.loader is not None, gcloud_py
    gcloud = importlib.util.module_from_spec(spec)
    sys.modules["gcloud"] = gcloud
    spec.loader.exec_module(gcloud)
    sys.path = gcloud.reorder_sys_path(sys.path)
    gcloud._fix_google_module()
    # Built once here and thrown away, so the imports every command's own CLI needs are made once.
    gcloud._import_gcloud_main().CreateCLI([])
    return gcloud


def check_app_yaml(path: str) -> None:
    """Parse and validate an app.yaml as `gcloud app deploy` does before it asks for an account;
    print the services it would deploy."""
    from googlecloudsdk.command_lib.app import deployables, staging

    with tempfile.TemporaryDirectory() as area:
        try:
            found, _ = deployables.GetDeployables([path], staging.GetStager(area), deployables.GetPathMatchers())
        except Exception as err:
            print(f"ERROR: {type(err).__name__}: {err}", file=sys.stderr)
            sys.exit(1)
    services = [{"service": s.service_id, "env": s.service_info.env.name, "runtime": s.service_info.runtime}
                for s in found]  # fmt: skip
    json.dump(services, sys.stdout)


def run_job(gcloud: ModuleType, job: dict[str, Any]) -> int:
    try:
        if "argv" in job:
            sys.argv = ["gcloud", *job["argv"]]
            gcloud.main()
        else:
            check_app_yaml(job["app_yaml"])
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else int(done.code is not None)
    except BaseException:
        traceback.print_exc()
        return CRASHED
    return 0


def start(gcloud: ModuleType, job: dict[str, Any], out: Path, timeout: int) -> int:
    """Fork a child that runs `job` with empty stdin and its output in `out`.*; returns its pid."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    status = CRASHED
    try:
        signal.alarm(timeout)
        for fd, name, flags in ((0, os.devnull, os.O_RDONLY), (1, f"{out}.out", os.O_WRONLY | os.O_CREAT),
                                (2, f"{out}.err", os.O_WRONLY | os.O_CREAT)):  # fmt: skip
            opened = os.open(name, flags, 0o600)
            os.dup2(opened, fd)
            os.close(opened)
        status = run_job(gcloud, job)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def main() -> None:
    gcloud_py = sys.argv[-1]
    # As when Python runs gcloud.py itself: its folder, not this one, first on the path.
    sys.path[0] = str(Path(gcloud_py).parent)
    # The launcher's arguments would otherwise reach any Python that gcloud starts itself.
    os.environ.pop("CLOUDSDK_PYTHON_ARGS", None)
    request = json.load(sys.stdin)
    jobs: list[dict[str, Any]] = request["jobs"]
    gcloud = load_gcloud(gcloud_py)
    results: list[dict[str, Any]] = [{} for _ in jobs]
    with tempfile.TemporaryDirectory() as outputs:
        waiting = list(enumerate(jobs))
        running: dict[int, tuple[int, Path]] = {}
        while waiting or running:
            while waiting and len(running) < request["parallel"]:
                index, job = waiting.pop(0)
                out = Path(outputs) / str(index)
                running[start(gcloud, job, out, request["timeout"])] = (index, out)
            pid, wait_status = os.wait()
            index, out = running.pop(pid)
            results[index] = {
                "status": os.waitstatus_to_exitcode(wait_status),
                "stdout": Path(f"{out}.out").read_text(errors="replace"),
                "stderr": Path(f"{out}.err").read_text(errors="replace"),
            }
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
