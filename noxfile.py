"""tapedeck's sessions: `nox -s serve` runs it locally, `nox -s tests` checks it."""

from __future__ import annotations

import os
import shutil
import sys
import tomllib
from pathlib import Path

import nox

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The repository is not on nox's path; these two modules are standard library only.
from tools.local_env import local_env, serve_command
from tools.locks import REQUIREMENTS, pin

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests"]

# Each exported from uv.lock by `nox -s lock`, every package pinned with its hashes.
FUNCTIONS = REQUIREMENTS["functions"]
RECORDER = REQUIREMENTS["recorder"]
BROWSER = REQUIREMENTS["browser"]
STANDIN = REQUIREMENTS["standin"]
TESTS = REQUIREMENTS["tests"]
# gcloud-tasks-emulator pins protobuf < 5, which the functions' google-cloud-tasks cannot share.
TASKS_EMULATOR = "tests/emulator-requirements.txt"
LINTERS = ("ruff==0.17.6", "mypy==2.4.1")
# The packages mypy checks: pyproject.toml's [tool.mypy] files.
MYPY_PACKAGES = tuple(tomllib.loads(Path("pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]["files"])
# The accessibility checker the browser tests run in each page.
AXE_CORE = "axe-core@4.14.1"


def _local_env(port: str) -> dict[str, str]:
    return local_env(port, os.environ)


@nox.session
def serve(session: nox.Session) -> None:
    """Run every function and the recorder on PORT (default 8080), on embedded defaults."""
    session.install("-r", FUNCTIONS, "-r", RECORDER, "-r", BROWSER, "-r", STANDIN)
    port = os.environ.get("PORT", "8080")
    env = {"PORT": port, **_local_env(port)}
    session.run("python", "-m", "tools.standin", "setup", "data")
    session.log(f"tapedeck on http://localhost:{port}: /answer, /event, /socket, /healthz")
    session.log(f"Recordings browser: http://localhost:{port}/ (answers on this machine only)")
    session.log("Storage: ./data (LOCAL_STORAGE_DIR). In another terminal, place a call:")
    session.log("  nox -s call -- --audio tests/data/voicemail_outage.wav                   (recorded stream)")
    session.log("  nox -s call -- --audio tests/data/voicemail_outage.wav --to 447700900001 (voicemail page)")
    session.log("  nox -s call -- --audio tests/data/voicemail_outage.wav --to 447700900003 (live voicemail)")
    session.log("  nox -s call -- --audio tests/data/voicemail_outage.wav --to 447700900005 (Vonage transcribes)")
    session.run(*serve_command(port), env=env)


@nox.session
def call(session: nox.Session) -> None:
    """Place a simulated inbound call against `nox -s serve`: `nox -s call -- --audio f.wav`."""
    session.install("-r", FUNCTIONS, "-r", STANDIN)
    port = os.environ.get("PORT", "8080")
    session.run("python", "-m", "tools.standin", "call", *session.posargs, env=_local_env(port))


@nox.session
def reindex(session: nox.Session) -> None:
    """Put every stored call in the recordings browser's list (once, after upgrading to it)."""
    session.install("-r", RECORDER)
    session.run("python", "-m", "appengine.reindex", *session.posargs)


@nox.session
def recover(session: nox.Session) -> None:
    """Assemble WAVs from streams whose recorder died; safe to run on a schedule."""
    session.install("-r", RECORDER)
    session.run("python", "-m", "appengine.recover", *session.posargs)


@nox.session
def sweep(session: nox.Session) -> None:
    """Run the sweep once: settle recordings whose recorder died or whose stream never came, run
    the retries asked for on the Problems page, erase calls past their retention (`-- --as-of
    2027-06-01` judges retention as of that day) and go on with requests to forget a number
    (beside `nox -s serve`, on its settings)."""
    session.install("-r", RECORDER)
    port = os.environ.get("PORT", "8080")
    session.run("python", "-m", "appengine.sweep", *session.posargs, env=_local_env(port))


@nox.session
def forget(session: nox.Session) -> None:
    """Erase every call and PIN prompt transaction of one number, everywhere:
    `nox -s forget -- --number +447700900123` (beside `nox -s serve`, on its settings)."""
    session.install("-r", RECORDER)
    port = os.environ.get("PORT", "8080")
    session.run("python", "-m", "appengine.forget", *session.posargs, env=_local_env(port))


@nox.session
def docs(session: nox.Session) -> None:
    """Write the reference pages, docs/reference/settings.md and routes.md, from the declarations of
    the settings and of the routes file's fields."""
    session.install(pin(FUNCTIONS, "pyyaml"))
    session.run("python", "-m", "tools.docs")


@nox.session(venv_backend="none")
def lock(session: nox.Session) -> None:
    """Resolve pyproject.toml's dependency groups into uv.lock and export each deployable's
    requirements.txt from it (`nox -s lock -- --upgrade` moves every pin to the newest release)."""
    session.run("uv", "lock", *session.posargs, external=True)
    session.run("python3", "-m", "tools.locks", external=True)


@nox.session
def deploy(session: nox.Session) -> None:
    """Stage functions/ + shared/ and the recorder, then run (or with --dry-run print) the gcloud commands."""
    session.run("python", "-m", "tools.deploy", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Everything CI checks: ruff, mypy --strict, then unit, storage contract and end-to-end tests."""
    session.install("-r", TESTS, *LINTERS)
    _lint(session)
    env = {"TASKS_EMULATOR_PYTHON": _tasks_emulator(session), **_axe_core(session)}
    _node_client(session)
    session.run("pytest", *session.posargs, env=env)


@nox.session
def bench(session: nox.Session) -> None:
    """Opt-in measurements: the recorder under load (`nox -s bench -- --compare`, see --help; with
    `--versus-node`, side by side with a minimal Node ws recorder, Node and npm from the machine),
    the voicemail pager's hang-up-to-page latency, then the event loop's stalls with storage
    writes and live transcription, live transcription's cost per stream (`--quick` too), what the
    Google live engine costs the recorder per stream (against the Speech stand-in), the
    recordings browser's pages at 10,000 and 100,000 calls, the audio lost per reconnect of a call
    that outlives its socket (the issue's 60 s lifetime and 200 s call unless `--quick`), and calls
    stored on Cloud Storage as it really fails (the emulator behind the fault proxy)."""
    session.install("-r", TESTS)
    session.run("python", "tests/bench/recorder_bench.py", *session.posargs)
    session.run("python", "tests/bench/pager_bench.py")
    quick = ["--quick"] if "--quick" in session.posargs else []
    session.run("python", "tests/bench/live_bench.py", *quick)
    live_streams = ["--streams", "1,4", "--seconds", "10"] if quick else []
    session.run("python", "tests/bench/google_live_bench.py", *live_streams)
    sizes = ["--calls", "1000", "--requests", "10"] if quick else []
    session.run("python", "tests/bench/browser_bench.py", *sizes)
    reconnects = ["--lifetime", "2", "--seconds", "40"] if quick else ["--lifetime", "60", "--seconds", "200", "--live"]
    session.run("python", "tests/bench/reconnect_bench.py", *reconnects)
    session.run("python", "tests/bench/storage_bench.py", *(["--streams", "5"] if quick else []))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, and mypy --strict over shared/, tools/, functions/, appengine/ and tests/ (also part of `tests`)."""
    session.install("-r", TESTS, *LINTERS)
    _lint(session)


@nox.session
def mypy(session: nox.Session) -> None:
    """mypy --strict over the packages of the files given (pre-commit passes those it commits), or
    over every package without any."""
    session.install("-r", TESTS, *LINTERS)
    packages = sorted({Path(name).parts[0] for name in session.posargs if name.endswith(".py")} & set(MYPY_PACKAGES))
    if session.posargs and not packages:
        session.skip("no package of mypy's among the files given")
    session.run("mypy", *packages)


def _axe_core(session: nox.Session) -> dict[str, str]:
    """The axe-core accessibility checker the browser tests inject into each page, from npm when
    npm is here; the tests skip that check without it."""
    folder = Path(session.virtualenv.location).parent / "axe"
    script = folder / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists() and shutil.which("npm"):
        session.run(
            "npm", "install", "--prefix", str(folder), "--no-audit", "--no-fund", "--silent", AXE_CORE, external=True
        )
    return {"AXE_CORE": str(script)} if script.exists() else {}


def _node_client(session: nox.Session) -> None:
    """Node's `ws`, the independent client the recorder's frame reader is tested against, from its
    lock file when npm is here; the test skips without it."""
    folder = Path("tests/e2e/node_client")
    if shutil.which("npm") and not (folder / "node_modules" / "ws").exists():
        session.run("npm", "ci", "--prefix", str(folder), "--no-audit", "--no-fund", "--silent", external=True)


def _tasks_emulator(session: nox.Session) -> str:
    """gcloud-tasks-emulator in a virtual environment of its own; returns that environment's python."""
    folder = Path(session.virtualenv.location).parent / "tasks-emulator"
    python = folder / "bin" / "python"
    if not python.exists():
        session.run("python", "-m", "venv", str(folder))
    session.run(
        str(python),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-r",
        TASKS_EMULATOR,
        external=True,
    )
    return str(python)


def _lint(session: nox.Session) -> None:
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session(name="aws-setup")
def aws_setup(session: nox.Session) -> None:
    """Create or update the AWS side of transcription (bucket, EventBridge connection, destination, rule)."""
    session.install("boto3==1.43.11")
    session.run("python", "-m", "tools.aws_setup", *session.posargs)


@nox.session
def prompt(session: nox.Session) -> None:
    """Place a PIN prompt call through `nox -s serve`:
    `nox -s prompt -- --to 447700900001 --pin 1234 --dtmf 1111,1234`."""
    session.install("-r", FUNCTIONS, "-r", STANDIN)
    port = os.environ.get("PORT", "8080")
    session.run("python", "-m", "tools.standin", "prompt", *session.posargs, env=_local_env(port))
