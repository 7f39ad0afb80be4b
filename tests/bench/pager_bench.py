"""Hang-up-to-page latency of the voicemail pager on the embedded path.

    python tests/bench/pager_bench.py [--runs 5]

The functions run under gunicorn (local storage, pocketsphinx, outbox); the Vonage stand-in
records a 9.4-second message and posts the recording webhook. Latency is from that post (the
end of recording) to the moment the page is handed to the messenger (the outbox entry's
`sent_at`), the same clock on one machine. Target: median <= 3 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from shared.adapters.local_blob_store import LocalBlobStore  # noqa: E402
from shared.standin import VonageStandin  # noqa: E402
from shared.standin.api import StandinApi, make_application_key, public_key_of  # noqa: E402
from tests.servers import free_port, gunicorn_command, running  # noqa: E402

MAILBOX = "447700900001"
AUDIO = ROOT / "tests" / "data" / "voicemail_outage.wav"
ROUTES = f'"{MAILBOX}":\n  flow: voicemail\n  owner: Sam\n  recipients: ["447700900111"]\n'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tapedeck-pager-") as folder:
        tmp = Path(folder)
        key = make_application_key(tmp / "application.pem")
        (tmp / "routes.yaml").write_text(ROUTES)
        api = StandinApi(public_key_of(key))
        port = free_port()
        with api.serving("127.0.0.1", free_port()) as api_base:
            env = {
                "LOCAL_STORAGE_DIR": str(tmp / "data"),
                "STREAM_TOKEN_SECRET": "bench",
                "PUBLIC_URL": f"http://127.0.0.1:{port}",
                "ROUTES_FILE": str(tmp / "routes.yaml"),
                "VONAGE_API_HOST": api_base.removeprefix("http://"),
                "VONAGE_APPLICATION_ID": "standin-application",
                "VONAGE_PRIVATE_KEY": str(tmp / "application.pem"),
                "LOG_LEVEL": "WARNING",
            }
            command = gunicorn_command("appengine.devserver:create_dev_app()", port, worker="gthread")
            with running(command, env, f"http://127.0.0.1:{port}/healthz", tmp / "server.log"):
                store = LocalBlobStore(tmp / "data")
                standin = VonageStandin(api=api, api_base=api_base)
                latencies = []
                for run in range(args.runs + 1):
                    report = standin.inbound_call(
                        f"http://127.0.0.1:{port}/answer", f"http://127.0.0.1:{port}/event", AUDIO, to=MAILBOX
                    )
                    deadline = time.monotonic() + 60
                    while not (pages := store.list(f"outbox/{report.recording_uuid}")) and time.monotonic() < deadline:
                        time.sleep(0.02)
                    if not pages:
                        print(f"run {run}: no page within 60 s")
                        return 1
                    blob = store.read(pages[0].key)
                    assert blob is not None and report.recording_posted_at is not None
                    latency = json.loads(blob.data)["sent_at"] - report.recording_posted_at
                    # The first run also loads the speech model; it is reported, not counted.
                    label = "warm-up (model load)" if run == 0 else f"run {run}"
                    print(f"{label}: hang-up to page {latency:.2f} s")
                    if run:
                        latencies.append(latency)
    median = statistics.median(latencies)
    print(f"\nhang-up-to-page, embedded path (pocketsphinx + outbox), 9.4 s message, {args.runs} runs:")
    print(f"  median {median:.2f} s, min {min(latencies):.2f} s, max {max(latencies):.2f} s (target <= 3 s)")
    print("  Amazon Transcribe batch path: not measurable here (no AWS account); 1-2 min in the original design")
    return 0


if __name__ == "__main__":
    sys.exit(main())
