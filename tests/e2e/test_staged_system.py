"""The deployed topology, run from the staged bundles rather than the repository: what
`nox -s deploy -- --dry-run` staged, each bundle in an environment holding only its own
requirements, with the settings the plan gives it.

- the functions, each in its own functions-framework process from build/functions, frozen
  between requests as Cloud Functions' request-based billing does (tests/frozen.py);
- the recorder from build/appengine, started by its staged app.yaml's entrypoint as written,
  gevent worker and `--workers 2` included;
- Cloud Storage on gcp-storage-emulator (`STORAGE=gcs`, the plan's bucket);
- Cloud Tasks on gcloud-tasks-emulator (`TASK_QUEUE=cloud-tasks`, the plan's queue);
- Vonage played by the stand-in, its API over TLS.

Secret Manager has no emulator, so the secrets the plan puts there are handed to each process in
its environment, and SECRETS_PROJECT is left out. The stand-in's certificate is trusted through
REQUESTS_CA_BUNDLE, a variable of the process rather than a tapedeck setting.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.adapters.gcs_blob_store import GcsBlobStore
from shared.config.settings import SECRET_NAMES
from shared.core.signatures import API_KEY_HEADER
from shared.core.wav import parse_wav
from tests.bundles import bundle_environ, bundle_venv, entrypoint, stage_all, staged_env
from tests.frozen import FrozenPlatform, FunctionsSource, frozen_platform, start_tasks_emulator
from tests.servers import Emulator, free_port, fresh_bucket, gcs_client, running, wait_for_objects
from tests.testbed import DATA, SECRET, TOKEN_SECRET
from tools.deploy import entry_points
from tools.standin import CalleeScript, VonageStandin
from tools.standin.api import StandinApi, make_application_key, make_tls_files, public_key_of, serve_in_thread
from tools.standin.receiver import CallbackReceiver

pytestmark = pytest.mark.slow

STREAMED, MAILBOX, LIVE_MAILBOX, CALLEE = "447700900000", "447700900001", "447700900003", "447700900444"
OWNER = "447700900111"
API_KEY, CALLBACK_SECRET = "staged-api-key", "staged-callback-secret"
FIXTURE = DATA / "voicemail_outage.wav"


@dataclass
class System:
    platform: FrozenPlatform
    store: GcsBlobStore
    standin: VonageStandin
    api: StandinApi
    stack: ExitStack

    def call(self, to: str, **kwargs: Any) -> Any:
        url = self.platform.url
        return self.standin.inbound_call(f"{url}/answer", f"{url}/event", FIXTURE, to=to, **kwargs)

    def wait_for(self, prefix: str) -> list[Any]:
        return wait_for_objects(self.store, prefix, timeout=90)


def routes(folder: Path) -> Path:
    path = folder / "routes.yaml"
    path.write_text(
        f'"{MAILBOX}":\n  flow: voicemail\n  owner: Sam\n  recipients: ["{OWNER}"]\n'
        f'"{LIVE_MAILBOX}":\n  flow: voicemail\n  owner: Sam\n  recipients: ["{OWNER}"]\n  capture: stream\n'
    )
    return path


def deploy_env(folder: Path, bucket: str, api_base: str, public: str, recorder: str) -> dict[str, str]:
    """The team's settings for `nox -s deploy`, pointing at this machine's stand-ins."""
    key = make_application_key(folder / "application.pem")
    return {
        "GCS_BUCKET": bucket,
        "PUBLIC_URL": public,
        "RECORDER_URL": recorder,
        "ROUTES_FILE": str(routes(folder)),
        "VONAGE_APPLICATION_ID": "standin-application",
        "VONAGE_PRIVATE_KEY": key.decode(),
        "VONAGE_API_HOST": api_base.removeprefix("https://"),
        "VONAGE_SIGNATURE_SECRET": SECRET,
        "STREAM_TOKEN_SECRET": TOKEN_SECRET,
        "CALLBACK_SECRET": CALLBACK_SECRET,
        "PROMPT_API_KEY": API_KEY,
        "CALLBACK_BACKOFF": "0.2",
        "ALLOW_PRIVATE_CALLBACKS": "true",
        "PROMPT_HANGUP_GRACE": "1",
        "LIVE_TRANSCRIBER": "pocketsphinx",
        "IAP_AUDIENCE": "/projects/123456789/apps/tapedeck-test",
    }


def start_recorder(stack: ExitStack, bundle: Path, process_env: dict[str, str], folder: Path) -> None:
    bin_dir = bundle_venv(bundle / "requirements.txt")
    port = process_env["PORT"]
    env = bundle_environ(bin_dir, {**process_env, "HOME": str(folder / "recorder-home")})
    command = ["/bin/sh", "-c", f"exec {entrypoint(bundle)}"]
    log = folder / "recorder.log"
    try:
        stack.enter_context(
            running(command, env, f"http://127.0.0.1:{port}/healthz", log, cwd=bundle, inherit=False, timeout=90)
        )
    except (RuntimeError, TimeoutError) as err:
        pytest.fail(f"{err}\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory, storage_emulator: Emulator) -> Iterator[System]:
    folder = tmp_path_factory.mktemp("staged")
    logs = folder / "logs"
    logs.mkdir()
    with ExitStack() as stack:
        tls = make_tls_files(folder / "tls")
        key_path = folder / "application.pem"
        api = StandinApi(public_key_of(make_application_key(key_path)), signature_secret=SECRET)
        api_base = stack.enter_context(api.serving("127.0.0.1", free_port(), tls=tls))
        bucket = fresh_bucket(storage_emulator)
        public, recorder_port = f"http://127.0.0.1:{free_port()}", free_port()
        given = deploy_env(folder, bucket, api_base, public, f"ws://127.0.0.1:{recorder_port}/socket")
        staged = stage_all(folder / "build", given)
        queue = start_tasks_emulator(stack, logs)
        # What the platform adds: the emulators' hosts, the secrets, the stand-in's certificate.
        platform = {
            **{name: given[name] for name in SECRET_NAMES if name in given},
            "STORAGE_EMULATOR_HOST": storage_emulator.url,
            "CLOUD_TASKS_EMULATOR_HOST": queue["CLOUD_TASKS_EMULATOR_HOST"],
            "REQUESTS_CA_BUNDLE": str(tls[0]),
        }
        functions = staged.folder("functions")
        names = entry_points((functions / "main.py").read_text())
        plain = staged.function_env(names[0])
        assert all(staged.function_env(name) == plain for name in names)
        # The plan's queue is the one the emulator serves.
        assert {k: plain[k] for k in ("TASK_QUEUE", "TASKS_PROJECT", "TASKS_LOCATION")} == {
            k: queue[k] for k in ("TASK_QUEUE", "TASKS_PROJECT", "TASKS_LOCATION")
        }
        bin_dir = bundle_venv(functions / "requirements.txt")
        where = FunctionsSource(bin_dir, functions, "main.py", bundle_environ(bin_dir, platform))
        frozen = stack.enter_context(frozen_platform(names, plain, logs, where))
        recorder = staged.folder("recorder")
        recorder_env = {k: v for k, v in staged_env(recorder).items() if k != "SECRETS_PROJECT"}
        start_recorder(stack, recorder, {**recorder_env, **platform, "PORT": str(recorder_port)}, logs)
        standin = VonageStandin(SECRET, api=api, api_base=api_base)
        store = GcsBlobStore(bucket, gcs_client(storage_emulator))
        yield System(frozen, store, standin, api, stack)


def test_the_functions_are_frozen_and_come_from_the_staged_bundle(system: System) -> None:
    for function in system.platform.functions.values():
        assert function.frozen
        command = Path(f"/proc/{function.process.pid}/cmdline").read_bytes().split(b"\0")
        assert b"--source=main.py" in command
        assert Path(f"/proc/{function.process.pid}/cwd").resolve().name == "functions"


def test_a_streamed_call_is_stored_byte_exact(system: System) -> None:
    report = system.call(STREAMED, fast=True)

    wav = f"calls/{report.conversation_uuid}/audio.wav"
    deadline = time.monotonic() + 30
    while system.store.read(wav) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    blob = system.store.read(wav)
    assert blob is not None, "no audio.wav"
    audio = parse_wav(blob.data)
    assert audio.pcm == parse_wav(FIXTURE.read_bytes()).pcm
    assert (audio.sample_rate, audio.channels) == (16000, 1)
    assert report.talks == ["Hello. This call is recorded."]


def test_a_voicemail_is_paged_by_the_batch_path(system: System) -> None:
    report = system.call(MAILBOX)

    (page,) = system.wait_for(f"outbox/{report.recording_uuid}")
    assert page["to"] == OWNER
    assert "PRODUCTION DATABASE IS DOWN" in page["text"]
    tasks = system.platform.functions["tasks"]
    assert tasks.requests_served >= 1  # paged from a task's request


def test_a_live_voicemail_is_paged_from_the_live_words(system: System) -> None:
    report = system.call(LIVE_MAILBOX)

    assert report.stream_rate == 16000 and report.heard
    (page,) = system.wait_for("outbox/live-")  # the only live voicemail of this system
    assert page["to"] == OWNER
    assert "PRODUCTION DATABASE" in page["text"]


def test_a_pin_prompt_callback_is_delivered_exactly_once(system: System) -> None:
    receiver = CallbackReceiver(CALLBACK_SECRET)
    base = system.stack.enter_context(serve_in_thread(receiver.app(), "127.0.0.1", 0))
    system.api.scripts[CALLEE] = CalleeScript(dtmf=("1234",))
    body = {"to": CALLEE, "from": MAILBOX, "text": "Your code, please.", "pin_code": "1234", "callback": f"{base}/pin"}

    answer = requests.post(f"{system.platform.url}/call", json=body, headers={API_KEY_HEADER: API_KEY}, timeout=30)

    assert answer.status_code == 200, answer.text
    (delivery,) = receiver.wait(1, timeout=60)
    assert delivery.signature_valid
    assert (delivery.fields["tid"], delivery.fields["status"]) == (answer.json()["tid"], "ok")
    time.sleep(3)  # the completed event and the hang-up grace come after: nothing more may arrive
    assert len(receiver.deliveries) == 1
