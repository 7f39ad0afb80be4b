"""The recorder loads what storage needs when a worker starts, not in its first stream: importing
the Cloud Storage client there held up every stream of the worker for 160 to 180 ms."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.servers import ROOT, Emulator, fresh_bucket
from tests.testbed import TOKEN_SECRET

# A stream against the storage emulator.
pytestmark = pytest.mark.slow

# The app gunicorn builds in each worker, then one whole stream: what did the stream import?
PROBE = """
import json, sys
from appengine.main import production_app
from shared.flows.streams import run_stream
from tests.flows.test_stream_turns import ScriptedSocket

app = production_app()
before = set(sys.modules)
run_stream(ScriptedSocket("CON-first-stream", 50), app.extensions["tapedeck.streams"])
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_the_first_stream_imports_no_storage_library(storage_emulator: Emulator) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "STORAGE": "gcs",
        "GCS_BUCKET": fresh_bucket(storage_emulator),
        "STORAGE_EMULATOR_HOST": storage_emulator.url,
        "STREAM_TOKEN_SECRET": TOKEN_SECRET,
        "PUBLIC_URL": "https://fn.example.test",
        "RECORDER_URL": "wss://rec.example.test/socket",
    }
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert probe.returncode == 0, probe.stderr
    imported = json.loads(probe.stdout.splitlines()[-1])
    assert [name for name in imported if name.startswith(("google", "requests", "urllib3"))] == []
