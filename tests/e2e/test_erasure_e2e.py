"""Retention and forgetting, end to end, as an operator runs them: calls placed through the Vonage
stand-in against the local platform under gunicorn (a voicemail transcribed and paged with a link,
a recorded stream, a PIN prompt call), a legal hold set from the recordings browser over HTTP, then
`python -m appengine.sweep --as-of …` and `python -m appengine.forget --number …` (what `nox -s
sweep` and `nox -s forget` run) in processes of their own, on the local folder and on the storage
emulator. The store is listed before and after, contents included."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.adapters.gcs_blob_store import GcsBlobStore
from shared.core.erasure import forget_record_key, number_digest
from shared.core.ports import BlobStore
from shared.runtime.web import API_KEY_HEADER
from tests.deck import PROMPT_API_KEY, PROMPT_ENV, Deck, prompt_deck
from tests.servers import ROOT, Emulator, fresh_bucket, gcs_client
from tests.testbed import DATA, platform_env
from tools.standin import CalleeScript

pytestmark = pytest.mark.slow

MAILBOX, STREAMED = "447700900001", "447700900004"
CALLER, OTHER = "447700900123", "447700900456"
OWNER = "447700900111"
ROUTES = (
    f'"{MAILBOX}":\n  flow: voicemail\n  owner: Sam\n  recipients: ["{OWNER}"]\n  retention_days: 30\n'
    f'"{STREAMED}":\n  flow: stream\n  retention_days: 30\n'
)
_PERIODIC = "tasks/sweep-period-"
TOKEN = re.compile(r'action="[^"]*/hold">\s*<input type="hidden" name="token" value="([0-9]+\.[0-9a-f]{64})"')


@dataclass
class Platform:
    deck: Deck
    env: dict[str, str]
    callback_url: str


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    with ExitStack() as stack:
        deck, _, callback_url = prompt_deck(stack, tmp_path, ROUTES, MAILBOX, {})
        # What `nox -s sweep` and `nox -s forget` read: the platform's own settings.
        settings = {
            "PATH": "/usr/bin:/bin",
            **platform_env(tmp_path),
            **PROMPT_ENV,
        }
        yield Platform(deck, settings, callback_url)


def ring(deck: Deck, caller: str, called: str, fast: bool = False) -> Any:
    answer, event = f"{deck.url}/answer", f"{deck.url}/event"
    return deck.standin.inbound_call(answer, event, DATA / "voicemail_outage.wav", from_=caller, to=called, fast=fast)


def voicemail(deck: Deck, caller: str) -> tuple[str, str]:
    """A voicemail from `caller`, paged; its conversation and the link in its page."""
    report = ring(deck, caller, MAILBOX)
    (page,) = deck.pages(report.recording_uuid, 1, timeout=60)
    link = page["text"].rsplit("\n\n", 1)[1]
    assert requests.get(link, timeout=10).status_code == 200
    return report.conversation_uuid, link


def streamed(deck: Deck, caller: str) -> str:
    """A recorded stream from `caller`, once its recording is final."""
    report = ring(deck, caller, STREAMED, fast=True)
    conversation_uuid = str(report.conversation_uuid)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        call = deck.read_json(f"calls/{conversation_uuid}/call.json")
        if call and call["recordings"] and all(r["state"] != "streaming" for r in call["recordings"]):
            return conversation_uuid
        time.sleep(0.2)
    raise AssertionError(f"the stream of {conversation_uuid} did not end")


def prompt_call(platform: Platform, to: str) -> str:
    platform.deck.api.scripts[to] = CalleeScript(dtmf=("1234",))
    body = {
        "to": to,
        "from": "447700900002",
        "text": "Enter your PIN.",
        "pin_code": "1234",
        "callback": platform.callback_url,
    }
    answer = requests.post(f"{platform.deck.url}/call", json=body, headers={API_KEY_HEADER: PROMPT_API_KEY}, timeout=30)
    assert answer.status_code == 200, answer.text
    tid = str(answer.json()["tid"])
    platform.deck.wait_for(f"prompts/{tid}", timeout=30)
    return tid


def hold(deck: Deck, conversation_uuid: str) -> None:
    """Put the call under legal hold from its page, as an admin in the browser would."""
    page = requests.get(f"{deck.url}/calls/{conversation_uuid}", timeout=10)
    found = TOKEN.search(page.text)
    assert found is not None, page.text
    origin = {"Origin": deck.url}
    done = requests.post(
        f"{deck.url}/calls/{conversation_uuid}/hold",
        data={"token": found.group(1), "hold": "set"},
        headers=origin,
        timeout=10,
        allow_redirects=False,
    )
    assert done.status_code == 303, done.text
    assert "Under legal hold since" in requests.get(f"{deck.url}/calls/{conversation_uuid}", timeout=10).text


def everything(store: BlobStore) -> dict[str, bytes]:
    """Every object and what it holds, the platform's own periodic sweep tasks left out."""
    found = {info.key: store.read(info.key) for info in store.list("") if not info.key.startswith(_PERIODIC)}
    return {key: blob.data for key, blob in found.items() if blob is not None}


