"""The browser's own guards, each shown refusing: a viewer changing anything; locally, a request for
a host name that is not loopback's (a page rebound to 127.0.0.1); a call.json naming an object
outside its call; a delete form that has expired or comes from another origin. Then what the pages
show of what cannot be read, and URLs shown without their query."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from appengine.browser import FORM_TOKEN_SECONDS, form_token
from shared.adapters.local_blob_store import LocalBlobStore
from shared.config.settings import Settings
from shared.core.errors import ConfigError
from shared.core.iap import is_listed
from shared.core.operations import Problem, ProblemKind
from shared.flows.browse import without_query
from shared.flows.calls import update_call
from shared.flows.problems import note_problem
from tests.browser.calls import recorded_stream
from tests.browser.visitors import ADMIN, NOW, SAME_ORIGIN, TOKEN, VIEWER, Clock, SigningStore, signed_in, text_of
from tests.testbed import TOKEN_SECRET


def delete_token(client: FlaskClient, conversation_uuid: str) -> str:
    found = re.search(TOKEN, client.get(f"/calls/{conversation_uuid}/delete").data.decode())
    assert found is not None
    return found.group(1)


def still_stored(store: LocalBlobStore, conversation_uuid: str) -> bool:
    return store.read(f"calls/{conversation_uuid}/audio.wav") is not None


# --- roles ----------------------------------------------------------------------------------------


def test_a_viewer_may_look_but_not_delete_or_act_on_problems(tmp_path: Path, store: SigningStore, clock: Clock) -> None:
    recorded_stream(store, "CON-1", NOW)
    note_problem(store, Problem(ProblemKind.DELIVERY, "CON-1-result", NOW, "result webhook: HTTP 500", "CON-1", True))
    viewer = signed_in(tmp_path, store, clock, VIEWER)

    page = viewer.get("/calls/CON-1")
    assert page.status_code == 200 and "Signed in as val@example.com (viewer)" in text_of(page.data)
    assert "Delete this call" not in page.data.decode() and "/delete" not in page.data.decode()
    assert viewer.get("/calls/CON-1/audio/audio.wav").status_code == 302
    problems = viewer.get("/problems").data.decode()
    assert "result webhook: HTTP 500" in problems and "<form" not in problems
    assert "Only the browser's admins may retry or dismiss." in text_of(problems.encode())

    confirm = viewer.get("/calls/CON-1/delete")
    assert confirm.status_code == 403 and "admins" in confirm.get_json()["error"]
    # Even with a token made for them, as a page could have before they lost the role.
    token = form_token(TOKEN_SECRET, "delete", "CON-1", VIEWER.name, clock())
    refused = viewer.post("/calls/CON-1/delete", data={"token": token}, headers=SAME_ORIGIN)
    assert refused.status_code == 403 and refused.get_json() == {
        "error": "only the browser's admins may change or delete calls; you may look"
    }
    assert still_stored(store, "CON-1")
    retry = form_token(TOKEN_SECRET, "problem", "problems/delivery/CON-1-result", VIEWER.name, clock())
    assert (
        viewer.post("/problems/delivery/CON-1-result/retry", data={"token": retry}, headers=SAME_ORIGIN).status_code
        == 403
    )

    admin = signed_in(tmp_path, store, clock, ADMIN)
    assert "Signed in as alice@example.com (admin)" in text_of(admin.get("/calls/CON-1").data)
    done = admin.post("/calls/CON-1/delete", data={"token": delete_token(admin, "CON-1")}, headers=SAME_ORIGIN)
    assert done.status_code == 303 and not still_stored(store, "CON-1")


def test_locally_the_one_user_is_an_admin(local: FlaskClient, store: SigningStore) -> None:
    recorded_stream(store, "CON-1", NOW)
    page = text_of(local.get("/calls/CON-1").data)
    assert "Signed in as local user (admin)" in page and "Delete this call" in page


def test_admins_are_accounts_matched_without_case() -> None:
    settings = Settings.from_env(
        {"BROWSER_ADMINS": " alice@example.com, serviceAccount:ops@p.iam.gserviceaccount.com ,"}
    )
    admins = settings.browser.admins
    assert admins == ("user:alice@example.com", "serviceAccount:ops@p.iam.gserviceaccount.com")
    assert is_listed("Alice@Example.com", admins) and not is_listed("sam@example.com", admins)
    assert not is_listed("alice@example.com.evil", admins)
    for bad in ("group:ops@example.com", "domain:example.com", "allUsers", "user:", "alice"):
        with pytest.raises(ConfigError, match="BROWSER_ADMINS"):
            Settings.from_env({"BROWSER_ADMINS": bad})


# --- the local host check -------------------------------------------------------------------------


def test_locally_only_loopback_host_names_are_answered(local: FlaskClient, store: SigningStore) -> None:
    recorded_stream(store, "CON-1", NOW)
    for host in ("localhost", "localhost:8080", "LOCALHOST:8080", "127.0.0.1", "127.0.0.1:8080", "[::1]:8080"):
        assert local.get("/calls/CON-1", headers={"Host": host}).status_code == 200, host
    rebound = ("rebind.example", "rebind.example:8080", "localhost.rebind.example", "127.0.0.1.nip.io:8080",
               "localhost.:8080", "0.0.0.0:8080", "[::1].rebind.example")  # fmt: skip
    for host in rebound:
        answer = local.get("/calls/CON-1/audio/audio.wav", headers={"Host": host})
        assert answer.status_code == 403, host
        assert "localhost, 127.0.0.1 or [::1]" in answer.get_json()["error"]


def test_a_page_rebound_to_loopback_cannot_delete_even_from_its_own_origin(
    local: FlaskClient, store: SigningStore
) -> None:
    recorded_stream(store, "CON-1", NOW)
    token = delete_token(local, "CON-1")
    # Its Origin matches its Host: only the host name gives it away.
    headers = {"Host": "rebind.example:8080", "Origin": "http://rebind.example:8080"}
    assert local.post("/calls/CON-1/delete", data={"token": token}, headers=headers).status_code == 403
    assert still_stored(store, "CON-1")


# --- recordings confined to their call -----------------------------------------------------------


def naming(key: str) -> Callable[..., None]:
    def change(call) -> None:  # type: ignore[no-untyped-def]
        call.recordings[0].object_key = key

    return change


@pytest.mark.parametrize(
    "key",
    [
        "calls/CON-2/audio.wav",
        "calls/CON-1/../CON-2/audio.wav",
        "calls/CON-1/parts/s1/audio.wav",
        "calls/CON-1/transcript.json",
        "calls/CON-1/call.json",
        "prompts/tid-0001.json",
        "audio.wav",
    ],
)
def test_a_call_json_naming_an_object_outside_its_call_gets_no_url_for_it(
    local: FlaskClient, store: SigningStore, key: str
) -> None:
    recorded_stream(store, "CON-1", NOW)
    recorded_stream(store, "CON-2", NOW)
    name = key.rsplit("/", 1)[-1]
    update_call(store, "CON-1", naming(key), NOW + 60)

    page = local.get("/calls/CON-1")
    assert page.status_code == 200 and "<audio" not in page.data.decode()
    assert f"the recording {key} (outside this call)" in text_of(page.data)
    for route in ("audio", "peaks"):
        assert local.get(f"/calls/CON-1/{route}/{name}").status_code == 404, route
    assert store.signed == []
    assert store.read("calls/CON-2/audio.peaks.json") is None

    # Its own recording is still signed, and only that.
    answer = local.get("/calls/CON-2/audio/audio.wav")
    assert answer.status_code == 302 and store.signed == ["calls/CON-2/audio.wav"]


# --- the delete form: expiry, origin, one use ----------------------------------------------------


def test_an_expired_delete_form_is_refused(local: FlaskClient, store: SigningStore, clock: Clock) -> None:
    recorded_stream(store, "CON-1", NOW)
    token = delete_token(local, "CON-1")
    clock.now += FORM_TOKEN_SECONDS
    expired = local.post("/calls/CON-1/delete", data={"token": token}, headers=SAME_ORIGIN)
    assert expired.status_code == 403 and expired.get_json() == {"error": "this form has expired: open the page again"}
    assert still_stored(store, "CON-1")
    # Its expiry is signed: a later one written in does not make it good.
    signature = token.split(".", 1)[1]
    stretched = f"{int(clock.now) + 60}.{signature}"
    assert local.post("/calls/CON-1/delete", data={"token": stretched}, headers=SAME_ORIGIN).status_code == 403
    for odd in ("", ".", f"²³.{signature}", f"-1.{signature}", "9" * 40 + f".{signature}"):
        assert local.post("/calls/CON-1/delete", data={"token": odd}, headers=SAME_ORIGIN).status_code == 403, odd
    clock.now -= 1
    assert local.post("/calls/CON-1/delete", data={"token": token}, headers=SAME_ORIGIN).status_code == 303


def test_a_cross_origin_delete_is_refused(local: FlaskClient, store: SigningStore) -> None:
    recorded_stream(store, "CON-1", NOW)
    token = delete_token(local, "CON-1")
    refused = [
        {"Origin": "https://attacker.example"},
        {"Origin": "http://localhost:9999"},
        {"Origin": "null"},
        {"Origin": "https://attacker.example", "Referer": "http://localhost/calls/CON-1/delete"},
        {"Referer": "https://attacker.example/page"},
        {},
    ]
    for headers in refused:
        answer = local.post("/calls/CON-1/delete", data={"token": token}, headers=headers)
        assert answer.status_code == 403, headers
        assert answer.get_json() == {"error": "this request did not come from the recordings browser's own pages"}
    assert still_stored(store, "CON-1")
    # A browser that sends no Origin sends the Referer the pages allow (same origin only).
    referred = {"Referer": "http://localhost/calls/CON-1/delete"}
    assert local.post("/calls/CON-1/delete", data={"token": token}, headers=referred).status_code == 303


def test_a_delete_form_serves_one_call_one_action_and_once(
    local: FlaskClient, store: SigningStore, clock: Clock
) -> None:
    recorded_stream(store, "CON-1", NOW)
    recorded_stream(store, "CON-2", NOW)
    token = delete_token(local, "CON-1")
    assert local.post("/calls/CON-2/delete", data={"token": token}, headers=SAME_ORIGIN).status_code == 403
    problem = form_token(TOKEN_SECRET, "problem", "CON-1", "local user", clock())
    assert local.post("/calls/CON-1/delete", data={"token": problem}, headers=SAME_ORIGIN).status_code == 403
    assert still_stored(store, "CON-2") and still_stored(store, "CON-1")

    assert local.post("/calls/CON-1/delete", data={"token": token}, headers=SAME_ORIGIN).status_code == 303
    first = json.loads(store.read("calls/CON-1/call.json").data)["deleted"]  # type: ignore[union-attr]
    # Used again, it finds the call deleted: nothing left to delete, and the first deletion stands.
    clock.now += 60
    again = local.post("/calls/CON-1/delete", data={"token": token}, headers=SAME_ORIGIN)
    assert again.status_code == 303
    assert json.loads(store.read("calls/CON-1/call.json").data)["deleted"] == first  # type: ignore[union-attr]
    assert "Delete this call" not in local.get("/calls/CON-1").data.decode()


# --- what cannot be read --------------------------------------------------------------------------


def recordings_as(value: object) -> Callable[[LocalBlobStore], object]:
    def spoil(store: LocalBlobStore) -> None:
        document = json.loads(store.read("calls/CON-1/call.json").data)  # type: ignore[union-attr]
        store.write("calls/CON-1/call.json", json.dumps(document | {"recordings": value}).encode())

    return spoil


def written(name: str, data: bytes) -> Callable[[LocalBlobStore], object]:
    return lambda store: store.write(f"calls/CON-1/{name}", data)


@pytest.mark.parametrize(
    ("spoil", "notice", "playable"),
    [
        (written("call.json", b"{not json"), "call.json", True),
        (written("call.json", b"[]"), "call.json", True),
        (recordings_as("not a list"), "call.json", True),
        (recordings_as([{"object": 7}]), "call.json", True),
        (written("transcript.json", b'{"turns": [{"label": "Caller"}]}'), "The transcript transcript.json", True),
        (written("deliveries/result.json", b'{"url": "https://crm.example/hook"}'), "deliveries/result.json", True),
    ],
)
def test_a_malformed_document_leaves_a_page_of_what_can_be_read_and_delete_works(
    local: FlaskClient, store: SigningStore, spoil: Callable[[LocalBlobStore], object], notice: str, playable: bool
) -> None:
    recorded_stream(store, "CON-1", NOW)
    spoil(store)

    page = local.get("/calls/CON-1")
    assert page.status_code == 200
    assert notice in text_of(page.data)
    assert ('src="/calls/CON-1/audio/audio.wav"' in page.data.decode()) is playable
    assert local.get("/calls/CON-1/peaks/audio.wav").status_code == 200
    assert local.get("/calls/CON-1/live").status_code == 200

    done = local.post("/calls/CON-1/delete", data={"token": delete_token(local, "CON-1")}, headers=SAME_ORIGIN)
    assert done.status_code == 303
    assert [info.key for info in store.list("calls/CON-1/")] == ["calls/CON-1/call.json"]
    record = json.loads(store.read("calls/CON-1/call.json").data)  # type: ignore[union-attr]
    assert record["deleted"] == {"at": "2026-11-30T10:00:00.000Z", "by": "local user"}
    assert "was deleted by local user" in text_of(local.get("/calls/CON-1").data)
    assert "CON-1" not in local.get("/").data.decode()


# --- URLs without their query ---------------------------------------------------------------------


def test_webhook_and_callback_urls_are_shown_without_their_query(local: FlaskClient, store: SigningStore) -> None:
    recorded_stream(store, "CON-1", NOW)
    url = "https://user:pw@crm.example:8443/hooks/result?token=s3cr3t-t0ken#frag"
    failed = {
        "url": url,
        "state": "failed",
        "attempts": 5,
        "delivered": False,
        "status": None,
        "error": f"the host of {url!r} cannot be resolved",
        "permanent": True,
    }
    store.write("calls/CON-1/deliveries/result.json", json.dumps(failed).encode())
    summary = f"result webhook to {url}: HTTP 500 (attempt 5)"
    note_problem(store, Problem(ProblemKind.DELIVERY, "CON-1-result", NOW, summary, "CON-1", True))

    for path in ("/calls/CON-1", "/problems"):
        html = local.get(path).data.decode()
        assert "https://crm.example:8443/hooks/result" in html, path
        assert "s3cr3t" not in html and "frag" not in html and "pw@" not in html, path


def test_without_query_keeps_the_rest_of_the_text() -> None:
    assert without_query("POST https://a.example/x?k=1: HTTP 500") == "POST https://a.example/x: HTTP 500"
    assert without_query("to 'http://[::1]:8080/cb?t=2' failed") == "to 'http://[::1]:8080/cb' failed"
    assert without_query("no url here?k=1") == "no url here?k=1"
    assert without_query("https://a.example:99999/x?k=1") == "https://a.example:99999/x"
