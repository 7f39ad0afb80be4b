"""Properties: whatever configuration tapedeck starts with, and whatever PIN prompt request it
takes, every NCCO it answers with is one Vonage takes (tests/ncco_models.py). Each field is drawn
mostly from values near Vonage's limits, on both sides of them."""

from __future__ import annotations

import dataclasses
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from hypothesis import event, given, note, settings
from hypothesis import strategies as st

from shared.config.route_fields import FLOWS
from shared.config.routes import parse_routes
from shared.config.settings import Settings
from shared.core.errors import BadRequest, ConfigError
from shared.core.ncco import stream_reconnect
from shared.core.pin_prompt import PinEntry, answer_ncco, apply_input, new_transaction, parse_prompt_request
from shared.core.vonage_limits import TTS_LANGUAGES
from shared.core.webhooks import parse_inbound_call
from shared.flows.inbound import answer_call
from shared.flows.reconnects import stream_event_url, stream_target
from shared.flows.voicemail import voicemail_fallback
from tests import vonage_payloads as vonage
from tests.ncco_models import check_ncco

NOW = 1_800_000_000.0
INPUT_URL = "https://fn.example.test/prompt?tid=t&step=input&sig=s"

e164 = st.from_regex(r"\+?[1-9][0-9]{6,14}", fullmatch=True)
# Two in three numbers E.164, so that most drawn configurations start.
numbers = st.one_of(e164, e164, st.from_regex(r"\+?0?[0-9]{3,16}", fullmatch=True))
languages = st.sampled_from([*TTS_LANGUAGES, "fr-BE", "pt-AO", "xx", "en-us", "en-US\n", ""])
# Texts around the talk limit: plain, SSML (its tags not counted), broken SSML, blank.
lengths = st.one_of(st.integers(0, 60), st.integers(1400, 1600))
texts = st.one_of(
    st.text(min_size=1, max_size=60),
    st.text(min_size=1, max_size=60),
    st.builds(lambda n, c: c * n, lengths, st.sampled_from(["x", " ", "é", "&", "<"])),
    st.builds(
        lambda n, tags: "<speak>" + '<break time="1s"/>' * tags + "y" * n + "</speak>", lengths, st.integers(0, 50)
    ),
    st.sampled_from(["<speak>Tom & Jerry</speak>", "<speak><p>a</speak>", "<speak/>", "  "]),
)
routes_entries = st.fixed_dictionaries(
    {"flow": st.sampled_from([str(flow) for flow in FLOWS])},
    optional={
        "owner": texts,
        "recipients": st.lists(numbers, max_size=2),
        "language": languages,
        "max_seconds": st.integers(-1, 7300),
        "connect": st.one_of(st.lists(numbers, max_size=3), st.lists(numbers, min_size=30, max_size=33)),
        "caller_id": numbers,
        "labels": st.lists(st.sampled_from(["Caller", "Agent", "Boss"]), max_size=4),
        "notice": texts,
        "format": st.sampled_from(["mp3", "wav", "ogg"]),
        "capture": st.sampled_from(["record", "stream"]),
    },
)
environments = st.fixed_dictionaries(
    {},
    optional={
        "GREETING": texts,
        "STREAM_RATE": st.sampled_from(["8000", "16000", "24000", "44100"]),
        "DEFAULT_FLOW": st.sampled_from([str(flow) for flow in FLOWS]),
        "PUBLIC_URL": st.sampled_from(["https://fn.example.test", "https://fn.example.test/a b", "http://[::1]:8080"]),
    },
)


def _answers(settings: Settings, called: str) -> list[list[dict[str, Any]]]:
    """The answer to a call to `called`; for a live voicemail the answer when the recorder is out,
    and for a stream the connect that follows its socket closing before the call."""
    params = {"conversation_uuid": vonage.CONVERSATION, "uuid": vonage.LEG, "from": vonage.CALLER, "to": called}
    first = answer_call(settings, params, NOW)
    answers = [first]
    connect = next((a for a in first if a.get("eventType") == "synchronous"), None)
    if connect is not None:
        sealed = dict(parse_qsl(urlsplit(str(connect["eventUrl"][0])).query))  # type: ignore[index]
        if "fallback" in sealed:
            fallback = voicemail_fallback(settings, sealed | {"status": "failed", **params})
            assert fallback is not None
            answers.append(fallback)
        else:
            again = stream_reconnect(
                parse_inbound_call(params),
                stream=stream_target(settings, vonage.CONVERSATION, NOW),
                event_url=stream_event_url(settings, vonage.CONVERSATION, 2),
                leg=2,
            )
            answers.append(again)
    return answers


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(numbers, routes_entries, max_size=3), environments)
def test_any_configuration_that_starts_answers_only_with_nccos_vonage_takes(
    entries: dict[str, dict[str, Any]], env: dict[str, str]
) -> None:
    try:
        started = Settings.from_env(env)
        routes = parse_routes(json.dumps(entries), "routes.json", started.routes.default_flow)
    except ConfigError as err:
        note(f"refused: {err}")
        event("refused")
        return
    configured = dataclasses.replace(started, routes=routes)
    for called in [*routes.by_number, "447700900999"]:
        for ncco in _answers(configured, called):
            note(f"{called}: {ncco}")
            check_ncco(ncco)


prompt_fields = st.fixed_dictionaries(
    {
        "to": numbers,
        "from": numbers,
        "text": texts,
        "pin_code": st.from_regex(r"[0-9]{1,22}", fullmatch=True),
        "callback": st.just("https://cb.example.test/pin"),
    },
    optional={
        "bye_text": texts,
        "failed_text": texts,
        "language": languages,
        "voice": st.one_of(st.integers(-1, 25), st.sampled_from(["3", "x", True])),
        "max_attempts": st.integers(0, 11),
    },
)


@settings(max_examples=150, deadline=None)
@given(prompt_fields, st.integers(1, 10))
def test_any_pin_prompt_request_taken_answers_only_with_nccos_vonage_takes(
    fields: dict[str, Any], timeout: int
) -> None:
    try:
        request = parse_prompt_request(fields)
    except BadRequest as err:
        note(f"refused: {err.fields}")
        event("refused")
        return
    doc = new_transaction("0b7e6c1e-8a39-4a43-9d43-5b1f1c0e2d11", request, NOW, 7)
    answers = [answer_ncco(doc, INPUT_URL, timeout)]
    wrong = "0" if request.pin_code != "0" else "1"
    for attempt in range(1, doc.max_attempts):
        answers.append(apply_input(doc, PinEntry(attempt, wrong, False), input_url=INPUT_URL, timeout=timeout, now=NOW))
    right = PinEntry(doc.max_attempts, request.pin_code, False)
    answers.append(apply_input(doc, right, input_url=INPUT_URL, timeout=timeout, now=NOW))
    for ncco in answers:
        note(str(ncco))
        check_ncco(ncco)
