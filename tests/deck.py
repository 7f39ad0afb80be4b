"""The functions and recorder under gunicorn, with the Vonage stand-in and its API beside them:
the whole local platform, started per test."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import requests

from shared.adapters.local_blob_store import LocalBlobStore
from shared.core.signatures import sign_webhook
from tests.ncco_models import check_ncco
from tests.servers import free_port, gunicorn_command, receiving, running
from tests.testbed import SECRET, platform_env
from tools.standin import VonageStandin
from tools.standin.api import StandinApi, make_application_key, make_tls_files, public_key_of
from tools.standin.receiver import CallbackReceiver

# The voicemail line most tests call, and the owners it pages.
MAILBOX = "447700900001"
OWNERS = ["447700900111", "447700900222"]
# A deck that places PIN prompt calls: the key its API asks for, and its callbacks to loopback,
# signed with CALLBACK_SECRET.
PROMPT_API_KEY, CALLBACK_SECRET = "prompt-api-key", "prompt-callback-secret"
PROMPT_ENV = {
    "PROMPT_API_KEY": PROMPT_API_KEY,
    "CALLBACK_SECRET": CALLBACK_SECRET,
    "ALLOW_PRIVATE_CALLBACKS": "true",
    "PROMPT_HANGUP_GRACE": "0.5",
}


@dataclass
class Deck:
    url: str
    store: LocalBlobStore
    standin: VonageStandin
    api: StandinApi
    number: str

    def call(self, audio: Path, **kwargs: Any) -> Any:
        """An inbound call to the deck's number; every NCCO it was answered with must be one Vonage takes."""
        report = self.standin.inbound_call(f"{self.url}/answer", f"{self.url}/event", audio, to=self.number, **kwargs)
        for ncco in report.nccos:
            check_ncco(ncco)
        return report

    def read_json(self, key: str) -> Any:
        blob = self.store.read(key)
        return None if blob is None else json.loads(blob.data)

    def wait_for(self, prefix: str, count: int = 1, timeout: float = 60) -> list[Any]:
        """The JSON objects under `prefix` once there are `count`; a pause catches duplicates."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.store.list(prefix)) >= count:
                time.sleep(0.3)
                return [self.read_json(info.key) for info in self.store.list(prefix)]
            time.sleep(0.1)
        raise AssertionError(f"nothing under {prefix} within {timeout} s")

    def pages(self, recording_uuid: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        return self.wait_for(f"outbox/{recording_uuid}", count, timeout)

    def stitched(self, conversation_uuid: str, timeout: float = 40) -> dict[str, Any]:
        """The call's call.json once every one of its sessions is stitched into its recording."""
        deadline = time.monotonic() + timeout
        call = None
        while time.monotonic() < deadline:
            call = self.read_json(f"calls/{conversation_uuid}/call.json")
            if call and call.get("stitched") and len(call["stitched"]["offsets"]) == len(call["recordings"]):
                return dict(call)
            time.sleep(0.2)
        raise AssertionError(f"calls/{conversation_uuid} was not stitched within {timeout} s: {call}")

    def recording_sessions(self, timeout: float = 10) -> list[dict[str, Any]]:
        """The sessions of the first call that reaches a recorder, once one has."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for info in self.store.list("calls/"):
                call = self.read_json(info.key) if info.key.endswith("/call.json") else None
                if call and call["recordings"]:
                    return list(call["recordings"])
            time.sleep(0.1)
        raise AssertionError(f"no call reached a recorder within {timeout} s")

    def stop_instance(self, session: dict[str, Any]) -> int:
        """SIGTERM the instance that records `session`, as App Engine stops one: its gunicorn master
        (the session names the worker); returns the master's pid."""
        worker = int(session["recorder"].rsplit("/", 1)[1])
        with open(f"/proc/{worker}/stat", encoding="ascii") as stat:
            master = int(stat.read().rsplit(")", 1)[1].split()[1])
        os.kill(master, signal.SIGTERM)
        return master


def voicemail_routes(number: str, owners: list[str], **fields: str) -> str:
    """A routes file with one voicemail mailbox of Sam's, for 60 s messages, with `fields` added."""
    lines = [
        f'"{number}":',
        "  flow: voicemail",
        "  owner: Sam",
        f"  recipients: {json.dumps(owners)}",
        "  max_seconds: 60",
        *(f"  {name}: {value}" for name, value in fields.items()),
    ]
    return "\n".join(lines) + "\n"


class DeckFactory(Protocol):
    def __call__(self, **env: str) -> Deck: ...


def start_deck(
    stack: ExitStack,
    folder: Path,
    routes: str,
    number: str,
    env: dict[str, str],
    tls: bool = False,
    instances: int = 1,
) -> Deck:
    """Start the stand-in's API (over TLS with `tls`, as the v4 SDK needs) and the local platform;
    with `instances` above one, that many platforms share the port, as instances behind one
    address do (each on gevent, as the recorder runs deployed)."""
    key = make_application_key(folder / "application.pem")
    (folder / "routes.yaml").write_text(routes)
    api = StandinApi(public_key_of(key))
    tls_files = make_tls_files(folder) if tls else None
    api_base = stack.enter_context(api.serving("127.0.0.1", free_port(), tls=tls_files))
    port = free_port()
    if tls_files:
        env = {"REQUESTS_CA_BUNDLE": str(tls_files[0]), **env}
    settings = {
        **platform_env(folder),
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RECORDER_URL": f"ws://127.0.0.1:{port}/socket",
        "VONAGE_API_HOST": api_base.split("://", 1)[1],
        **env,
    }
    worker = "gthread" if instances == 1 else "gevent"
    for instance in range(instances):
        stack.enter_context(
            running(
                gunicorn_command("appengine.devserver:create_dev_app()", port, worker, reuse_port=instances > 1),
                settings,
                f"http://127.0.0.1:{port}/healthz",
                folder / f"server{instance or ''}.log",
            )
        )
    standin = VonageStandin(SECRET, api=api, api_base=api_base)
    return Deck(f"http://127.0.0.1:{port}", LocalBlobStore(folder / "data"), standin, api, number)


def deck_fixture(tmp_path: Path, routes: str, number: str) -> Iterator[DeckFactory]:
    """Body of a fixture that starts decks on `routes`; each test calls it with extra settings."""
    with ExitStack() as stack:

        def start(**env: str) -> Deck:
            return start_deck(stack, tmp_path, routes, number, env)

        yield start


def prompt_deck(
    stack: ExitStack, tmp_path: Path, routes: str, number: str, env: dict[str, str], fail_first: int = 0
) -> tuple[Deck, CallbackReceiver, str]:
    """A deck that places PIN prompt calls (PROMPT_ENV, then `env`), its API over TLS signing
    webhooks as Vonage does; with a receiver of the prompts' callbacks, failing the first
    `fail_first`, and the callback URL on it."""
    receiver, callback_url = stack.enter_context(receiving(CALLBACK_SECRET, "/pin-result", fail_first))
    deck = start_deck(stack, tmp_path, routes, number, {**PROMPT_ENV, **env}, tls=True)
    deck.api.signature_secret = SECRET
    return deck, receiver, callback_url


def signed_post(url: str, payload: dict[str, Any], secret: str = SECRET) -> requests.Response:
    """POST `payload` as JSON, signed as Vonage signs its webhooks."""
    body = json.dumps(payload).encode()
    token = sign_webhook(body, secret, time.time(), str(uuid.uuid4()))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return requests.post(url, data=body, headers=headers, timeout=10)
