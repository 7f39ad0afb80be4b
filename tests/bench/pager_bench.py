"""Hang-up-to-page latency of the voicemail pager on the embedded path, with the task queue in it.

    python tests/bench/pager_bench.py [--runs 5] [--model devserver|frozen|live|all]

The Vonage stand-in records a 9.4-second message and posts the recording webhook; the recording
function stores it and queues its transcription; the embedded task queue calls the `tasks`
function back, which transcribes (pocketsphinx) and pages (outbox). Two models, side by side:

- devserver: every function and the queue's worker in one process (`nox -s serve`);
- frozen: each function in its own functions-framework process, frozen between requests as
  Cloud Run does, and the queue's worker in a process of its own.

Latency is from the recording webhook's post (the end of recording) to the moment the page is
handed to the messenger (the outbox entry's `sent_at`), one clock on one machine.
Target: median <= 2 s for a 10 s message.

- live: a live voicemail (`capture: stream`, LIVE_TRANSCRIBER=pocketsphinx) in one process; the
  caller speaks the message in real time over the websocket and hangs up. Latency is from the
  socket's close to the page's `sent_at`. Target: median <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from shared.adapters.local_blob_store import LocalBlobStore  # noqa: E402
from tests.frozen import frozen_platform, local_queue  # noqa: E402
from tests.servers import free_port, gunicorn_command, running  # noqa: E402
from tools.standin import VonageStandin  # noqa: E402
from tools.standin.api import StandinApi, make_application_key, public_key_of  # noqa: E402

MAILBOX = "447700900001"
AUDIO = ROOT / "tests" / "data" / "voicemail_outage.wav"
ROUTES = f'"{MAILBOX}":\n  flow: voicemail\n  owner: Sam\n  recipients: ["447700900111"]\n'
TARGETS = {"devserver": 2.0, "frozen": 2.0, "live": 1.0}


@contextmanager
def devserver(env: dict[str, str], tmp: Path) -> Iterator[None]:
    port = env["PUBLIC_URL"].rsplit(":", 1)[1]
    command = gunicorn_command("appengine.devserver:create_dev_app()", int(port), worker="gthread")
    with running(command, env, f"{env['PUBLIC_URL']}/healthz", tmp / "server.log"):
        yield


@contextmanager
def frozen(env: dict[str, str], tmp: Path) -> Iterator[None]:
    with ExitStack() as stack:
        stack.enter_context(frozen_platform(["answer", "event", "recording", "tasks"], env, tmp))
        stack.enter_context(local_queue(env, tmp))
        yield


MODELS = {"devserver": devserver, "frozen": frozen, "live": devserver}


def measure(model: str, runs: int) -> list[float] | None:
    """Hang-up-to-page latencies of `runs` messages (after one warm-up), or None if a page never came."""
    with tempfile.TemporaryDirectory(prefix="tapedeck-pager-") as folder:
        tmp = Path(folder)
        key = make_application_key(tmp / "application.pem")
        (tmp / "routes.yaml").write_text(ROUTES + ("  capture: stream\n" if model == "live" else ""))
        api = StandinApi(public_key_of(key))
        with api.serving("127.0.0.1", free_port()) as api_base:
            env = {
                "LOCAL_STORAGE_DIR": str(tmp / "data"),
                "STREAM_TOKEN_SECRET": "bench",
                "PUBLIC_URL": f"http://127.0.0.1:{free_port()}",
                "ROUTES_FILE": str(tmp / "routes.yaml"),
                "VONAGE_API_HOST": api_base.removeprefix("http://"),
                "VONAGE_APPLICATION_ID": "standin-application",
                "VONAGE_PRIVATE_KEY": str(tmp / "application.pem"),
                "LOG_LEVEL": "WARNING",
            }
            if model == "live":
                port = env["PUBLIC_URL"].rsplit(":", 1)[1]
                env |= {"LIVE_TRANSCRIBER": "pocketsphinx", "RECORDER_URL": f"ws://127.0.0.1:{port}/socket"}
            with MODELS[model](env, tmp):
                return _calls(env["PUBLIC_URL"], LocalBlobStore(tmp / "data"), api, api_base, model, runs)


def _calls(
    url: str, store: LocalBlobStore, api: StandinApi, api_base: str, model: str, runs: int
) -> list[float] | None:
    standin = VonageStandin(api=api, api_base=api_base)
    latencies = []
    for run in range(runs + 1):
        before = {info.key for info in store.list("outbox/")}
        report = standin.inbound_call(f"{url}/answer", f"{url}/event", AUDIO, to=MAILBOX)
        prefix = "outbox/live-" if model == "live" else f"outbox/{report.recording_uuid}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pages = [info for info in store.list(prefix) if info.key not in before]
            if pages:
                break
            time.sleep(0.02)
        else:
            print(f"[{model}] run {run}: no page within 60 s")
            return None
        blob = store.read(pages[0].key)
        ended = report.socket_closed_at if model == "live" else report.recording_posted_at
        assert blob is not None and ended is not None
        latency = json.loads(blob.data)["sent_at"] - ended
        # The first run also loads the speech model; it is reported, not counted.
        label = "warm-up (model load)" if run == 0 else f"run {run}"
        print(f"[{model}] {label}: hang-up to page {latency:.2f} s")
        if run:
            latencies.append(latency)
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", choices=(*MODELS, "all"), default="all")
    args = parser.parse_args()
    models = list(MODELS) if args.model == "all" else [args.model]
    results = {model: measure(model, args.runs) for model in models}
    print(f"\nhang-up-to-page, embedded path (task queue, pocketsphinx, outbox), 9.4 s message, {args.runs} runs:")
    for model, latencies in results.items():
        if latencies is None:
            print(f"  {model:9s}  no page came")
            continue
        median = statistics.median(latencies)
        target = TARGETS[model]
        verdict = "met" if median <= target else "MISSED"
        print(
            f"  {model:9s}  median {median:.2f} s, min {min(latencies):.2f} s, max {max(latencies):.2f} s"
            f"  (target <= {target:.0f} s: {verdict})"
        )
    print("  Amazon Transcribe batch path: not measurable here (no AWS account); 1-2 min in the original design")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
