"""A route that would give Vonage an NCCO it refuses stops start-up, naming the route's number and
field (with the line). Settings Vonage would refuse are in test_config_refusals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.config.settings import Settings
from shared.core.errors import ConfigError
from tests.testbed import routes_env

NUMBER = "447700900002"
CONVERSATION = '  flow: conversation\n  connect: ["447700900200"]\n'
VOICEMAIL = '  flow: voicemail\n  recipients: ["447700900111"]\n'


def start(tmp_path: Path, entry: str, **env: str) -> Settings:
    """Settings.from_env as at start-up, with a routes file holding `entry` for NUMBER."""
    return Settings.from_env({**routes_env(tmp_path, f'"{NUMBER}":\n{entry}'), **env})


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        # Vonage's phone endpoint takes E.164 of 7 to 15 digits; the routes file took 5 to 15.
        (
            '  flow: conversation\n  connect: ["12345"]\n',
            "line 3: route 447700900002, connect: '12345' is not an E.164",
        ),
        ('  flow: conversation\n  connect: ["07700900200"]\n', "connect: '07700900200' is not an E.164 number"),
        (CONVERSATION + '  caller_id: "123456"\n', "line 4: route 447700900002, caller_id: '123456' is not an E.164"),
        # Well-formed BCP 47, but not a language Vonage speaks.
        (VOICEMAIL + "  language: fr-BE\n", "line 4: route 447700900002, language: 'fr-BE' is not one of Vonage's"),
        (CONVERSATION + "  notice: Recorded.\n  language: pt-AO\n", "language: 'pt-AO' is not one of Vonage's"),
        (CONVERSATION + "  notice: " + "x" * 1501 + "\n", "line 4: route 447700900002, notice: is 1,501 characters"),
        (CONVERSATION + '  notice: "<speak>Tom & Jerry</speak>"\n', "notice: starts with <speak> but is not"),
        (CONVERSATION + '  notice: "   "\n', "notice: has nothing to say"),
        (VOICEMAIL + "  owner: " + "x" * 1450 + "\n", "owner: the greeting that names the owner is 1,535 characters"),
        (
            '  flow: conversation\n  connect: ["447700900200", "447700900201"]\n  format: mp3\n',
            "line 4: route 447700900002, format: mp3 holds at most 2 channels, and this records 3: use wav",
        ),
        (
            "  flow: conversation\n  connect: [" + ", ".join(str(447700900200 + i) for i in range(32)) + "]\n",
            "connect: a conversation records at most 32 channels, the caller's and one per party: 32 parties",
        ),
        (VOICEMAIL + "  max_seconds: 7201\n", "max_seconds: must be a whole number from 3 to 7200"),
        (VOICEMAIL + "  max_seconds: 2\n", "max_seconds: must be a whole number from 3 to 7200"),
    ],
    ids=lambda value: value[:60] if isinstance(value, str) and not value.startswith("  flow") else "",
)
def test_a_route_vonage_would_refuse_names_its_number_and_field(tmp_path: Path, entry: str, says: str) -> None:
    with pytest.raises(ConfigError, match=f"routes.yaml, .*{re.escape(says)}"):
        start(tmp_path, entry)


def test_what_vonage_takes_still_loads(tmp_path: Path) -> None:
    three = start(tmp_path, '  flow: conversation\n  connect: ["447700900200", "447700900201"]\n').routes
    # Vonage's own default: wav above the two channels an mp3 holds.
    assert three.for_number(NUMBER).format == "wav"
    assert start(tmp_path, CONVERSATION).routes.for_number(NUMBER).format == "mp3"
    # A conversation without an announcement says nothing: its language is only the transcription's.
    # (Transcribed by Google, whose languages are not checked: the offline engine hears only en-US.)
    google = {"TRANSCRIBER": "google"}
    assert start(tmp_path, CONVERSATION + "  language: pt-AO\n", **google).routes.for_number(NUMBER).language == "pt-AO"
    welsh = start(tmp_path, VOICEMAIL + "  language: en-GB-WLS\n", **google).routes.for_number(NUMBER)
    assert welsh.language == "en-GB-WLS"
    spoken = "<speak>" + '<break time="1s"/>' * 100 + "x" * 1500 + "</speak>"
    assert start(tmp_path, CONVERSATION + f"  notice: '{spoken}'\n").routes.for_number(NUMBER).announcement == spoken
    assert Settings.from_env({"GREETING": spoken}).stream.greeting == spoken
