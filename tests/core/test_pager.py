"""The page text, the routes file and the voicemail NCCO: pure functions."""

from __future__ import annotations

import json

from vonage_voice.models import Record, Talk

from shared.config.routes import Route, parse_routes
from shared.core.call_record import Flow
from shared.core.ncco import voicemail_answer
from shared.core.pager import build_pager_text, sms_length, sms_limit
from shared.core.webhooks import InboundCall
from tests.testbed import DATA
from tools.standin.inbound_calls import DtmfPress
from tools.standin.recordings import record_length

LINK = "https://fn.example.test/link?id=AbCdEfGhIjKlMnOp"


def test_the_page_has_the_caller_the_message_in_upper_case_and_the_link() -> None:
    text = build_pager_text("447700900123", "the production database is down, please call me back", LINK)
    assert text == f"[From: +447700900123]\n\nTHE PRODUCTION DATABASE IS DOWN, PLEASE CALL ME BACK\n\n{LINK}"


def test_a_long_message_is_cut_at_a_word_to_two_segments_with_an_ellipsis() -> None:
    words = "please call me back about the outage in the database cluster " * 20
    text = build_pager_text("447700900123", words, LINK)
    assert sms_length(text) <= 306 == sms_limit(text)
    _, body, link = text.split("\n\n")
    assert link == LINK and body.endswith("...")
    assert words.upper().startswith(body.removesuffix("..."))


def test_gsm_extension_characters_and_unicode_are_counted_as_sms_counts_them() -> None:
    assert sms_length("[a]") == 5
    assert sms_limit("plain") == 306
    assert sms_limit("café ☎") == 134
    text = build_pager_text("447700900123", "☎ " + "x" * 400, LINK)
    assert sms_length(text) <= 134


def test_withheld_and_non_numeric_callers() -> None:
    assert build_pager_text("", "hi", None) == "[From: withheld]\n\nHI"
    assert build_pager_text("anonymous", "hi", LINK).startswith("[From: anonymous]")


ROUTES = """\
"447700900001":
  flow: voicemail
  owner: Sam
  recipients: ["+447700900111", "447700900222"]
  language: en-GB
  max_seconds: 90
"447700900002": {"flow": "stream"}
"""


def test_routes_pick_the_flow_and_mailbox_by_called_number() -> None:
    routes = parse_routes(ROUTES, "routes.yaml", default_flow="voicemail")
    assert routes.for_number("+447700900001") == Route(
        Flow.VOICEMAIL, "Sam", ("447700900111", "447700900222"), "en-GB", 90
    )
    assert routes.for_number("447700900002").flow == "stream"
    assert routes.for_number("447700900999").flow == "voicemail"


def test_json_routes_are_read_too() -> None:
    routes = parse_routes('{"447700900001": {"flow": "voicemail", "recipients": ["447700900111"]}}', "r.json")
    assert routes.for_number("447700900001").recipients == ("447700900111",)


def test_the_voicemail_ncco_passes_the_official_models() -> None:
    call = InboundCall("CON-1", "leg", "", "447700900001")
    ncco = voicemail_answer(call, owner="Sam", language="en-GB", max_seconds=90, recording_url="https://x/recording")
    # As Vonage reads it: JSON.
    greeting, record, thanks = json.loads(json.dumps(ncco))
    assert "Sam" in greeting["text"]
    assert record["timeOut"] == 90 and record["endOnSilence"] == 3 and record["endOnKey"] == "#"
    assert record["beepStart"] is True and record["eventUrl"] == ["https://x/recording"]
    for action, model in ((greeting, Talk), (record, Record), (thanks, Talk)):
        assert model(**action).model_dump(mode="json", by_alias=True, exclude_none=True) == action


def test_the_stand_in_ends_a_recording_on_silence_key_or_time_out() -> None:
    from shared.core.wav import parse_wav

    speech = parse_wav((DATA / "voicemail_outage.wav").read_bytes()).pcm
    pcm = speech + bytes(32000 * 5)  # then five seconds of silence
    length, reason = record_length(pcm, 16000, {"endOnSilence": 3}, [])
    assert reason == "endOnSilence"
    assert len(speech) < length <= len(speech) + 3 * 32000 + 640
    assert record_length(pcm, 16000, {"timeOut": 4}, []) == (4 * 32000, "timeOut")
    assert record_length(pcm, 16000, {"endOnKey": "#"}, [DtmfPress("1", 1), DtmfPress("#", 2)]) == (64000, "endOnKey")
