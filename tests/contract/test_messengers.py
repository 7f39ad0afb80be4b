"""Messengers: Vonage SMS through the v4 SDK against the stand-in's SMS API over TLS, and the outbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.adapters.local_blob_store import LocalBlobStore
from shared.adapters.outbox_messenger import OutboxMessenger
from shared.adapters.vonage_messenger import SmsRefused, VonageMessenger
from shared.core.ports import TextMessage
from tests.servers import free_port
from tools.standin.api import StandinApi, make_tls_files

PAGE = TextMessage("447700900111", "tapedeck", "[From: +447700900123]\n\nCALL ME BACK\n\nhttps://x/link?id=abc")


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[StandinApi, str]]:
    """The stand-in's SMS API over TLS, and the host to give the SDK as its rest_host."""
    cert, key = make_tls_files(tmp_path)
    # The SDK builds https://<rest_host> URLs; the test trusts the stand-in's certificate.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    api = StandinApi()
    with api.serving("127.0.0.1", free_port(), tls=(cert, key)) as base:
        yield api, base.removeprefix("https://")


def test_vonage_sms_goes_out_through_the_sdk(standin: tuple[StandinApi, str]) -> None:
    api, host = standin
    messenger = VonageMessenger("abcd1234", "s3cret", host)
    message_id = messenger.send(PAGE, "rec-1-447700900111")
    assert message_id == "standin-00000001"
    assert api.sms == [
        {"from": "tapedeck", "to": "447700900111", "text": PAGE.text, "client-ref": "rec-1-447700900111"}
    ]


def test_a_refused_sms_is_a_clear_error(standin: tuple[StandinApi, str]) -> None:
    _, host = standin
    messenger = VonageMessenger("", "", host)
    with pytest.raises(SmsRefused):
        messenger.send(PAGE, "k")


def test_the_outbox_keeps_one_message_per_key(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    outbox = OutboxMessenger(store)
    outbox.send(PAGE, "rec-1-447700900111")
    outbox.send(TextMessage(PAGE.to, PAGE.sender, "a retry with other text"), "rec-1-447700900111")
    (info,) = store.list("outbox/")
    assert json.loads(store.read(info.key).data)["text"] == PAGE.text  # type: ignore[union-attr]
