"""LocalBlobStore's fsync: off the event loop under gevent, directly (no thread) anywhere else."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from shared.adapters.local_blob_store import LocalBlobStore
from tests.servers import ROOT

# In a process of its own, as gunicorn's gevent worker runs: fsync waits (up to 5 s, on a real OS
# lock) for another greenlet to run. On the event loop it cannot, and the write reports "stalled".
UNDER_GEVENT = """
from gevent import monkey

monkey.patch_all()

import os
import sys
from pathlib import Path

import gevent

from shared.adapters.local_blob_store import LocalBlobStore

# A real OS lock, held until the other greenlet lets go of it (gevent's own would yield).
released = monkey.get_original("_thread", "allocate_lock")()
released.acquire()
real_fsync = os.fsync
heard = []


def fsync_waiting_for_the_other_greenlet(fd):
    heard.append("started")
    heard.append("released" if released.acquire(timeout=5) else "stalled")
    real_fsync(fd)


def release_once_the_flush_has_started():
    while not heard:
        gevent.sleep(0.001)
    released.release()


os.fsync = fsync_waiting_for_the_other_greenlet
other = gevent.spawn(release_once_the_flush_has_started)
store = LocalBlobStore(Path(sys.argv[1]))
store.write("calls/CON-1/parts/s/000000.pcm", b"audio")
print(heard[-1], store.read("calls/CON-1/parts/s/000000.pcm").data.decode())
"""


def test_under_gevent_other_greenlets_run_while_a_write_is_flushed(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", UNDER_GEVENT, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["released", "audio"]
    assert [p.name for p in (tmp_path / "calls" / "CON-1" / "parts" / "s").iterdir()] == ["000000.pcm"]


def test_without_gevent_a_write_starts_no_thread(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    store = LocalBlobStore(tmp_path)
    store.write("calls/CON-1/call.json", b"{}")
    assert store.read("calls/CON-1/call.json") is not None
    assert set(threading.enumerate()) - before == set()


# Two greenlets change the same document at once, as two streams of one call do in one worker:
# the first holds the document's file lock while its write is flushed off the loop.
SAME_DOCUMENT = """
from gevent import monkey

monkey.patch_all()

import json
import sys
import time
from pathlib import Path

import gevent

from shared.adapters.local_blob_store import LocalBlobStore
from shared.flows.documents import update_json

store = LocalBlobStore(Path(sys.argv[1]))


def add(name):
    update_json(store, "calls/CON-1/call.json", lambda doc: doc.setdefault("seen", []).append(name), dict)


workers = [gevent.spawn(add, name) for name in ("first", "second", "third")]
done = gevent.joinall(workers, timeout=10)
print(len(done), sorted(json.loads(store.read("calls/CON-1/call.json").data)["seen"]))
"""


def test_greenlets_changing_one_document_take_turns_instead_of_blocking_the_worker(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SAME_DOCUMENT, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3 ['first', 'second', 'third']"
