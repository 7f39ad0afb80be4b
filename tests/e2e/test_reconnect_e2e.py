"""Calls that outlive their socket, end to end: the local platform under gunicorn and the Vonage
stand-in, which posts `disconnected` when the recorder closes the socket, runs the NCCO it gets
back and goes on with the caller's audio from where the caller is by then.

The recorder's socket lifetime is 2 s here, so a call of the 9.4 s fixture, spoken in real time,
reconnects four times; a SIGTERM to the instance holding the call moves it to another instance
behind the same port. Either way the call is one recording of about its length, its gaps marked,
each losing no more than docs/recorder.md ("Calls that outlive their socket") says, its live transcript whole.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from appengine.browser import create_app
from shared.config.settings import Settings
from shared.core.wav import parse_wav
from shared.runtime.services import Services
from tests.deck import Deck, start_deck
from tests.testbed import DATA, TOKEN_SECRET
from tools.standin import DtmfPress

pytestmark = pytest.mark.slow

NUMBER = "447700900004"
ROUTES = f'"{NUMBER}":\n  flow: stream\n'
FIXTURE = parse_wav((DATA / "voicemail_outage.wav").read_bytes())
FRAME = 640
# The most audio one reconnect may lose on loopback (docs/recorder.md, "Calls that outlive their socket").
MOST_LOST = 0.25


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def check_sessions(deck: Deck, report: Any, call: dict[str, Any]) -> list[float]:
    """Each session holds exactly the frames the stand-in sent on its socket, and the stitched
    recording puts each where the caller said it; returns what each reconnect lost."""
    sessions = sorted(call["recordings"], key=lambda r: r["started_at"])
    assert [s["leg"] for s in sessions] == [int(s.leg) for s in report.sockets] == list(range(1, len(sessions) + 1))
    wav = deck.store.read(call["stitched"]["object"])
    assert wav is not None
    whole = parse_wav(wav.data).pcm
    for session, socket in zip(sessions, report.sockets, strict=True):
        blob = deck.store.read(session["object"])
        assert blob is not None
        pcm = parse_wav(blob.data).pcm
        start = socket.first_frame * FRAME
        # Every frame sent on the socket (the fixture's last is short), none lost at the recorder's close.
        sent = min(socket.frames_sent * FRAME, len(FIXTURE.pcm) - start)
        assert len(pcm) == sent and pcm == FIXTURE.pcm[start : start + sent]
        # On the call's timeline within 60 ms of where the caller said it.
        offset = round(call["stitched"]["offsets"][session["session"]] * 16000) * 2
        assert abs(offset - start) <= 0.06 * 32000
        assert whole[offset : offset + len(pcm)] == pcm
    lost: list[float] = report.lost_seconds()
    gaps = [g["end"] - g["start"] for g in call["stitched"]["gaps"]]
    assert len(lost) == len(sessions) - 1 and max(lost) <= MOST_LOST and max(gaps) <= MOST_LOST
    assert call["stitched"]["duration"] == pytest.approx(FIXTURE.duration, abs=0.1)
    return lost


def test_a_call_longer_than_its_socket_is_one_recording_of_its_length_with_its_words_and_keys(
    stack: ExitStack, tmp_path: Path
) -> None:
    env = {"STREAM_ROTATE_SECONDS": "2", "LIVE_TRANSCRIBER": "pocketsphinx", "LIVE_STREAMS_MAX": "4"}
    deck = start_deck(stack, tmp_path, ROUTES, NUMBER, env)
    # Spoken in real time, as a caller speaks: four sockets' lifetimes and a bit.
    report = deck.call(DATA / "voicemail_outage.wav", dtmf=[DtmfPress("5", 5.0)])

    assert len(report.sockets) >= 4 and len(report.nccos) == len(report.sockets)
    assert [s.closed_by for s in report.sockets] == ["recorder"] * (len(report.sockets) - 1) + ["caller"]
    assert {s.close_code for s in report.sockets[:-1]} == {1000}
    # A hang-up is not reconnected: the last socket's end posted no `disconnected`.
    assert [status for status, _ in report.connect_events] == ["disconnected"] * (len(report.sockets) - 1)
    call = deck.stitched(report.conversation_uuid)
    check_sessions(deck, report, call)
    assert [r["leg"] for r in call["reconnects"]] == list(range(2, len(report.sockets) + 1))
    assert call["status"] == "completed" and call["recordings"][-1]["end_reason"] == "hangup"

    # The key, pressed 5 s into the call, is 5 s into the recording.
    (key,) = call["dtmf"]
    assert call["stitched"]["offsets"][key["session"]] + key["at"] == pytest.approx(5.0, abs=0.1)
    # The live transcript covers the whole call, from its first words to its last.
    document = deck.read_json(f"calls/{report.conversation_uuid}/recording.transcript.json")
    words = document["channels"][0]["words"]
    heard = [w["word"] for w in words]
    # Which words in between the decoder gets right varies with the machine's load: the ends are
    # what say the whole call was heard, every session's words placed on the call's timeline.
    assert heard[:4] == ["hi", "this", "is", "sam"] and heard[-3:] == ["as", "you", "can"]
    assert all(0 <= w["start"] <= call["stitched"]["duration"] for w in words)
    assert words[0]["start"] < 1.5 and words[-1]["start"] > call["stitched"]["duration"] - 3
    assert call["first_words"].startswith("Caller: Hi this is sam")

    # The browser plays it as one recording with its gaps marked.
    settings = Settings.from_env({"LOCAL_STORAGE_DIR": str(tmp_path / "data"), "STREAM_TOKEN_SECRET": TOKEN_SECRET})
    page = create_app(settings, Services(settings)).test_client().get(f"/calls/{report.conversation_uuid}")
    html = page.data.decode()
    assert html.count("<audio ") == 1 and "/audio/recording.wav" in html
    assert html.count('class="seek gap"') == len(report.sockets) - 1


def test_a_call_on_an_instance_that_stops_goes_on_being_recorded_on_another(stack: ExitStack, tmp_path: Path) -> None:
    deck = start_deck(stack, tmp_path, ROUTES, NUMBER, {}, instances=2)
    reports: list[Any] = []
    caller = threading.Thread(target=lambda: reports.append(deck.call(DATA / "voicemail_outage.wav")))
    caller.start()
    (first,) = deck.recording_sessions()
    time.sleep(2.0)
    deck.stop_instance(first)
    caller.join(40)

    (report,) = reports
    assert [(s.closed_by, s.close_code) for s in report.sockets] == [("recorder", 1001), ("caller", None)]
    call = deck.stitched(report.conversation_uuid)
    lost = check_sessions(deck, report, call)
    one, two = sorted(call["recordings"], key=lambda r: r["started_at"])
    assert one["end_reason"] == "recorder shutdown" and one["closing"] == "reconnect"
    assert one["recorder"] != two["recorder"] and two["end_reason"] == "hangup"
    assert len(lost) == 1
