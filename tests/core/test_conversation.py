"""Recorded conversations, the pure parts: the route, the NCCO, the settings check, the SMS summary."""

from __future__ import annotations

import json

import pytest

from shared.config.routes import Route, parse_routes
from shared.config.settings import Settings
from shared.core.call_record import Flow
from shared.core.errors import ConfigError
from shared.core.ncco import conversation_answer
from shared.core.pager import fit_sms, sms_length
from tests.ncco_models import check_ncco
from tests.testbed import routes_env

ROUTES = """\
"447700900002":
  flow: conversation
  connect: ["+447700900200"]
  caller_id: "+447700900002"
  notice: This call is recorded.
  result_webhook: https://crm.example.com/transcripts
  recipients: ["447700900111"]
"447700900003":
  flow: conversation
  connect: ["447700900300", "447700900301"]
  labels: [Customer]
  format: wav
  language: en-GB
"""


def test_a_conversation_route_has_its_parties_labels_and_delivery() -> None:
    routes = parse_routes(ROUTES, "routes.yaml")
    two = routes.for_number("447700900002")
    assert two == Route(
        Flow.CONVERSATION,
        recipients=("447700900111",),
        connect=("447700900200",),
        caller_id="447700900002",
        announcement="This call is recorded.",
        result_webhook="https://crm.example.com/transcripts",
    )
    assert (two.channels, two.channel_labels(), two.format) == (2, ("Caller", "Agent"), "mp3")
    three = routes.for_number("447700900003")
    assert (three.channels, three.channel_labels(), three.format) == (3, ("Customer", "Agent", "Party 2"), "wav")


def test_the_ncco_records_every_leg_before_connecting_and_passes_the_official_models() -> None:
    ncco = conversation_answer(
        parties=("447700900200",),
        caller_id="447700900002",
        announcement="This call is recorded.",
        language="en-GB",
        media_format="mp3",
        max_seconds=None,
        recording_url="https://fn.example.com/recording?sig=x",
        event_url="https://fn.example.com/event",
    )
    assert [a["action"] for a in ncco] == ["talk", "record", "connect"]
    notice, record, connect = ncco
    assert notice == {"action": "talk", "text": "This call is recorded.", "language": "en-GB"}
    assert record == {
        "action": "record",
        "split": "conversation",
        "channels": 2,
        "format": "mp3",
        "eventUrl": ["https://fn.example.com/recording?sig=x"],
        "eventMethod": "POST",
    }
    assert connect["from"] == "447700900002"
    assert connect["endpoint"] == [{"type": "phone", "number": "447700900200"}]
    check_ncco(ncco)


def test_several_parties_get_a_connect_each_and_a_channel_each() -> None:
    ncco = conversation_answer(
        parties=("447700900300", "447700900301"),
        caller_id="",
        announcement="",
        language="en-US",
        media_format="wav",
        max_seconds=600,
        recording_url="https://r",
        event_url="https://e",
    )
    # As Vonage reads it: JSON.
    record, first, second = json.loads(json.dumps(ncco))
    assert record["channels"] == 3 and record["format"] == "wav"
    assert [c["endpoint"][0]["number"] for c in (first, second)] == ["447700900300", "447700900301"]
    assert first["randomFromNumber"] is True and "from" not in first and first["limit"] == 600
    check_ncco(ncco)


def test_amazon_transcribe_with_more_than_two_channels_is_refused_at_start_up(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = routes_env(tmp_path, ROUTES) | {"TRANSCRIBER": "aws", "TRANSCRIBE_BUCKET": "b", "TRANSCRIPTION_API_KEY": "k"}
    with pytest.raises(
        ConfigError, match="447700900003 records 3 channels, but Amazon Transcribe tells apart at most 2"
    ):
        Settings.from_env(env)
    assert Settings.from_env(env | {"TRANSCRIBER": "google"}).routes.for_number("447700900003").channels == 3
    # In a chain, a later engine takes what Amazon refuses.
    chained = ROUTES.replace("  format: wav\n", "  format: wav\n  engines: [aws, google]\n")
    routes_env(tmp_path, chained)
    assert Settings.from_env(env).routes.for_number("447700900003").engines == ("aws", "google")


def test_the_summary_keeps_the_dialogue_lines_and_cuts_at_a_word() -> None:
    dialogue = "[00:00.5] Caller: Hello there.\n[00:05.6] Agent:  Of course."
    assert fit_sms("[Call from +447700900123]", dialogue, "https://x/link?id=a") == (
        f"[Call from +447700900123]\n\n{dialogue}\n\nhttps://x/link?id=a"
    )
    long = "\n".join(f"[00:0{i}.0] Caller: " + "words " * 30 for i in range(5))
    text = fit_sms("[Call from +447700900123]", long, "https://x/link?id=a")
    assert sms_length(text) <= 306 and text.count("\n[00:0") >= 1
    assert text.endswith("...\n\nhttps://x/link?id=a")
