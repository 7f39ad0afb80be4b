"""The recordings browser in headless Chromium (Debian's package, driven by Playwright), against
the local platform under gunicorn with calls placed through the Vonage stand-in: the list and its
filter, a call's player, waveform and key marks, seeking from a transcript turn, an accessibility
check with axe-core, and deleting a call. Screenshots go to artifacts/screenshots/.

Skipped where Chromium is not installed; `.ci/run` installs it, so CI runs these every time.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from shared.core.operations import Problem, ProblemKind
from shared.flows.erase import request_forget
from shared.flows.problems import note_problem
from tests.deck import Deck, start_deck
from tests.servers import ROOT
from tests.testbed import DATA
from tools.standin import DtmfPress

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
AXE = Path(os.environ.get("AXE_CORE", ROOT / ".nox" / "axe" / "node_modules" / "axe-core" / "axe.min.js"))
SHOTS = ROOT / "artifacts" / "screenshots"
NUMBER = "447700900004"
CALLERS = ("447700900123", "447700900456")
# Chromium as root on a machine with no outside network: no sandbox, nothing fetched in the background.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]

if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
    pytest.skip(
        f"Chromium is not installed at {CHROMIUM} (.ci/run installs Debian's chromium)", allow_module_level=True
    )


@pytest.fixture(scope="module")
def deck(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deck, list[Any]]]:
    """The local platform with a live-transcribed stream number, and two calls placed to it."""
    folder = tmp_path_factory.mktemp("deck")
    routes = f'"{NUMBER}":\n  flow: stream\n'
    with ExitStack() as stack:
        deck = start_deck(stack, folder, routes, NUMBER, {"LIVE_TRANSCRIBER": "pocketsphinx"})
        reports = [
            deck.call(DATA / "voicemail_outage.wav", from_=CALLERS[0], dtmf=[DtmfPress("5", 3.0)]),
            deck.call(DATA / "silence_2s.wav", from_=CALLERS[1]),
        ]
        for report in reports:
            deck.wait_for(f"calls/{report.conversation_uuid}/transcript.json")
        yield deck, reports


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    yield page
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def test_the_list_shows_both_calls_and_filters_by_number(deck: tuple[Deck, list[Any]], page: Any) -> None:
    server, _ = deck
    page.goto(f"{server.url}/")
    rows = page.locator("table.calls tbody tr")
    assert rows.count() == 2
    assert CALLERS[1] in rows.nth(0).inner_text() and CALLERS[0] in rows.nth(1).inner_text()
    assert "production database" in rows.nth(1).inner_text().lower()
    page.get_by_label("Number").fill(CALLERS[0])
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/?number=*")
    assert page.locator("table.calls tbody tr").count() == 1
    assert CALLERS[0] in page.locator("table.calls tbody tr").inner_text()


# The player loads nothing until played (each play is audited): the test asks it to load its metadata.
LOAD_DURATION = """a => new Promise(r => { if (a.readyState >= 1) return r(a.duration);
                 a.addEventListener('loadedmetadata', () => r(a.duration)); a.preload = 'metadata'; a.load(); })"""


def test_a_call_plays_at_its_length_seeks_from_a_turn_and_marks_its_key(
    deck: tuple[Deck, list[Any]], page: Any
) -> None:
    server, reports = deck
    conversation_uuid = reports[0].conversation_uuid
    # Opened from the list, as a user would: the older call's time links to its page.
    page.goto(f"{server.url}/")
    page.locator("table.calls tbody tr").nth(1).get_by_role("link").click()
    page.wait_for_url(f"**/calls/{conversation_uuid}")
    audio = page.locator("audio").first
    assert server.store.list(f"audit/{conversation_uuid}/") == []  # a page view is not a play
    duration = audio.evaluate(LOAD_DURATION)
    stored = server.read_json(f"calls/{conversation_uuid}/call.json")["recordings"][0]["duration"]
    assert duration == pytest.approx(stored, abs=0.05)

    turns = page.locator("button.turn")
    assert turns.count() >= 1
    last = turns.nth(turns.count() - 1)
    start = float(last.get_attribute("data-start"))
    last.click()
    page.wait_for_function("() => document.querySelector('audio').currentTime > 0")
    assert audio.evaluate("a => a.currentTime") == pytest.approx(start, abs=0.6)
    page.wait_for_selector("button.turn[aria-current='true']")
    audio.evaluate("a => a.pause()")

    canvas = page.locator("canvas[data-peaks]")
    page.wait_for_selector("canvas[data-ready='yes']")
    mark = page.get_by_role("button", name="5 at 3.0 s")
    assert mark.count() == 1
    # The key's line is drawn on the waveform where 3 s falls, in the marks' colour.
    colour = canvas.evaluate(
        """c => { const a = document.querySelector('audio'); const x = Math.round(3.0 / a.duration * c.width);
               const p = c.getContext('2d').getImageData(x, 50, 1, 1).data; return [p[0], p[1], p[2]]; }"""
    )
    assert colour == [0xB3, 0x59, 0x00]
    mark.click()
    assert audio.evaluate("a => a.currentTime") == pytest.approx(3.0, abs=0.3)
    # Loaded and played: recorded. (Once here as a rule; under load Chromium may fetch from byte 0
    # again after a pause, which is recorded as another play.)
    assert server.store.list(f"audit/{conversation_uuid}/")


def test_the_pages_pass_an_accessibility_check(deck: tuple[Deck, list[Any]], browser: Any) -> None:
    if not AXE.exists():
        pytest.skip(f"axe-core is not installed at {AXE} (nox -s tests installs it with npm)")
    server, reports = deck
    # The pages' Content-Security-Policy refuses injected scripts: only the checker's context lifts it.
    context = browser.new_context(viewport={"width": 1200, "height": 900}, bypass_csp=True)
    page = context.new_page()
    # The Problems page with a row of each kind, one of them with its retry.
    call = reports[0].conversation_uuid
    for kind, retryable in ((ProblemKind.RECORDING, False), (ProblemKind.DELIVERY, True)):
        summary = f"{kind} problem of a long description that wraps across the cell at 200 % zoom"
        note_problem(server.store, Problem(kind, f"{call}-a11y", time.time(), summary, call, retryable))
    # The Forget page with a request under way and a number forgotten.
    request_forget(server.store, "447700900555", "local user", time.time())
    record = {"forget": "0" * 32, "runs": [{"by": "local user", "finished_at": "2026-12-07T10:00:00.000Z", "calls": 2}]}
    server.store.write(f"erasures/forgotten/{'0' * 32}.json", json.dumps(record).encode(), "application/json")
    for path in ("/", f"/calls/{call}", "/prompts", "/problems", "/forget", f"/calls/{call}/audit"):
        page.goto(f"{server.url}{path}")
        page.add_script_tag(path=str(AXE))
        violations = page.evaluate(
            "async () => (await axe.run(document)).violations.map(v => [v.id, v.impact, v.nodes.length])"
        )
        assert violations == [], (path, violations)
        # Readable at 200 %: nothing wider than the window.
        page.evaluate("document.body.style.zoom = '200%'")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth * 1.01"), path
        page.evaluate("document.body.style.zoom = ''")
    context.close()


def test_the_keyboard_reaches_the_filters_the_calls_and_a_turn(deck: tuple[Deck, list[Any]], page: Any) -> None:
    server, reports = deck
    page.goto(f"{server.url}/calls/{reports[0].conversation_uuid}")
    focused = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.className + ':' + document.activeElement.tagName"))
    assert any(item.startswith("seek turn") for item in focused)
    assert any(item.endswith(":AUDIO") for item in focused)


def test_a_call_in_progress_shows_its_words_as_they_are_heard(deck: tuple[Deck, list[Any]], page: Any) -> None:
    server, _ = deck
    known = {info.key for info in server.store.list("calls/") if info.key.endswith("/call.json")}
    caller = threading.Thread(
        target=server.call, args=(DATA / "voicemail_outage.wav",), kwargs={"from_": "447700900789"}
    )
    caller.start()
    try:
        deadline = time.monotonic() + 20
        new: list[str] = []
        while not new and time.monotonic() < deadline:
            new = [i.key for i in server.store.list("calls/") if i.key.endswith("/call.json") and i.key not in known]
            time.sleep(0.1)
        assert new, "the call never reached the recorder"
        page.goto(f"{server.url}/{new[0].removesuffix('/call.json')}")
        assert page.locator("section[data-live]").count() == 1
        # The page asks every 2 s: words heard while the caller is still speaking show up.
        heard = page.wait_for_function(
            """() => { const t = document.getElementById('live-text');
                       return t && t.textContent.includes('database') && t.textContent; }""",
            timeout=15000,
        )
        assert "database" in heard.json_value()
        # When the stream is over the page shows the finished call.
        page.wait_for_selector("button.turn", timeout=30000)
        assert page.locator("section[data-live]").count() == 0
    finally:
        caller.join(60)


def test_deleting_a_call_from_its_page(deck: tuple[Deck, list[Any]], page: Any) -> None:
    server, reports = deck
    conversation_uuid = reports[1].conversation_uuid
    page.goto(f"{server.url}/")
    listed = page.locator("table.calls tbody tr").count()
    page.goto(f"{server.url}/calls/{conversation_uuid}")
    page.get_by_role("link", name="Delete this call…").click()
    page.get_by_role("button", name="Delete the call").click()
    page.wait_for_url(f"**/calls/{conversation_uuid}")
    assert "was deleted by local user" in page.locator("main").inner_text()
    assert page.locator("audio").count() == 0
    assert server.store.read(f"calls/{conversation_uuid}/audio.wav") is None
    page.goto(f"{server.url}/")
    assert page.locator("table.calls tbody tr").count() == listed - 1
    assert conversation_uuid not in page.content()


def test_a_call_in_several_sessions_plays_as_one_recording_with_its_gaps_shaded(
    deck: tuple[Deck, list[Any]], browser: Any
) -> None:
    """Last in this module: it adds a call to the list the others count."""
    from shared.flows.stitching import stitch_recording
    from tests.flows.sessions import record_in_sessions

    server, _ = deck
    record_in_sessions(server.store, "CON-in-three", time.time())
    stitch_recording(server.store, "CON-in-three", time.time())
    stitched = server.read_json("calls/CON-in-three/call.json")["stitched"]
    context = browser.new_context(viewport={"width": 1200, "height": 900}, bypass_csp=AXE.exists())
    page = context.new_page()
    page.goto(f"{server.url}/calls/CON-in-three")
    assert page.locator("audio").count() == 1
    duration = page.locator("audio").evaluate(LOAD_DURATION)
    assert duration == pytest.approx(stitched["duration"], abs=0.05)
    page.wait_for_selector("canvas[data-ready='yes']")
    # The first gap (4.0 to 4.1 s) is shaded across the waveform's height in the gaps' colour.
    colour = page.locator("canvas[data-peaks]").evaluate(
        """c => { const a = document.querySelector('audio'); const x = Math.floor(4.05 / a.duration * c.width);
               const p = c.getContext('2d').getImageData(x, 5, 1, 1).data; return [p[0], p[1], p[2]]; }"""
    )
    assert colour == [0xC5, 0x22, 0x1F]
    page.get_by_role("button", name="0:04.000 to 0:04.100 (100 ms)").click()
    assert page.locator("audio").evaluate("a => a.currentTime") == pytest.approx(4.0, abs=0.3)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "call-in-three-sessions.png"), full_page=True)
    if AXE.exists():
        page.add_script_tag(path=str(AXE))
        violations = page.evaluate(
            "async () => (await axe.run(document)).violations.map(v => [v.id, v.impact, v.nodes.length])"
        )
        assert violations == []
    context.close()
