"""The pure core: WAV headers, stream tokens, settings, webhook parsing, call records."""

from __future__ import annotations

import io
import json
import wave
from typing import Any

import pytest

from shared.config.settings import (
    BROWSER_SECRET_NAMES,
    VARIABLES,
    BrowserSettings,
    Settings,
    browser_names,
    require_iap,
)
from shared.core.call_record import call_key, new_call, record_status
from shared.core.errors import BadRequest, ConfigError, Unauthorized
from shared.core.tokens import mint_stream_token, verify_stream_token
from shared.core.wav import parse_wav, wav_header
from shared.core.webhooks import parse_call_event, parse_inbound_call
from tests.testbed import DATA
from tools.deploy import ENV_NAMES


def test_wav_header_is_read_back_by_the_standard_library() -> None:
    pcm = bytes(range(256)) * 25
    data = wav_header(16000, len(pcm)) + pcm
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        assert w.getnframes() == len(pcm) // 2
        assert w.readframes(w.getnframes()) == pcm


def test_wav_header_of_the_fixture_matches_ours() -> None:
    fixture = (DATA / "voicemail_outage.wav").read_bytes()
    audio = parse_wav(fixture)
    assert (audio.sample_rate, audio.channels) == (16000, 1)
    assert wav_header(16000, len(audio.pcm)) + audio.pcm == fixture[:44] + audio.pcm


