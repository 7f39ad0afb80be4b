"""The recordings browser's pages in-process, on a local folder: the list and its filters, one call's
page, its audio with ranges, its peaks stored once, deletion, the PIN prompts, and who may ask."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.adapters.local_blob_store import LocalBlobStore
from shared.core.errors import Gone
from shared.core.pin_prompt import PromptRequest, new_transaction
from shared.flows.links import create_link, resolve_link
from tests.browser.calls import KEY_AT, recorded_stream
from tests.browser.visitors import NOW, SAME_ORIGIN, TOKEN, text_of


def test_the_list_shows_calls_newest_first_with_their_first_words(browser: FlaskClient, store: LocalBlobStore) -> None:
    recorded_stream(store, "CON-older", NOW - 86400, caller="447700900111")
    recorded_stream(store, "CON-newer", NOW, caller="447700900222")
    page = browser.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = text_of(page.data)
    assert text.index("447700900222") < text.index("447700900111")
    assert "2026-11-30 09:00:00" in text and "Hi this is sam from operations" in text
    assert "stream" in text and "0:09" in text
    # Which version is deployed: pyproject.toml's, here in a checkout.
    assert f"tapedeck {tomllib.loads(Path('pyproject.toml').read_text())['project']['version']}" in text

    only = text_of(browser.get("/?number=447700900111").data)
    assert "447700900111" in only and "447700900222" not in only
    by_day = text_of(browser.get("/?since=2026-11-30&until=2026-11-30").data)
    assert "447700900222" in by_day and "447700900111" not in by_day
    assert "No calls match" in text_of(browser.get("/?text=nobody+said+this").data)


def test_pages_of_the_list_link_to_older_calls(browser: FlaskClient, store: LocalBlobStore) -> None:
    from appengine import browser as pages

    for n in range(pages.PAGE_SIZE + 3):
        recorded_stream(store, f"CON-{n:03d}", NOW + n, caller=f"4477009{n:05d}")
    first = browser.get("/").data.decode()
    more = re.search(r'href="(/\?after=[^"]+)"', first)
    assert more is not None
    second = text_of(browser.get(more.group(1).replace("&amp;", "&")).data)
    assert "447700900002" in second and "447700900052" not in second


def test_a_call_page_has_its_player_waveform_key_marks_turns_and_events(
    browser: FlaskClient, store: LocalBlobStore
) -> None:
    recorded_stream(store, "CON-1", NOW)
    html = browser.get("/calls/CON-1").data.decode()
    assert '<audio controls preload="none"' in html and 'src="/calls/CON-1/audio/audio.wav"' in html
    assert 'data-peaks="/calls/CON-1/peaks/audio.wav"' in html
    assert f'"digit": "#", "at": {KEY_AT}' in html and f"# at {KEY_AT:.1f} s" in html
    starts = re.findall(r'class="seek turn" data-start="([0-9.]+)"', html)
    assert [float(s) for s in starts] == [0.45, 7.2]
    assert "answered" in text_of(html.encode())


def test_the_audio_answers_ranges_so_the_player_can_seek(browser: FlaskClient, store: LocalBlobStore) -> None:
    recorded_stream(store, "CON-1", NOW)
    whole = browser.get("/calls/CON-1/audio/audio.wav")
    assert whole.status_code == 200 and whole.headers["Accept-Ranges"] == "bytes" and whole.mimetype == "audio/wav"
    part = browser.get("/calls/CON-1/audio/audio.wav", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.data == whole.data[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(whole.data)}"
    assert browser.get("/calls/CON-1/audio/call.json").status_code == 404
    assert browser.get("/calls/CON-1/audio/..%2Fcall.json").status_code == 404


def test_peaks_are_computed_once_and_stored_beside_the_audio(browser: FlaskClient, store: LocalBlobStore) -> None:
    seconds = recorded_stream(store, "CON-1", NOW)
    answer = browser.get("/calls/CON-1/peaks/audio.wav")
    peaks = answer.get_json()
    assert answer.status_code == 200 and peaks["channels"] == 1 and peaks["bits"] == 16
    assert peaks["duration"] == pytest.approx(seconds, abs=0.01) and len(peaks["data"]) == 2 * peaks["length"]
    stored = store.read("calls/CON-1/audio.peaks.json")
    assert stored is not None and json.loads(stored.data) == peaks
    # Served from what is stored: a changed object shows.
    store.write("calls/CON-1/audio.peaks.json", json.dumps(peaks | {"length": 1}).encode())
    assert browser.get("/calls/CON-1/peaks/audio.wav").get_json()["length"] == 1


def test_deleting_a_call_asks_first_keeps_its_record_and_breaks_its_links(
    browser: FlaskClient, store: LocalBlobStore
) -> None:
    recorded_stream(store, "CON-1", NOW)
    link = create_link(store, "calls/CON-1/audio.wav", NOW, 7)
    confirm = browser.get("/calls/CON-1/delete").data.decode()
    token = re.search(TOKEN, confirm)
    assert token is not None and "cannot be undone" in confirm

    forged = browser.post("/calls/CON-1/delete", data={"token": "0" * 64}, headers=SAME_ORIGIN)
    assert forged.status_code == 403 and "error" in forged.get_json()
    assert store.read("calls/CON-1/audio.wav") is not None

    done = browser.post("/calls/CON-1/delete", data={"token": token.group(1)}, headers=SAME_ORIGIN)
    assert done.status_code == 303 and done.headers["Location"].endswith("/calls/CON-1")
    assert [info.key for info in store.list("calls/CON-1/")] == ["calls/CON-1/call.json"]
    record = json.loads(store.read("calls/CON-1/call.json").data)  # type: ignore[union-attr]
    assert record["deleted"] == {"at": "2026-11-30T10:00:00.000Z", "by": "local user"}
    assert "first_words" not in record
    assert "was deleted by local user" in text_of(browser.get("/calls/CON-1").data)
    assert "CON-1" not in browser.get("/").data.decode()
    assert browser.get("/calls/CON-1/audio/audio.wav").status_code == 404
    with pytest.raises(Gone):
        resolve_link(store, link, NOW + 10)


def test_pin_prompts_show_their_outcome_and_never_the_pin(browser: FlaskClient, store: LocalBlobStore) -> None:
    request = PromptRequest("447700900001", "447700900000", "Enter your code", "4821", "https://crm.example/cb")
    transaction = new_transaction("tid-0001", request, NOW, 7)
    document = transaction.to_json()
    store.write("prompts/tid-0001.json", json.dumps(document).encode(), "application/json")
    html = browser.get("/prompts").data.decode()
    assert "tid-0001" in html and "0 of 3" in html and "calling" in html
    assert "4821" not in html
    for secret in json.dumps(document["pin"]).strip('"{}').split('"'):
        if len(secret) >= 8:
            assert secret not in html


def test_the_pages_answer_only_on_this_machine(browser: FlaskClient, store: LocalBlobStore) -> None:
    recorded_stream(store, "CON-1", NOW)
    for path in ("/", "/calls/CON-1", "/calls/CON-1/audio/audio.wav", "/prompts", "/assets/browser.css"):
        answer = browser.get(path, environ_base={"REMOTE_ADDR": "192.0.2.7"})
        assert answer.status_code == 403, path
        assert "loopback" in answer.get_json()["error"]
    assert browser.get("/assets/browser.css").status_code == 200
    # A tunnel on this machine (to let Vonage reach the functions) forwards from loopback.
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        assert browser.get("/", headers={header: "203.0.113.9"}).status_code == 403, header


def test_unknown_calls_and_bad_filters_are_clear_errors(browser: FlaskClient) -> None:
    assert browser.get("/calls/CON-nobody").status_code == 404
    assert browser.get("/calls/CON-nobody").get_json() == {"error": "no such call"}
    bad = browser.get("/?since=someday")
    assert bad.status_code == 400 and "since" in bad.get_json()["error"]
    assert browser.get("/calls/%2e%2e").status_code in (400, 404)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.dictionaries(
        st.sampled_from(["number", "flow", "since", "until", "text", "after"]), st.text(max_size=300), max_size=6
    ),
    st.text(max_size=80),
)
def test_no_query_or_path_gets_a_server_error(browser: FlaskClient, query: dict[str, str], path: str) -> None:
    listing = browser.get("/", query_string=query)
    assert listing.status_code in (200, 400)
    if listing.status_code == 400:
        assert "error" in listing.get_json()
    for url in (f"/calls/{path}", f"/calls/CON-1/peaks/{path}", f"/calls/CON-1/audio/{path}"):
        answer = browser.get(url.replace("?", "%3F").replace("#", "%23"))
        assert answer.status_code < 500, (url, answer.data[:200])


def test_a_call_still_streaming_shows_its_live_words_and_says_so(browser: FlaskClient, store: LocalBlobStore) -> None:
    from shared.flows.stream_audio import StreamRecording

    recording = StreamRecording(store, "CON-live", "b1b2b3b4b5b6", 16000, 256 * 1024, lambda: NOW)
    recording.start("leg-1", "447700900123", "447700900000")
    recording.add_audio(bytes(32000))
    line = {"start": 0.5, "end": 1.4, "text": "the database is down", "words": []}
    store.write("calls/CON-live/live.jsonl", (json.dumps(line) + "\n").encode())

    html = browser.get("/calls/CON-live").data.decode()
    assert 'data-live="/calls/CON-live/live"' in html and "the database is down" in html
    assert browser.get("/calls/CON-live/live").get_json() == {
        "live": True,
        "status": None,
        "text": "the database is down",
        "events": 0,
    }
    recording.finish("hangup")
    assert browser.get("/calls/CON-live/live").get_json()["live"] is False


def test_a_call_recorded_in_several_sessions_plays_as_one_recording_with_its_gaps_marked(
    browser: FlaskClient, store: LocalBlobStore
) -> None:
    from shared.flows.stitching import stitch_recording
    from tests.flows.sessions import FIXTURE, KEY, record_in_sessions

    record_in_sessions(store, "CON-3s", NOW)
    stitch_recording(store, "CON-3s", NOW + 20)
    html = browser.get("/calls/CON-3s").data.decode()

    # One player, one waveform: the stitched recording, not the three sessions' files.
    assert re.findall(r'<audio [^>]*src="([^"]+)"', html) == ["/calls/CON-3s/audio/recording.wav"]
    assert "recorded in 3 sessions, its socket reconnected 2 times" in text_of(html.encode())
    assert """data-gaps='[{"start": 4.0, "end": 4.1}, {"start": 7.0, "end": 7.06}]'""" in html
    assert "0:04.000 to 0:04.100 (100 ms)" in text_of(html.encode())
    assert f'"digit": "{KEY[0]}", "at": {KEY[1]}' in html
    # The transcript runs across the sessions: the words after the first gap join the turn before it.
    starts = [float(s) for s in re.findall(r'class="seek turn" data-start="([0-9.]+)"', html)]
    assert starts == [0.45, 7.2] and "production database is down" in text_of(html.encode())
    audio = browser.get("/calls/CON-3s/audio/recording.wav")
    assert audio.status_code == 200 and len(audio.data) == 44 + 2 * round(FIXTURE.duration * 16000)
    peaks = browser.get("/calls/CON-3s/peaks/recording.wav").get_json()
    assert peaks["duration"] == pytest.approx(FIXTURE.duration, abs=0.01)
