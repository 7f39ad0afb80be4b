"""Who listened: each play, download and delete is recorded in the call's audit log, with who asked,
once per play however many ranges the player asks for; admins read it on the call's audit page,
which outlives the call's deletion; when the entry cannot be written, nothing is served."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from appengine.browser import create_app
from shared.adapters.local_blob_store import LocalBlobStore
from shared.core.audit import AuditAction, AuditEntry, audit_key
from shared.core.errors import TapedeckError
from shared.runtime.services import Services
from tests.browser.calls import recorded_stream
from tests.browser.test_guards import delete_token
from tests.browser.visitors import ADMIN, NOW, SAME_ORIGIN, VIEWER, Clock, SigningStore, services_on, signed_in, text_of

AUDIO = "calls/CON-1/audio.wav"


class FailingAudit(LocalBlobStore):
    """A local folder whose audit log cannot be written, as a store that is down would refuse."""

    def write(self, key: str, data: bytes, *args: object, **kwargs: object) -> int:
        if key.startswith("audit/"):
            raise OSError("the disk is full")
        return super().write(key, data, *args, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "data")


def local_on(tmp_path: Path, store: LocalBlobStore, clock: Clock) -> FlaskClient:
    services: Services = services_on(tmp_path, store, clock)  # type: ignore[arg-type]
    return create_app(services.settings, services).test_client()


@pytest.fixture
def local(tmp_path: Path, store: LocalBlobStore, clock: Clock) -> FlaskClient:
    """`nox -s serve`'s browser on a local folder: it sends the bytes itself, answering ranges."""
    return local_on(tmp_path, store, clock)


def entries(store: LocalBlobStore, conversation_uuid: str = "CON-1") -> list[dict[str, object]]:
    """The call's stored entries, oldest first."""
    found = store.list(f"audit/{conversation_uuid}/")
    return [json.loads(blob.data) for blob in store.read_many([info.key for info in found]) if blob]


def test_a_play_is_recorded_once_with_who_played_it(local: FlaskClient, store: LocalBlobStore, clock: Clock) -> None:
    recorded_stream(store, "CON-1", NOW)
    # A player starts from byte 0, then asks for what it plays and seeks to.
    first = local.get("/calls/CON-1/audio/audio.wav", headers={"Range": "bytes=0-"})
    assert first.status_code == 206
    for later in ("bytes=65536-", "bytes=100-199", "bytes=-500"):
        assert local.get("/calls/CON-1/audio/audio.wav", headers={"Range": later}).status_code == 206
    assert local.head("/calls/CON-1/audio/audio.wav").status_code == 200

    # Only who, when, what, which call and which object: no audio, words or numbers.
    assert entries(store) == [
        {"action": "play", "at": "2026-11-30T10:00:00.000Z", "by": "local user", "call": "CON-1", "object": AUDIO}
    ]
    # A player that asks for the first bytes again at once (Chromium does) is still playing once.
    assert local.get("/calls/CON-1/audio/audio.wav", headers={"Range": "bytes=0-"}).status_code == 206
    assert len(entries(store)) == 1
    # Later, a request without a Range (a player that sends none, or a script) is a play of its own.
    clock.now += 10
    assert local.get("/calls/CON-1/audio/audio.wav").status_code == 200
    assert [entry["action"] for entry in entries(store)] == ["play", "play"]
    # A range further in is the same play for ten minutes; after that it is recorded again.
    clock.now += 599
    assert local.get("/calls/CON-1/audio/audio.wav", headers={"Range": "bytes=4096-"}).status_code == 206
    assert len(entries(store)) == 2
    clock.now += 2
    assert local.get("/calls/CON-1/audio/audio.wav", headers={"Range": "bytes=4096-"}).status_code == 206
    assert len(entries(store)) == 3


def test_a_range_asked_for_by_hand_with_no_play_begun_is_recorded(local: FlaskClient, store: LocalBlobStore) -> None:
    recorded_stream(store, "CON-1", NOW)
    assert local.get("/calls/CON-1/audio/audio.wav", headers={"Range": "bytes=44-"}).status_code == 206
    assert [(entry["action"], entry["object"]) for entry in entries(store)] == [("play", AUDIO)]


def test_nothing_is_recorded_for_a_recording_not_served(local: FlaskClient, store: LocalBlobStore) -> None:
    recorded_stream(store, "CON-1", NOW)
    assert local.get("/calls/CON-1/audio/call.json").status_code == 404
    assert local.get("/calls/CON-nobody/audio/audio.wav").status_code == 404
    assert local.get("/calls/CON-1").status_code == 200
    assert store.list("audit/") == []


def test_the_call_page_fetches_no_audio_until_played_and_offers_a_download(
    local: FlaskClient, store: LocalBlobStore
) -> None:
    recorded_stream(store, "CON-1", NOW)
    html = local.get("/calls/CON-1").data.decode()
    # A page view is not a play: the player loads nothing until it is played.
    assert '<audio controls preload="none"' in html
    assert 'href="/calls/CON-1/audio/audio.wav?download=1" download="audio.wav"' in html

    answer = local.get("/calls/CON-1/audio/audio.wav?download=1")
    assert answer.status_code == 200 and answer.data == store.read(AUDIO).data  # type: ignore[union-attr]
    assert answer.headers["Content-Disposition"] == "attachment; filename=audio.wav"
    assert [(e["action"], e["object"]) for e in entries(store)] == [("download", AUDIO)]


