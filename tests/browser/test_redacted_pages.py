"""A redacted call in the recordings browser: admins see the words as heard, in their own closed
section, when the route kept them; a viewer never gets them, in the page or any other answer; and
the player, for both, plays the copy silent over what was redacted, a call in several sessions its
stitched copy."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from shared.core.ports import LiveSegment
from shared.core.redaction import Redact
from shared.core.transcripts import Word
from shared.core.wav import parse_wav
from shared.flows.live_transcripts import LiveTranscript
from shared.flows.redactions import RedactionPolicy, store_redacted_audio
from shared.flows.stitching import stitch_recording
from tests.browser.calls import WORDS, recorded_stream
from tests.browser.visitors import ADMIN, NOW, VIEWER, Clock, SigningStore, signed_in, text_of
from tests.fakes import ScriptedLiveTranscriber
from tests.flows.sessions import record_in_sessions, redact_second_session

CALL = "CON-redacted"
CARD = "4539148803436467"
SPOKEN = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SAID_CARD = " ".join(SPOKEN[int(digit)] for digit in CARD)
SECTION = "Transcript as heard, unredacted"


def heard() -> list[LiveSegment]:
    """The recording's words with a card read out in its quiet stretch, 5 s to 7 s in."""
    card = [Word(SPOKEN[int(d)], round(5.0 + i * 0.12, 2), round(5.1 + i * 0.12, 2), 0.9) for i, d in enumerate(CARD)]
    before = [Word(w, s, e, 0.9) for w, s, e in WORDS if e <= 5.0]
    after = [Word(w, s, e, 0.9) for w, s, e in WORDS if s >= 7.0]
    return [
        LiveSegment(True, " ".join(w.text for w in part), part[0].start, part[-1].end, tuple(part))
        for part in ([*before, *card], after)
    ]


def redacted_stream(store: SigningStore, keep: bool) -> None:
    """A streamed call transcribed live by a route that redacts cards, as the recorder stores it."""
    recorded_stream(store, CALL, NOW)
    audio = f"calls/{CALL}/audio.wav"
    live = LiveTranscript(store, CALL, audio, "a1b2c3d4e5f6", policy=RedactionPolicy((Redact.CARD,), keep))
    assert live.start(ScriptedLiveTranscriber(heard()), 16000)
    live.finish()
    assert live.spans
    store_redacted_audio(store, audio, live.spans, keep=True)


def pages_for(tmp_path: Path, store: SigningStore, clock: Clock) -> tuple[FlaskClient, FlaskClient]:
    return signed_in(tmp_path, store, clock, ADMIN), signed_in(tmp_path, store, clock, VIEWER)


def test_admins_see_the_words_as_heard_in_their_own_section_under_the_redacted_transcript(
    tmp_path: Path, store: SigningStore, clock: Clock
) -> None:
    redacted_stream(store, keep=True)
    admin, _ = pages_for(tmp_path, store, clock)

    page = admin.get(f"/calls/{CALL}")
    assert page.status_code == 200
    html = page.data.decode()
    text = text_of(page.data)
    assert "Signed in as alice@example.com (admin)" in text
    # The transcript as everyone sees it, then the words as heard, closed until an admin opens them.
    transcript, _, as_heard = text.partition(SECTION)
    assert "[card]" in transcript and SAID_CARD not in transcript
    assert SAID_CARD in as_heard
    assert re.search(r'<details class="unredacted">\s*<summary>Transcript as heard, unredacted', html)


def test_a_viewer_never_gets_the_words_as_heard(tmp_path: Path, store: SigningStore, clock: Clock) -> None:
    redacted_stream(store, keep=True)
    _, viewer = pages_for(tmp_path, store, clock)

    page = viewer.get(f"/calls/{CALL}")
    assert page.status_code == 200 and "Signed in as val@example.com (viewer)" in text_of(page.data)
    html = page.data.decode()
    assert "[card]" in text_of(page.data)
    # Not hidden on the page: not in it at all.
    assert "unredacted" not in html.lower() and "as heard" not in html
    assert not any(digit in html for digit in (SAID_CARD[:15], CARD[:4]))
    # Nor in what the page asks for as the call goes on.
    live = viewer.get(f"/calls/{CALL}/live")
    assert live.status_code == 200 and SAID_CARD[:15] not in json.dumps(live.get_json())


def test_without_keep_unredacted_not_even_admins_see_the_words_as_heard(
    tmp_path: Path, store: SigningStore, clock: Clock
) -> None:
    redacted_stream(store, keep=False)
    admin, _ = pages_for(tmp_path, store, clock)

    html = admin.get(f"/calls/{CALL}").data.decode()
    assert "[card]" in text_of(html.encode())
    assert SECTION not in html and SAID_CARD[:15] not in html


