"""Every NCCO the functions answer Vonage with, flow by flow and step by step, passes Vonage's
models and the NCCO reference's rules (tests/ncco_models.py). Each flow is driven the way Vonage
drives it: the answer webhook, then the URLs the NCCOs themselves give (a live voicemail's
fallback, each PIN entry), through the functions as functions-framework serves them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from shared.adapters.local_blob_store import LocalBlobStore
from shared.config.settings import Settings
from shared.core.pin_prompt import new_transaction, parse_prompt_request
from shared.core.tokens import sign_caller
from shared.flows.inbound import answer_call
from shared.flows.pin_calls import transaction_key
from tests import vonage_payloads as vonage
from tests.ncco_models import check_ncco
from tests.testbed import TOKEN_SECRET, client
from tools.standin.api import make_application_key

VOICEMAIL, LIVE_VOICEMAIL, TALK_LINE, CONFERENCE, STREAMED = (f"44770090000{i}" for i in range(1, 6))
ROUTES = f"""\
"{VOICEMAIL}":
  flow: voicemail
  owner: Sam
  recipients: ["447700900111"]
  language: en-GB
  max_seconds: 90
"{LIVE_VOICEMAIL}":
  flow: voicemail
  capture: stream
  owner: Camille
  recipients: ["447700900111"]
  language: fr-FR
"{TALK_LINE}":
  flow: conversation
  connect: ["447700900200"]
  caller_id: "{TALK_LINE}"
  notice: <speak>This call is recorded.<break time="500ms"/></speak>
  language: en-GB
  max_seconds: 3600
"{CONFERENCE}":
  flow: conversation
  connect: ["447700900300", "+447700900301"]
  labels: [Customer, Agent, Supervisor]
"{STREAMED}":
  flow: stream