def test_the_audit_page_lists_plays_downloads_and_the_delete_newest_first_and_outlives_the_call(
    local: FlaskClient, store: LocalBlobStore, clock: Clock
) -> None:
    recorded_stream(store, "CON-1", NOW)
    recorded_stream(store, "CON-2", NOW)
    local.get("/calls/CON-1/audio/audio.wav")
    clock.now += 60
    local.get("/calls/CON-1/audio/audio.wav?download=1")
    local.get("/calls/CON-2/audio/audio.wav")
    clock.now += 60
    token = delete_token(local, "CON-1")
    assert local.post("/calls/CON-1/delete", data={"token": token}, headers=SAME_ORIGIN).status_code == 303
    assert [info.key for info in store.list("calls/CON-1/")] == ["calls/CON-1/call.json"]
    assert entries(store)[-1] == {
        "action": "delete",
        "at": "2026-11-30T10:02:00.000Z",
        "by": "local user",
        "call": "CON-1",
    }

    call_page = local.get("/calls/CON-1").data.decode()
    assert 'href="/calls/CON-1/audit"' in call_page
    page = local.get("/calls/CON-1/audit")
    assert page.status_code == 200
    text = text_of(page.data)
    assert text.index("2026-11-30 10:02:00 local user delete") < text.index("2026-11-30 10:01:00 local user download")
    assert text.index("download audio.wav") < text.index("2026-11-30 10:00:00 local user play audio.wav")
    assert text.count("local user") == 4  # three entries of CON-1's, and who is signed in
    # CON-2's own log has its one play, and never shows CON-1's.
    assert text_of(local.get("/calls/CON-2/audit").data).count(" play ") == 1


def test_an_unknown_call_has_no_audit_page(local: FlaskClient) -> None:
    assert local.get("/calls/CON-nobody/audit").status_code == 404
    assert local.get("/calls/..%2Fcalls/audit").status_code in (400, 404)


def test_a_viewer_is_recorded_but_may_not_read_the_audit_log(
    tmp_path: Path, store: LocalBlobStore, clock: Clock
) -> None:
    signing = SigningStore(tmp_path / "data")
    recorded_stream(signing, "CON-1", NOW)
    viewer = signed_in(tmp_path, signing, clock, VIEWER)
    # On Cloud Storage each play is one redirect to a signed URL.
    assert viewer.get("/calls/CON-1/audio/audio.wav", headers={"Range": "bytes=0-"}).status_code == 302
    assert viewer.get("/calls/CON-1/audio/audio.wav", headers={"Range": "bytes=4096-"}).status_code == 302
    assert signing.signed == [AUDIO, AUDIO]
    assert [(e["by"], e["action"]) for e in entries(signing)] == [("val@example.com", "play")]

    refused = viewer.get("/calls/CON-1/audit")
    assert refused.status_code == 403 and "error" in refused.get_json()
    assert "/audit" not in viewer.get("/calls/CON-1").data.decode()

    admin = signed_in(tmp_path, signing, clock, ADMIN)
    assert "val@example.com play audio.wav" in text_of(admin.get("/calls/CON-1/audit").data)


def test_when_the_audit_log_cannot_be_written_nothing_is_served_or_deleted(tmp_path: Path, clock: Clock) -> None:
    failing = FailingAudit(tmp_path / "data")
    recorded_stream(failing, "CON-1", NOW)
    client = local_on(tmp_path, failing, clock)

    for url in ("/calls/CON-1/audio/audio.wav", "/calls/CON-1/audio/audio.wav?download=1"):
        answer = client.get(url)
        assert answer.status_code == 503 and answer.mimetype == "application/json", url
        assert "could not be recorded in the audit log" in answer.get_json()["error"]
    # A range further in, with no play recorded before it, is not served either.
    assert client.get("/calls/CON-1/audio/audio.wav", headers={"Range": "bytes=100-199"}).status_code == 503

    token = delete_token(client, "CON-1")
    refused = client.post("/calls/CON-1/delete", data={"token": token}, headers=SAME_ORIGIN)
    assert refused.status_code == 503 and "audit log" in refused.get_json()["error"]
    assert failing.read(AUDIO) is not None
    assert failing.list("audit/") == []


def test_an_entry_is_stored_as_a_small_document_of_its_own() -> None:
    entry = AuditEntry("CON-1", AuditAction.PLAY, "sam@example.com", NOW + 0.25, AUDIO)
    assert entry.to_json() == {
        "call": "CON-1",
        "action": "play",
        "by": "sam@example.com",
        "at": "2026-11-30T09:00:00.250Z",
        "object": AUDIO,
    }
    assert AuditEntry.from_json(entry.to_json()) == entry
    assert audit_key(entry, "a1b2c3") == "audit/CON-1/20261130T090000.250Z-a1b2c3.json"
    for bad in ({}, entry.to_json() | {"action": "listen"}, entry.to_json() | {"call": "../x"}):
        with pytest.raises((KeyError, ValueError, TapedeckError)):
            AuditEntry.from_json(bad)
