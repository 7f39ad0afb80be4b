"""A route's engines and languages, checked at start-up: a chain of known engines, languages to
identify among, and an engine that cannot do a route's language refused, naming both."""

from __future__ import annotations

from pathlib import Path

import botocore.session
import pytest

from shared.config.settings import Settings, engines_in_use
from shared.core.engine_languages import AWS_LANGUAGES
from shared.core.errors import ConfigError
from tests.core.test_vonage_refusals import CONVERSATION, NUMBER, VOICEMAIL, start

AWS = {"TRANSCRIBE_BUCKET": "staging", "TRANSCRIPTION_API_KEY": "key"}


def test_amazons_languages_are_those_the_installed_botocore_sends() -> None:
    model = botocore.session.get_session().get_service_model("transcribe")
    assert set(model.shape_for("LanguageCode").enum) == AWS_LANGUAGES


@pytest.mark.parametrize(
    ("entry", "env", "named"),
    [
        # The offline engine's one model is US English.
        (VOICEMAIL + "  language: fr-FR\n", {}, "has language fr-FR, which the offline engine cannot do"),
        (
            CONVERSATION + "  language: en-GB\n  engines: [google, offline]\n",
            {},
            "has language en-GB, which the offline engine",
        ),
        # Amazon's languages are botocore's; a language Vonage speaks may not be one.
        (VOICEMAIL + "  language: yue-HK\n  engines: [aws]\n", AWS, "has language yue-HK, which the aws engine"),
        # Every language Amazon is asked to choose among.
        (
            VOICEMAIL + "  language: en-US\n  languages: [en-US, nl-BE]\n  engines: [aws]\n",
            AWS,
            "has language nl-BE, which the aws engine cannot do: Amazon Transcribe does not transcribe it",
        ),
        # A live stream heard by pocketsphinx.
        (
            '  flow: stream\n  language: de-DE\n  live_webhook: "https://crm.example/live"\n',
            {"LIVE_TRANSCRIBER": "pocketsphinx"},
            "has language de-DE, which the offline engine",
        ),
    ],
)
def test_an_engine_that_cannot_do_a_routes_language_is_refused_naming_both(
    tmp_path: Path, entry: str, env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=f"ROUTES_FILE: {NUMBER} {named}"):
        start(tmp_path, entry, **env)


def test_what_each_engine_can_do_loads(tmp_path: Path) -> None:
    # Google's languages are not checked here (docs/flows.md, "Languages"); the offline engine is asked only en-US,
    # and an engine that cannot identify languages is asked the route's own.
    google = start(tmp_path, VOICEMAIL + "  language: fr-FR\n", TRANSCRIBER="google").routes.for_number(NUMBER)
    assert google.engine_chain("google") == ("google",)
    mixed = VOICEMAIL + "  language: en-US\n  languages: [en-US, es-US]\n  engines: [aws, google, offline]\n"
    settings = start(tmp_path, mixed, **AWS)
    assert settings.routes.for_number(NUMBER).languages == ("en-US", "es-US")
    assert engines_in_use(settings) == ("offline", "aws", "google")


def test_a_route_naming_aws_needs_amazons_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TRANSCRIBE_BUCKET is required when TRANSCRIBER=aws or a route's engines"):
        start(tmp_path, VOICEMAIL + "  engines: [aws, offline]\n")


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        (VOICEMAIL + "  engines: [aws, aws]\n", "engines: aws is given twice"),
        (VOICEMAIL + "  engines: [vonage]\n", "engines: must be some of aws, google, offline, not 'vonage'"),
        (VOICEMAIL + "  engines: [aws, google, offline, aws]\n", "engines: aws is given twice"),
        (VOICEMAIL + "  engine: google\n  engines: [aws]\n", "give engine or engines, not both"),
        (VOICEMAIL + "  languages: [en-US]\n", "give two or more to choose among"),
        (VOICEMAIL + "  languages: [fr-FR, es-ES]\n", "must include the route's language, en-US"),
        (VOICEMAIL + "  languages: [en-US, english]\n", "'english' is not a BCP-47 tag"),
        (VOICEMAIL + "  languages: [en-US, es-US, fr-CA, de-DE, it-IT]\n", "languages: at most 4"),
        ("  flow: stream\n  engines: [google]\n", "only a voicemail or a conversation can have one"),
        ("  flow: stream\n  languages: [en-US, es-US]\n", "only a voicemail or a conversation can have one"),
    ],
)
def test_a_malformed_chain_or_language_list_is_refused_at_its_line(tmp_path: Path, entry: str, says: str) -> None:
    with pytest.raises(ConfigError, match=f"line [0-9]+: route {NUMBER}.*{_escaped(says)}"):
        start(tmp_path, entry, TRANSCRIBER="google")


def _escaped(text: str) -> str:
    import re

    return re.escape(text)


def test_a_chain_defaults_to_the_deployments_engine(tmp_path: Path) -> None:
    settings = start(tmp_path, CONVERSATION, TRANSCRIBER="google")
    assert settings.routes.for_number(NUMBER).engine_chain(settings.transcription.engine) == ("google",)
    assert Settings.from_env({"AWS_DEADLINE": "30"}).transcription.deadlines == {"aws": 30, "google": 120}
    with pytest.raises(ConfigError, match="GOOGLE_DEADLINE must be from 1 to 1500 seconds"):
        Settings.from_env({"GOOGLE_DEADLINE": "1800"})
