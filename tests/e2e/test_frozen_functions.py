"""Every deferred step completes under Cloud Functions' execution model: each function in its own
functions-framework process, frozen between requests (tests/frozen.py), a task queue calling the
`tasks` function back, and the Vonage stand-in playing calls. The queue is the embedded one (in a
process of its own), and then gcloud-tasks-emulator, a Cloud Tasks API server on loopback, with
tapedeck's CloudTasksQueue talking gRPC to it.

A function that left work running after its answer (a thread, a timer, a pool) would never
finish it here: the voicemail page, the result webhook, the PIN callback and the hang-up grace
all arrive only because each is a task run in a request of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from shared.adapters.local_blob_store import LocalBlobStore
from shared.core.signatures import API_KEY_HEADER
from tests.frozen import FrozenPlatform, frozen_platform, local_queue, start_tasks_emulator
from tests.ncco_models import check_ncco
from tests.servers import free_port, receiving, wait_for_objects
from tests.testbed import DATA, SECRET, platform_env
from tools.standin import CalleeScript, VonageStandin
from tools.standin.api import StandinApi, make_application_key, make_tls_files, public_key_of
from tools.standin.receiver import CallbackReceiver

# Real servers or emulators on loopback, started by the tests.
pytestmark = pytest.mark.slow

MAILBOX, TALK_LINE, AGENT, CALLEE = "447700900001", "447700900002", "447700900200", "447700900003"
API_KEY, CALLBACK_SECRET = "frozen-api-key", "frozen-callback-secret"
FUNCTIONS = ["answer", "event", "recording", "tasks", "call", "prompt", "link"]


@dataclass
class Frozen:
    platform: FrozenPlatform
    store: LocalBlobStore
    api: StandinApi
    standin: VonageStandin
    results: CallbackReceiver
    stack: ExitStack

    def receiver(self, fail_first: int = 0) -> tuple[CallbackReceiver, str]:
        return self.stack.enter_context(receiving(CALLBACK_SECRET, fail_first=fail_first))

    def wait_for(self, prefix: str, count: int, timeout: float = 60) -> list[Any]:
        return wait_for_objects(self.store, prefix, count, timeout)

    def all_frozen(self) -> bool:
        return all(function.frozen for function in self.platform.functions.values())


@pytest.fixture(scope="module", params=["local", "cloud-tasks-emulator"])
def frozen(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Frozen]:
    root = tmp_path_factory.mktemp("frozen")
    key = make_application_key(root / "application.pem")
    with ExitStack() as stack:
        results, results_url = stack.enter_context(receiving(CALLBACK_SECRET))
        (root / "routes.yaml").write_text(
            f'"{MAILBOX}":\n  flow: voicemail\n  owner: Sam\n  recipients: ["447700900111"]\n'
            f'"{TALK_LINE}":\n  flow: conversation\n  connect: ["{AGENT}"]\n  format: wav\n'
            f"  result_webhook: {results_url}/result\n"
        )
        api = StandinApi(public_key_of(key), signature_secret=SECRET)
        tls = make_tls_files(root / "tls")
        api_base = stack.enter_context(api.serving("127.0.0.1", free_port(), tls=tls))
        env = {
            **platform_env(root),
            "PUBLIC_URL": f"http://127.0.0.1:{free_port()}",
            "RECORDER_URL": "ws://127.0.0.1:1/socket",
            "VONAGE_API_HOST": api_base.removeprefix("https://"),
            "REQUESTS_CA_BUNDLE": str(tls[0]),
            "PROMPT_API_KEY": API_KEY,
            "CALLBACK_SECRET": CALLBACK_SECRET,
            "CALLBACK_BACKOFF": "0.2",
            "ALLOW_PRIVATE_CALLBACKS": "true",
            "PROMPT_HANGUP_GRACE": "1",
        }
        logs = root / "logs"
        logs.mkdir()
        if request.param == "local":
            stack.enter_context(local_queue(env, logs))
        else:
            env |= start_tasks_emulator(stack, logs)
        platform = stack.enter_context(frozen_platform(FUNCTIONS, env, logs))
        standin = VonageStandin(SECRET, api=api, api_base=api_base)
        yield Frozen(platform, LocalBlobStore(root / "data"), api, standin, results, stack)


def test_the_functions_are_frozen_between_requests(frozen: Frozen) -> None:
    assert frozen.all_frozen()
    answer = requests.get(f"{frozen.platform.url}/link?id=not-a-link-at-all", timeout=10)
    assert answer.status_code == 404
    assert frozen.all_frozen()


def test_a_voicemail_pages_its_owner(frozen: Frozen) -> None:
    url = frozen.platform.url
    report = frozen.standin.inbound_call(f"{url}/answer", f"{url}/event", DATA / "voicemail_outage.wav", to=MAILBOX)
    check_ncco(report.ncco)
    assert report.event_statuses["record"] == 204
    (page,) = frozen.wait_for(f"outbox/{report.recording_uuid}", 1)
    assert "PRODUCTION DATABASE IS DOWN" in page["text"]
    tasks = frozen.platform.functions["tasks"]
    assert tasks.requests_served + tasks.in_flight >= 1  # the page was sent from a task's request


def test_a_recorded_conversation_posts_its_result_webhook(frozen: Frozen) -> None:
    url = frozen.platform.url
    report = frozen.standin.inbound_call(
        f"{url}/answer",
        f"{url}/event",
        DATA / "conversation_caller.wav",
        to=TALK_LINE,
        other_parties=[DATA / "conversation_agent.wav"],
    )
    check_ncco(report.ncco)
    (delivery,) = frozen.results.wait(1, timeout=120)
    assert delivery.signature_valid and delivery.json is not None
    assert delivery.json["recording_uuid"] == report.recording_uuid
    assert len(delivery.json["transcript"]["turns"]) >= 2


def place_prompt_call(frozen: Frozen, callback: str, script: CalleeScript) -> str:
    frozen.api.scripts[CALLEE] = script
    body = {"to": CALLEE, "from": TALK_LINE, "text": "Your code, please.", "pin_code": "1234", "callback": callback}
    answer = requests.post(f"{frozen.platform.url}/call", json=body, headers={API_KEY_HEADER: API_KEY}, timeout=30)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["tid"])


def test_a_pin_callback_that_fails_twice_arrives_on_the_third_attempt(frozen: Frozen) -> None:
    receiver, base = frozen.receiver(fail_first=2)
    tid = place_prompt_call(frozen, f"{base}/pin", CalleeScript(dtmf=("1234",)))
    (delivery,) = receiver.wait(1, timeout=60)
    assert delivery.fields["tid"] == tid and delivery.fields["status"] == "ok"
    assert [d.answered for d in receiver.deliveries] == [500, 500, 200]
    stored = json.loads(frozen.store.read(f"prompts/{tid}.json").data)  # type: ignore[union-attr]
    assert (stored["callback"]["state"], stored["callback"]["attempts"]) == ("delivered", 3)


def test_a_hang_up_without_a_pin_settles_after_the_grace(frozen: Frozen) -> None:
    receiver, base = frozen.receiver()
    tid = place_prompt_call(frozen, f"{base}/pin", CalleeScript(hang_up_after_inputs=0))
    (delivery,) = receiver.wait(1, timeout=60)
    assert delivery.fields == {"tid": tid, "to": CALLEE, "status": "error", "detail": "hung up before a result"}