@pytest.mark.parametrize("data", [b"", b"RIFF0000WAVX", b"RIFF\x04\x00\x00\x00WAVE"])
def test_parse_wav_refuses_what_is_not_a_pcm_wav(data: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_wav(data)


def test_stream_token_binds_the_conversation_and_expires() -> None:
    token = mint_stream_token("s3cret", "CON-1", now=1000, ttl=60)
    verify_stream_token("s3cret", "CON-1", token, now=1059)
    with pytest.raises(Unauthorized, match="expired"):
        verify_stream_token("s3cret", "CON-1", token, now=1061)
    with pytest.raises(Unauthorized, match="conversation"):
        verify_stream_token("s3cret", "CON-2", token, now=1000)
    with pytest.raises(Unauthorized):
        verify_stream_token("other", "CON-1", token, now=1000)
    expires, mac = token.split(".")
    with pytest.raises(Unauthorized):
        verify_stream_token("s3cret", "CON-1", f"{int(expires) + 999}.{mac}", now=1000)
    with pytest.raises(Unauthorized, match="malformed"):
        verify_stream_token("s3cret", "CON-1", "garbage", now=1000)


def test_settings_defaults_are_the_embedded_local_run() -> None:
    settings = Settings.from_env({})
    assert settings.storage.kind == "local"
    assert str(settings.storage.local_dir) == "data"
    assert settings.stream.rate == 16000
    assert settings.stream.recorder_url == "ws://localhost:8080/socket"
    assert settings.vonage.signature_secret is None
    assert len(settings.stream.token_secret) > 20


class Watched(dict[str, str]):
    """An environment that remembers every variable asked for."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


def test_settings_read_every_declared_variable_and_nothing_else() -> None:
    env = Watched(
        {
            "TASK_QUEUE": "cloud-tasks",
            "GOOGLE_CLOUD_PROJECT": "p",
            "TASKS_LOCATION": "l",
            "CLOUD_TASKS_EMULATOR_HOST": "h:1",
        }
    )
    settings = Settings.from_env(env)
    assert env.asked == {variable.name for variable in VARIABLES}
    assert (settings.tasks.queue, settings.tasks.project, settings.tasks.service_account) == ("cloud-tasks", "p", None)
    # What deploy passes on: every declared variable but those the platform or a local run sets,
    # and the recordings browser's own.
    platform = {"GOOGLE_CLOUD_PROJECT", "AWS_DEFAULT_REGION", "CLOUD_TASKS_EMULATOR_HOST", "LOCAL_STORAGE_DIR"}
    assert set(ENV_NAMES) == env.asked - platform - {"IAP_AUDIENCE", "IAP_KEYS_URL", "BROWSER_ADMINS"}
    assert {"ALLOW_PRIVATE_CALLBACKS", "VONAGE_PRIVATE_KEY"} <= set(ENV_NAMES)


def test_the_recordings_browser_needs_an_iap_audience_on_cloud_storage_only() -> None:
    gcs = {"STORAGE": "gcs", "GCS_BUCKET": "calls", "STREAM_TOKEN_SECRET": "x"}
    # The functions and the recorder start without one: only the browser asks.
    settings = Settings.from_env(gcs)
    with pytest.raises(ConfigError, match="IAP_AUDIENCE is required for the recordings browser when STORAGE=gcs"):
        require_iap(settings)

    audience = "/projects/123456789012/apps/tapedeck-demo"
    guarded = Settings.from_env({**gcs, "IAP_AUDIENCE": audience})
    assert require_iap(guarded) == audience
    assert guarded.browser == BrowserSettings(audience, "https://www.gstatic.com/iap/verify/public_key")
    assert require_iap(Settings.from_env({})) is None
    local_keys = Settings.from_env({"IAP_KEYS_URL": "http://127.0.0.1:9/public_key"})
    assert local_keys.browser.iap_keys_url == "http://127.0.0.1:9/public_key"


def test_the_recordings_browser_is_deployed_with_its_own_few_settings() -> None:
    assert set(browser_names()) == {
        "STORAGE",
        "GCS_BUCKET",
        "SIGNED_URL_TTL",
        "LINK_TTL_DAYS",
        "PUBLIC_URL",
        "LOG_LEVEL",
        "STREAM_TOKEN_SECRET",
        "IAP_AUDIENCE",
        "IAP_KEYS_URL",
        "BROWSER_ADMINS",
    }
    assert BROWSER_SECRET_NAMES == ("STREAM_TOKEN_SECRET",)


def test_inbound_call_accepts_a_withheld_caller() -> None:
    call = parse_inbound_call({"conversation_uuid": "CON-1", "uuid": "u", "to": "447700900000", "from": ""})
    assert call.from_ == ""


@pytest.mark.parametrize(
    "params",
    [
        {"uuid": "u", "to": "1"},
        {"conversation_uuid": "../../etc", "uuid": "u", "to": "1"},
        {"conversation_uuid": "CON-1", "to": "1"},
        {"conversation_uuid": "CON-1", "uuid": ["u"], "to": "1"},
        {"conversation_uuid": "CON-1", "uuid": "u", "to": "1" * 300},
    ],
)
def test_inbound_call_refuses_missing_or_unsafe_fields(params: dict[str, object]) -> None:
    with pytest.raises(BadRequest):
        parse_inbound_call(params)


def test_call_event_error_reports_and_machine_events() -> None:
    error = parse_call_event({"conversation_uuid": "CON-1", "reason": "bad NCCO", "timestamp": "t"})
    assert (error.status, error.details) == ("error", {"reason": "bad NCCO"})
    machine = parse_call_event({"conversation_uuid": "CON-1", "status": "machine", "call_uuid": "c", "timestamp": "t"})
    assert machine.uuid == "c"
    # Any JSON object from Vonage is an event: no status, no timestamp, no conversation at all.
    notify = parse_call_event({"conversation_uuid": "CON-1", "payload": {"foo": "bar"}, "timestamp": "t"})
    assert notify.status == "unknown"
    answered = parse_call_event({"conversation_uuid": "CON-1", "status": "answered"})
    assert answered.timestamp == ""
    assert parse_call_event({"status": "answered"}).conversation_uuid == ""
    with pytest.raises(BadRequest):
        parse_call_event({"conversation_uuid": "CON-1\n", "status": "answered"})
    with pytest.raises(BadRequest):
        parse_call_event({"type": "transfer", "conversation_uuid_to": "../x", "uuid": "u"})


def test_status_history_ignores_duplicates_and_orders_by_time() -> None:
    call = new_call("CON-1")
    assert record_status(call, status="answered", timestamp="2026-01-01T00:00:02.000Z", uuid="u")
    assert record_status(call, status="started", timestamp="2026-01-01T00:00:01.000Z", uuid="u", from_="44", to="33")
    assert not record_status(call, status="answered", timestamp="2026-01-01T00:00:02.000Z", uuid="u")
    stored = json.loads(json.dumps(call.to_json()))
    assert [e["status"] for e in stored["events"]] == ["started", "answered"]
    assert stored["status"] == "answered"
    assert (stored["from"], stored["to"], stored["uuids"]) == ("44", "33", ["u"])


def test_call_keys_stay_under_their_prefix() -> None:
    assert call_key("CON-abc", "audio.wav") == "calls/CON-abc/audio.wav"
    with pytest.raises(BadRequest):
        call_key("a/b", "audio.wav")
