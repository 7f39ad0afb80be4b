"""A route's announcement (a recording notice) is the first thing a caller hears, before anything
is recorded or streamed, in every flow, and the routes file refuses one Vonage cannot speak."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.config.settings import Settings
from shared.core.errors import ConfigError
from shared.flows.inbound import answer_call
from tests import vonage_payloads as vonage
from tests.ncco_models import check_ncco
from tests.testbed import TOKEN_SECRET

NUMBER = "447700900002"
SAID = "Calls to this number are recorded and transcribed."
KEYS = {"VONAGE_APPLICATION_ID": "app", "VONAGE_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----"}
ENTRIES = {
    "stream": "  flow: stream\n",
    "voicemail": '  flow: voicemail\n  owner: Sam\n  recipients: ["447700900111"]\n',
    "live voicemail": '  flow: voicemail\n  capture: stream\n  owner: Sam\n  recipients: ["447700900111"]\n',
    "conversation": '  flow: conversation\n  connect: ["447700900200"]\n',
}
# What records or streams the call: nothing of it may come before the announcement.
CAPTURING = {"record", "connect"}


def settings_with(tmp_path: Path, entry: str) -> Settings:
    routes = tmp_path / "routes.yaml"
    routes.write_text(f'"{NUMBER}":\n{entry}', encoding="utf-8")
    # A fixed secret, so that the same call's stream token and signed URLs come out the same.
    env = {"ROUTES_FILE": str(routes), "PUBLIC_URL": "https://fn.example.test", "STREAM_TOKEN_SECRET": TOKEN_SECRET}
    # Google transcribes: the offline engine hears only en-US, and these routes speak French.
    env["TRANSCRIBER"] = "google"
    return Settings.from_env(env | KEYS)


def answered(settings: Settings) -> list[dict[str, Any]]:
    params = {"to": NUMBER, "from": vonage.CALLER, "conversation_uuid": vonage.CONVERSATION, "uuid": vonage.LEG}
    actions = [dict(action) for action in answer_call(settings, params, 1_796_029_200.0)]
    check_ncco(actions)
    return actions


@pytest.mark.parametrize("flow", sorted(ENTRIES))
def test_the_announcement_comes_first_in_the_routes_language_before_any_recording(tmp_path: Path, flow: str) -> None:
    plain = answered(settings_with(tmp_path, ENTRIES[flow] + "  language: fr-FR\n"))
    announced = answered(settings_with(tmp_path, ENTRIES[flow] + f"  language: fr-FR\n  announcement: {SAID}\n"))
    assert announced[0] == {"action": "talk", "text": SAID, "language": "fr-FR"}
    # The flow goes on as it would without one.
    assert announced[1:] == plain
    first_capture = min(i for i, action in enumerate(announced) if action["action"] in CAPTURING)
    assert first_capture > 0


def test_notice_is_the_older_name_and_only_one_of_the_two_is_taken(tmp_path: Path) -> None:
    older = settings_with(tmp_path, ENTRIES["conversation"] + f"  notice: {SAID}\n")
    assert older.routes.for_number(NUMBER).announcement == SAID
    with pytest.raises(ConfigError, match="give one of them"):
        settings_with(tmp_path, ENTRIES["stream"] + f"  notice: {SAID}\n  announcement: {SAID}\n")


def test_an_announcement_in_a_language_vonage_does_not_speak_is_refused_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="language"):
        settings_with(tmp_path, ENTRIES["stream"] + f"  language: pt-AO\n  announcement: {SAID}\n")
    # Without one, a stream route says nothing in its language: any tag will do.
    assert settings_with(tmp_path, ENTRIES["stream"] + "  language: pt-AO\n").routes.for_number(NUMBER).language