@pytest.mark.parametrize("visitor", ["admin", "viewer"])
def test_the_player_plays_the_redacted_copy_under_the_recordings_own_name(
    tmp_path: Path, store: SigningStore, clock: Clock, visitor: str
) -> None:
    redacted_stream(store, keep=True)
    admin, viewer = pages_for(tmp_path, store, clock)
    client = admin if visitor == "admin" else viewer

    html = client.get(f"/calls/{CALL}").data.decode()
    assert f'src="/calls/{CALL}/audio/audio.wav"' in html
    played = client.get(f"/calls/{CALL}/audio/audio.wav")
    assert played.status_code == 302
    assert played.headers["Location"].startswith(f"https://storage.example/calls/{CALL}/audio.redacted.wav?")
    assert store.signed == [f"calls/{CALL}/audio.redacted.wav"]
    # The copy it plays is silent where the card was read out, as the recording is not.
    copy, original = (store.read(f"calls/{CALL}/{name}") for name in ("audio.redacted.wav", "audio.wav"))
    assert copy is not None and original is not None
    said = slice(int(5.0 * 16000) * 2, int(6.9 * 16000) * 2)
    assert set(parse_wav(copy.data).pcm[said]) == {0}
    assert set(parse_wav(original.data).pcm[said]) != {0}
    # And the waveform is drawn from it: flat over the card.
    peaks = client.get(f"/calls/{CALL}/peaks/audio.wav").get_json()
    per_point, points = peaks["samples_per_pixel"], peaks["data"]
    card = points[2 * (int(5.0 * 16000) // per_point + 1) : 2 * (int(6.9 * 16000) // per_point)]
    assert card and set(card) == {0}
    assert set(points[: 2 * (int(4.0 * 16000) // per_point)]) != {0}


SESSIONS_CALL = "CON-5e55-redacted"


def test_a_call_that_outlived_its_socket_plays_its_stitched_copy_under_the_recordings_own_name(
    tmp_path: Path, store: SigningStore, clock: Clock
) -> None:
    record_in_sessions(store, SESSIONS_CALL, NOW)
    redact_second_session(store, SESSIONS_CALL)
    assert stitch_recording(store, SESSIONS_CALL, NOW + 20) == "stitched"
    viewer = signed_in(tmp_path, store, clock, VIEWER)

    html = viewer.get(f"/calls/{SESSIONS_CALL}").data.decode()
    assert f'src="/calls/{SESSIONS_CALL}/audio/recording.wav"' in html
    played = viewer.get(f"/calls/{SESSIONS_CALL}/audio/recording.wav")
    assert played.status_code == 302
    assert played.headers["Location"].startswith(
        f"https://storage.example/calls/{SESSIONS_CALL}/recording.redacted.wav?"
    )
    assert store.signed == [f"calls/{SESSIONS_CALL}/recording.redacted.wav"]
    # The waveform is the copy's, flat over the card (4.3 s to 6.67 s into the call).
    peaks = viewer.get(f"/calls/{SESSIONS_CALL}/peaks/recording.wav").get_json()
    per_point, points = peaks["samples_per_pixel"], peaks["data"]
    card = points[2 * (int(4.3 * 16000) // per_point + 1) : 2 * (int(6.6 * 16000) // per_point)]
    assert card and set(card) == {0}
    assert set(points[: 2 * (int(4.0 * 16000) // per_point)]) != {0}


def test_a_call_stitched_before_its_sessions_were_silenced_plays_each_sessions_copy_instead(
    tmp_path: Path, store: SigningStore, clock: Clock
) -> None:
    recorded = record_in_sessions(store, SESSIONS_CALL, NOW)
    stitch_recording(store, SESSIONS_CALL, NOW + 20)
    redact_second_session(store, SESSIONS_CALL)
    viewer = signed_in(tmp_path, store, clock, VIEWER)

    html = viewer.get(f"/calls/{SESSIONS_CALL}").data.decode()
    assert "/audio/recording.wav" not in html
    second = f"audio-{recorded.sessions[1]}.wav"
    played = viewer.get(f"/calls/{SESSIONS_CALL}/audio/{second}")
    assert played.status_code == 302
    assert f"/calls/{SESSIONS_CALL}/audio-{recorded.sessions[1]}.redacted.wav?" in played.headers["Location"]
    assert viewer.get(f"/calls/{SESSIONS_CALL}/audio/recording.wav").status_code == 404