def quiet(deck: Deck, timeout: float = 60) -> None:
    """Wait until the platform has no task and no call waiting to settle: what it stores is still."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = [k for k in everything(deck.store) if k.startswith(("tasks/", "sweep/pending/")) or "interim" in k]
        if not busy:
            return
        time.sleep(0.2)
    raise AssertionError(f"the platform is still busy with {busy}")


def naming(objects: dict[str, bytes], *texts: str) -> list[str]:
    return [key for key, data in objects.items() if any(t in key or t.encode() in data for t in texts)]


def files_in(root: Path) -> list[Path]:
    """The store's files on disk, lock files included; the stand-in's keys and the platform's own
    periodic sweep tasks left out."""
    return [
        p for p in root.rglob("*")
        if p.is_file() and ".standin" not in p.parts and not p.relative_to(root).as_posix().startswith(_PERIODIC)
    ]  # fmt: skip


def run(module: str, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def copy_to(store: BlobStore, objects: dict[str, bytes]) -> None:
    for key, data in objects.items():
        store.write(key, data)


def test_the_sweep_as_of_a_day_past_retention_erases_every_trace_and_keeps_a_held_call(
    platform: Platform, storage_emulator: Emulator
) -> None:
    deck = platform.deck
    erased, link = voicemail(deck, CALLER)
    erased_job = [key for key in everything(deck.store) if key.startswith("jobs/")]
    held = streamed(deck, OTHER)
    hold(deck, held)
    quiet(deck)
    before = everything(deck.store)
    assert naming(before, erased) and erased_job
    kept_whole = {key: data for key, data in before.items() if held in key}
    # The same objects on Cloud Storage (the emulator), swept by the same command there.
    bucket = fresh_bucket(storage_emulator)
    cloud = GcsBlobStore(bucket, gcs_client(storage_emulator))
    copy_to(cloud, before)
    on_cloud = {**platform.env, "STORAGE": "gcs", "GCS_BUCKET": bucket, "STORAGE_EMULATOR_HOST": storage_emulator.url}

    later = (datetime.now(UTC) + timedelta(days=31)).date().isoformat()
    for store, env in ((deck.store, platform.env), (cloud, on_cloud)):
        said = run("appengine.sweep", env, "--as-of", later)
        assert "retention: 2 call(s) looked at, 1 erased" in said and "1 kept under legal hold" in said
        after = everything(store)
        assert naming(after, erased, CALLER) == [], f"traces of the erased call left: {naming(after, erased, CALLER)}"
        assert not [key for key in after if key.startswith(("jobs/", "outbox/", "calls/" + erased))]
        assert {key: data for key, data in after.items() if held in key} == kept_whole
        # What is left besides the held call: the erased link, naming nothing, and the sweep's place.
        rest = {key: data for key, data in after.items() if held not in key}
        assert {json.loads(data).get("erased") for key, data in rest.items() if key.startswith("links/")} == {True}
        assert set(rest) - {k for k in rest if k.startswith("links/")} <= {"sweep/retention.json", "sweep/cursor.json"}
    assert requests.get(link, timeout=10).status_code == 410


def test_forgetting_a_number_leaves_nothing_naming_it_and_a_second_run_changes_nothing(platform: Platform) -> None:
    deck = platform.deck
    voicemail(deck, CALLER)
    streamed(deck, CALLER)
    streamed(deck, OTHER)
    tid = prompt_call(platform, CALLER)
    quiet(deck)
    before = everything(deck.store)
    assert len(naming(before, CALLER)) >= 8 and f"prompts/{tid}.json" in before
    others = {key: data for key, data in before.items() if OTHER in data.decode("utf-8", "replace")}
    assert others

    said = run("appengine.forget", platform.env, "--number", f"+{CALLER}", "--by", "dpo@example.com")
    assert "done; 2 call(s) erased" in said and "1 prompt transactions" in said
    after = everything(deck.store)
    root = deck.store.root
    on_disk = [str(p.relative_to(root)) for p in files_in(root)]
    leaks = [name for name in on_disk if CALLER in name or CALLER.encode() in (root / name).read_bytes()]
    assert leaks == [], f"still naming the number: {leaks}"
    assert not [key for key in after if key.startswith(("outbox/", "prompts/", "index/")) and key not in before]
    record = json.loads(after[forget_record_key(number_digest(CALLER))])
    (entry,) = record["runs"]
    assert entry["by"] == "dpo@example.com" and entry["calls"] == 2
    assert entry["objects"]["prompt transactions"] == 1 and entry["objects"]["outbox messages"] == 1
    # The other caller's call is untouched.
    assert {key: data for key, data in after.items() if key in others} == others

    files = {name: (root / name).read_bytes() for name in on_disk}
    again = run("appengine.forget", platform.env, "--number", f"+{CALLER}")
    assert "done; 0 call(s) erased; removed nothing" in again
    now = {str(p.relative_to(root)): p.read_bytes() for p in files_in(root)}
    assert now == files, "a second run changed nothing"


def test_a_bad_number_or_one_of_the_deployment_s_own_is_refused(platform: Platform) -> None:
    for number, why in (("not-a-number", "E.164"), (f"+{MAILBOX}", "own numbers")):
        done = subprocess.run(
            [sys.executable, "-m", "appengine.forget", "--number", number],
            cwd=ROOT, env=platform.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2 and why in done.stderr and "Traceback" not in done.stderr
