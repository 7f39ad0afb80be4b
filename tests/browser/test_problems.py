"""The Problems page in-process: recordings that are not complete, failed pages and deliveries and
tasks given up on, newest first; a retry where one makes sense, asked for once and run by the
sweep; dismissal; the same guards as every page (a form token of the page's own, loopback only)."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from shared.adapters.local_blob_store import LocalBlobStore
from shared.core.call_record import Gap, RecordingState
from shared.core.operations import Problem, ProblemKind, retry_key
from shared.core.times import iso
from shared.flows.calls import update_call
from shared.flows.problems import list_problems, note_problem
from tests.browser.calls import recorded_stream
from tests.browser.visitors import NOW, SAME_ORIGIN, text_of


def some_problems(store: LocalBlobStore) -> None:
    note_problem(
        store,
        Problem(ProblemKind.RECORDING, "CON-1-s1", NOW, "partial: 8.2 s recorded, 11.8 s missing", "CON-1"),
    )
    detail = {"conversation_uuid": "CON-2", "name": "recording-s2"}
    note_problem(
        store,
        Problem(
            ProblemKind.DELIVERY, "CON-2-recording-s2", NOW + 60, "recording webhook: HTTP 500", "CON-2", True, detail
        ),
    )


def forms(html: str) -> dict[str, str]:
    """Each form's action and its token."""
    return dict(
        re.findall(
            r'<form method="post" action="([^"]+)">\s*<input type="hidden" name="token" value="([0-9]+\.[0-9a-f]+)">',
            html,
        )
    )


def test_the_page_lists_problems_newest_first_with_a_retry_only_where_it_makes_sense(
    browser: FlaskClient, store: LocalBlobStore
) -> None:
    some_problems(store)
    page = browser.get("/problems")
    assert page.status_code == 200
    text = text_of(page.data)
    assert text.index("recording webhook: HTTP 500") < text.index("partial: 8.2 s recorded")
    assert "2026-11-30 09:01:00" in text and 'href="/calls/CON-1"' in page.data.decode()
    actions = sorted(forms(page.data.decode()))
    assert actions == [
        "/problems/delivery/CON-2-recording-s2/dismiss",
        "/problems/delivery/CON-2-recording-s2/retry",
        "/problems/recording/CON-1-s1/dismiss",
    ]
    assert 'aria-current="page">Problems' in browser.get("/problems").data.decode()
    assert "No problems." in text_of(browser.get("/problems?after=problems/z").data)


def test_a_retry_is_asked_for_once_with_the_page_own_token_and_dismissal_takes_it_off(
    browser: FlaskClient, store: LocalBlobStore
) -> None:
    some_problems(store)
    tokens = forms(browser.get("/problems").data.decode())
    retry = "/problems/delivery/CON-2-recording-s2/retry"

    assert browser.post(retry, data={"token": "0" * 64}, headers=SAME_ORIGIN).status_code == 403
    assert browser.post(retry, data={"token": tokens[retry]}, headers=SAME_ORIGIN).status_code == 303
    assert store.read(retry_key(ProblemKind.DELIVERY, "CON-2-recording-s2")) is not None
    assert "Retry asked for at 2026-11-30 10:00:00" in text_of(browser.get("/problems").data)
    assert (
        browser.post(
            "/problems/delivery/CON-2-recording-s2/explode", data={"token": tokens[retry]}, headers=SAME_ORIGIN
        ).status_code
        == 404
    )
    nonsense = browser.post("/problems/nonsense/x/retry", data={"token": tokens[retry]}, headers=SAME_ORIGIN)
    assert nonsense.status_code == 404

    dismiss = "/problems/recording/CON-1-s1/dismiss"
    assert browser.post(dismiss, data={"token": tokens[dismiss]}, headers=SAME_ORIGIN).status_code == 303
    assert [p.ident for p in list_problems(store)[0]] == ["CON-2-recording-s2"]


def test_the_problems_page_answers_only_on_this_machine(browser: FlaskClient, store: LocalBlobStore) -> None:
    some_problems(store)
    tokens = forms(browser.get("/problems").data.decode())
    retry = "/problems/delivery/CON-2-recording-s2/retry"
    elsewhere = {"REMOTE_ADDR": "192.0.2.7"}
    assert browser.get("/problems", environ_base=elsewhere).status_code == 403
    assert browser.post(retry, data={"token": tokens[retry]}, environ_base=elsewhere).status_code == 403
    forwarded = browser.post(retry, data={"token": tokens[retry]}, headers={"X-Forwarded-For": "192.0.2.7"})
    assert forwarded.status_code == 403


def test_a_call_page_says_when_its_recording_is_not_complete(browser: FlaskClient, store: LocalBlobStore) -> None:
    recorded_stream(store, "CON-1", NOW)

    def partial(call):  # type: ignore[no-untyped-def]
        entry = call.recordings[0]
        entry.state, entry.settled_at = RecordingState.PARTIAL, iso(NOW + 60)
        entry.gaps = [Gap(9.6, 11.8, iso(NOW + 9.6), iso(NOW + 21.4))]

    update_call(store, "CON-1", partial, NOW + 60)
    text = text_of(browser.get("/calls/CON-1").data)
    assert "Recording audio.wav is partial; 11.8 s missing after 9.6 s." in text