"""
ANSWER = {"from": vonage.CALLER, "conversation_uuid": vonage.CONVERSATION, "uuid": vonage.LEG}
KEY = "-----BEGIN PRIVATE KEY-----"
TID = "0b7e6c1e-8a39-4a43-9d43-5b1f1c0e2d11"
PIN = "2468"
# What Vonage is answered with: an NCCO, or None for 204 (no new NCCO: the current one goes on).
Answer = list[dict[str, Any]] | None


@pytest.fixture
def functions(environment: Callable[..., None], tmp_path: Path) -> Path:
    """The functions' environment with every kind of route; returns the local store's folder."""
    make_application_key(tmp_path / "application.pem")
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES, encoding="utf-8")
    environment(
        ROUTES_FILE=str(routes),
        VONAGE_APPLICATION_ID="standin-application",
        VONAGE_PRIVATE_KEY=str(tmp_path / "application.pem"),
        GREETING="<speak>Hello. <emphasis>This call is recorded.</emphasis></speak>",
        # The routes speak British English and French, which the offline engine cannot transcribe.
        TRANSCRIBER="google",
    )
    return tmp_path / "data"


def _answered(response: Any) -> Answer:
    assert response.status_code in (200, 204), response.get_data(as_text=True)
    return None if response.status_code == 204 else response.get_json()


def answer(to: str, caller: str = vonage.CALLER) -> Answer:
    query = {**ANSWER, "to": to, "from": caller}
    return _answered(client("answer").get("/", query_string=query))


def follow(url: str, body: dict[str, Any]) -> Answer:
    """POST a webhook to a URL an NCCO gave: `/<function>?query`."""
    parts = urlsplit(url)
    function = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return _answered(client(function).post("/", query_string=parse_qsl(parts.query), json=body))


def live_voicemail_and_its_fallback(store: Path) -> list[Answer]:
    greeting = answer(LIVE_VOICEMAIL)
    assert greeting is not None
    # The recorder cannot be reached: Vonage asks the connect's eventUrl what to do instead.
    failed = {"status": "failed", "conversation_uuid": vonage.CONVERSATION, "uuid": vonage.LEG}
    return [greeting, follow(greeting[1]["eventUrl"][0], failed)]


def pin_prompt(typed: list[str], *, late: bool = False, **fields: Any) -> Callable[[Path], list[Answer]]:
    """A PIN prompt call placed with tapedeck's own application, then `typed` at each input
    ("" lets the input time out); each answer follows the input URL the NCCO before it gave.
    `late`: then one more input, for the try after the last, as a stale delivery would be."""

    def run(store: Path) -> list[Answer]:
        request = parse_prompt_request(
            {"to": "447700900001", "from": "447700900002", "text": "Enter your PIN.", "pin_code": PIN}
            | {"callback": "https://cb.example.test/pin", **fields}
        )
        doc = new_transaction(TID, request, time.time(), 7)
        doc.place("operator", "standin-application")
        LocalBlobStore(store).write(transaction_key(TID), json.dumps(doc.to_json()).encode(), "application/json")
        query = {"tid": TID, "step": "answer", "sig": sign_caller(TOKEN_SECRET, TID, "prompt-answer")}
        answers = [_answered(client("prompt").get("/", query_string=query))]
        input_url = ""
        for digits in typed:
            ncco = answers[-1]
            assert ncco is not None and ncco[-1]["action"] == "input"
            input_url = ncco[-1]["eventUrl"][0]
            answers.append(follow(input_url, _typed(digits)))
        if late:
            attempt = len(typed) + 1
            answers.append(follow(input_url.replace(f"attempt={len(typed)}", f"attempt={attempt}"), _typed(PIN)))
        return answers

    return run


def _typed(digits: str) -> dict[str, Any]:
    return {"dtmf": {"digits": digits, "timed_out": not digits}, "conversation_uuid": vonage.CONVERSATION}


# Each flow, how to drive it, and the actions of each answer (None: answered 204, no new NCCO).
FLOWS: dict[str, tuple[Callable[[Path], list[Answer]], list[list[str] | None]]] = {
    "stream": (lambda _: [answer(STREAMED)], [["talk", "connect"]]),
    "stream, by default": (lambda _: [answer("447700900999")], [["talk", "connect"]]),
    "stream, from a number Vonage cannot show": (lambda _: [answer("sip-user", "")], [["talk", "connect"]]),
    "voicemail, recorded": (lambda _: [answer(VOICEMAIL)], [["talk", "record", "talk"]]),
    "voicemail, streamed, and recorded when the recorder is out": (
        live_voicemail_and_its_fallback,
        [["talk", "connect", "talk"], ["record", "talk"]],
    ),
    "conversation": (lambda _: [answer(TALK_LINE)], [["talk", "record", "connect"]]),
    "conversation of three, without a notice": (lambda _: [answer(CONFERENCE)], [["record", "connect", "connect"]]),
    "PIN prompt, right first time": (pin_prompt([PIN]), [["talk", "input"], ["talk"]]),
    "PIN prompt, right on the last try, in French, style 3": (
        pin_prompt(["1111", "", PIN], language="fr-FR", voice=3),
        [["talk", "input"], ["talk", "input"], ["talk", "input"], ["talk"]],
    ),
    "PIN prompt, wrong every time": (
        pin_prompt(["1111", "2222", "3333"]),
        [["talk", "input"], ["talk", "input"], ["talk", "input"], None],
    ),
    "PIN prompt, an input after the outcome": (pin_prompt([PIN], late=True), [["talk", "input"], ["talk"], None]),
}


@pytest.mark.parametrize("flow", FLOWS)
def test_every_ncco_of_every_flow_is_one_vonage_takes(functions: Path, flow: str) -> None:
    drive, shapes = FLOWS[flow]
    answers = drive(functions)
    assert [None if a is None else [action["action"] for action in a] for a in answers] == shapes
    for ncco in answers:
        if ncco is not None:
            check_ncco(ncco)


def test_the_demo_routes_load_and_answer_with_nccos_vonage_takes(tmp_path: Path) -> None:
    """The routes `python -m tools.standin setup` writes."""
    from tools.standin.__main__ import DEMO_ROUTES

    demo = tmp_path / "demo-routes.yaml"
    demo.write_text(DEMO_ROUTES, encoding="utf-8")
    settings = Settings.from_env({"ROUTES_FILE": str(demo), "VONAGE_APPLICATION_ID": "app", "VONAGE_PRIVATE_KEY": KEY})
    assert settings.routes.by_number
    for number in settings.routes.by_number:
        check_ncco(answer_call(settings, {**ANSWER, "to": number}, time.time()))
