"""Legal hold and forgetting a number in the recordings browser: admins only, each a form with a
token for that action and user, from the browser's own origin; a held call cannot be deleted; a
request to forget is left for the sweep and listed without its number."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appengine.browser import FORM_TOKEN_SECONDS, create_app, form_token
from shared.config.settings import Settings
from shared.core.call_record import CallRecord, record_status
from shared.core.erasure import FORGET_PREFIX, forget_request_key, number_digest
from shared.flows.calls import update_call
from shared.flows.sweep import run_sweep
from shared.runtime.services import Services
from tests.browser.calls import recorded_stream
from tests.browser.test_guards import delete_token, still_stored
from tests.browser.visitors import ADMIN, NOW, SAME_ORIGIN, VIEWER, Clock, SigningStore, services_on, signed_in, text_of
from tests.testbed import TOKEN_SECRET


def over(call: CallRecord) -> None:
    record_status(call, status="completed", timestamp="2026-11-30T09:01:00.000Z", uuid="leg-1")


HOLD = re.compile(r'/hold">\s*<input type="hidden" name="token" value="([^"]+)"')
FORGET = re.compile(r'action="/forget">\s*<input type="hidden" name="token" value="([^"]+)"')


def hold_token(client: FlaskClient, conversation_uuid: str) -> str:
    found = HOLD.search(client.get(f"/calls/{conversation_uuid}").data.decode())
    assert found is not None
    return found.group(1)


def forget_token(client: FlaskClient) -> str:
    found = FORGET.search(client.get("/forget").data.decode())
    assert found is not None
    return found.group(1)


def test_a_held_call_cannot_be_deleted_until_its_hold_is_cleared(
    local: FlaskClient, store: SigningStore, clock: Clock
) -> None:
    recorded_stream(store, "CON-1", NOW)
    token = hold_token(local, "CON-1")
    held = local.post("/calls/CON-1/hold", data={"token": token, "hold": "set"}, headers=SAME_ORIGIN)
    assert held.status_code == 303
    page = text_of(local.get("/calls/CON-1").data)
    assert "Under legal hold since" in page and "set by local user" in page and "Delete this call" not in page
    record = json.loads(store.read("calls/CON-1/call.json").data)  # type: ignore[union-attr]
    assert record["legal_hold"]["by"] == "local user"

    refused = local.post("/calls/CON-1/delete", data={"token": delete_token(local, "CON-1")}, headers=SAME_ORIGIN)
    assert refused.status_code == 409 and "legal hold" in refused.get_json()["error"]
    assert still_stored(store, "CON-1")

    clock.now += 1
    local.post("/calls/CON-1/hold", data={"token": hold_token(local, "CON-1"), "hold": "clear"}, headers=SAME_ORIGIN)
    clock.now += 1
    assert "Under legal hold" not in text_of(local.get("/calls/CON-1").data)
    done = local.post("/calls/CON-1/delete", data={"token": delete_token(local, "CON-1")}, headers=SAME_ORIGIN)
    assert done.status_code == 303 and not still_stored(store, "CON-1")
    rows = re.findall(
        r"<tr><td>[^<]+</td><td>([^<]+)</td><td>([^<]+)</td>", local.get("/calls/CON-1/audit").data.decode()
    )
    # Newest first; the delete refused while the call was held is not recorded.
    assert rows == [("local user", "delete"), ("local user", "release"), ("local user", "hold")]


def test_viewers_may_neither_hold_nor_forget(tmp_path: Path, store: SigningStore, clock: Clock) -> None:
    recorded_stream(store, "CON-1", NOW)
    viewer = signed_in(tmp_path, store, clock, VIEWER)
    assert "legal hold" not in viewer.get("/calls/CON-1").data.decode()
    assert "Forget a number" not in viewer.get("/").data.decode()
    assert viewer.get("/forget").status_code == 403
    hold = form_token(TOKEN_SECRET, "hold", "CON-1", VIEWER.name, clock())
    assert viewer.post("/calls/CON-1/hold", data={"token": hold, "hold": "set"}, headers=SAME_ORIGIN).status_code == 403
    forget = form_token(TOKEN_SECRET, "forget", "numbers", VIEWER.name, clock())
    answer = viewer.post("/forget", data={"token": forget, "number": "+447700900555"}, headers=SAME_ORIGIN)
    assert answer.status_code == 403 and "admins" in answer.get_json()["error"]
    assert store.list(FORGET_PREFIX) == [] and "legal_hold" not in store.read("calls/CON-1/call.json").data.decode()  # type: ignore[union-attr]

    admin = signed_in(tmp_path, store, clock, ADMIN)
    assert "Forget a number" in admin.get("/").data.decode()
    assert (
        admin.post(
            "/forget", data={"token": forget_token(admin), "number": "+447700900555"}, headers=SAME_ORIGIN
        ).status_code
        == 303
    )


def test_a_request_to_forget_waits_for_the_sweep_and_shows_no_number(
    tmp_path: Path, local: FlaskClient, store: SigningStore, clock: Clock
) -> None:
    recorded_stream(store, "CON-1", NOW, caller="447700900555")
    asked = local.post("/forget", data={"token": forget_token(local), "number": "+447700900555"}, headers=SAME_ORIGIN)
    assert asked.status_code == 303 and asked.headers["Location"].endswith("/forget")
    page = text_of(local.get("/forget").data)
    assert "The number ending 555, asked by local user" in page and "447700900555" not in page
    assert store.read(forget_request_key(number_digest("447700900555"))) is not None

    services = services_on(tmp_path, store, clock)
    update_call(store, "CON-1", over, clock())
    for _ in range(3):  # the index, then the PIN prompts: a batch a run
        run_sweep(services, clock())
    assert store.list(FORGET_PREFIX) == []
    assert store.read("calls/CON-1/call.json") is None
    page = text_of(local.get("/forget").data)
    assert "Nothing waiting." in page and number_digest("447700900555") in page and "447700900555" not in page


def test_a_forget_form_that_expired_or_comes_from_elsewhere_is_refused(
    local: FlaskClient, store: SigningStore, clock: Clock
) -> None:
    token = forget_token(local)
    for headers in ({"Origin": "https://attacker.example"}, {}):
        answer = local.post("/forget", data={"token": token, "number": "+447700900555"}, headers=headers)
        assert answer.status_code == 403
    clock.now += FORM_TOKEN_SECONDS
    assert (
        local.post("/forget", data={"token": token, "number": "+447700900555"}, headers=SAME_ORIGIN).status_code == 403
    )
    assert store.list(FORGET_PREFIX) == []


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("", "E.164"),
        ("call me", "E.164"),
        ("+44 7700", "E.164"),
        ("4477009000011234567", "E.164"),
        ("+447700900000", "own numbers"),
    ],
)
def test_a_number_that_cannot_be_forgotten_is_a_clear_error(tmp_path: Path, number: str, why: str) -> None:
    store = SigningStore(tmp_path / "data")
    routes = tmp_path / "routes.yaml"
    routes.write_text('"447700900000":\n  flow: stream\n')
    env = {"LOCAL_STORAGE_DIR": str(tmp_path / "data"), "STREAM_TOKEN_SECRET": TOKEN_SECRET, "ROUTES_FILE": str(routes)}
    services = Services(Settings.from_env(env), store=store, clock=Clock(NOW))
    client = create_app(services.settings, services).test_client()
    answer = client.post("/forget", data={"token": forget_token(client), "number": number}, headers=SAME_ORIGIN)
    assert answer.status_code == 400 and why in answer.get_json()["error"]
    assert store.list(FORGET_PREFIX) == []


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(number=st.text(max_size=40), hold=st.text(max_size=10))
def test_any_form_input_gets_an_answer_never_a_500(
    local: FlaskClient, store: SigningStore, number: str, hold: str
) -> None:
    if store.read("calls/CON-1/call.json") is None:
        recorded_stream(store, "CON-1", NOW)
    forget = local.post("/forget", data={"token": forget_token(local), "number": number}, headers=SAME_ORIGIN)
    assert forget.status_code in (303, 400)
    if forget.status_code == 400:
        assert "error" in forget.get_json()
    held = local.post(
        "/calls/CON-1/hold", data={"token": hold_token(local, "CON-1"), "hold": hold}, headers=SAME_ORIGIN
    )
    assert held.status_code == 303
