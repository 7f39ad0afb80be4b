"""Transcribers: pocketsphinx on real speech fixtures, Google against a fake client, and audio decoding."""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pytest
from google.api_core.exceptions import InvalidArgument
from google.cloud import speech_v1 as speech

from shared.adapters.google_transcriber import GoogleTranscriber
from shared.adapters.local_blob_store import LocalBlobStore
from shared.adapters.pocketsphinx_transcriber import PocketsphinxTranscriber
from shared.core.audio import decode_audio, probe_audio, resample, split_channels
from shared.core.errors import BadRequest, NotFound
from shared.core.ports import Transcript, TranscriptionJob
from shared.core.wav import wav_header
from tests.testbed import DATA

FIXTURES = (
    "voicemail_outage.wav",
    "voicemail_outage_8k.wav",
    "voicemail_outage.mp3",
    "silence_2s.wav",
    "conversation_stereo.wav",
)


@pytest.fixture(scope="module")
def audio_store(tmp_path_factory: pytest.TempPathFactory) -> LocalBlobStore:
    store = LocalBlobStore(tmp_path_factory.mktemp("audio"))
    for name in FIXTURES:
        store.write(f"recordings/{name}", (DATA / name).read_bytes())
    return store


@pytest.fixture(scope="module")
def pocketsphinx(audio_store: LocalBlobStore) -> PocketsphinxTranscriber:
    """One decoder for the module: loading the model takes about half a second."""
    return PocketsphinxTranscriber(audio_store)


def job(name: str, channels: int = 1) -> TranscriptionJob:
    return TranscriptionJob(
        name=f"job-{name}",
        audio_key=f"recordings/{name}",
        media_format=name.rsplit(".", 1)[1],
        language="en-US",
        channels=channels,
    )


def transcribe(transcriber: PocketsphinxTranscriber, name: str, channels: int = 1) -> Transcript:
    transcript = transcriber.start(job(name, channels))
    assert transcript is not None
    assert transcript.status == "completed", transcript.failure
    return transcript


# pocketsphinx -----------------------------------------------------------------------------------


@pytest.mark.slow  # decodes real speech: seconds each
def test_a_16k_voicemail_reads_as_what_was_said(pocketsphinx: PocketsphinxTranscriber) -> None:
    transcript = transcribe(pocketsphinx, "voicemail_outage.wav")
    assert transcript.job_name == "job-voicemail_outage.wav"
    assert "production database" in transcript.text
    assert "call me back" in transcript.text
    assert transcript.text == transcript.text.lower()
    assert transcript.document is not None
    assert transcript.document["engine"] == "pocketsphinx"
    [channel] = transcript.document["channels"]
    words = channel["words"]
    assert channel["channel"] == 0
    assert " ".join(w["word"] for w in words) == transcript.text
    # Fillers and pronunciation variants never reach the user.
    assert not any(w["word"].startswith(("<", "[")) or "(" in w["word"] for w in words)
    # Times are seconds within the 9.4 s message, in order.
    assert all(0 <= w["start"] < w["end"] <= 9.5 for w in words)
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    assert all(0 <= w["confidence"] <= 1 for w in words)
    database = next(w for w in words if w["word"] == "database")
    assert 3.0 < database["start"] < 5.0


@pytest.mark.slow  # decodes real speech: seconds each
def test_an_mp3_voicemail_reads_the_same(pocketsphinx: PocketsphinxTranscriber) -> None:
    text = transcribe(pocketsphinx, "voicemail_outage.mp3").text
    assert "production database" in text
    assert "call me back" in text


@pytest.mark.slow  # decodes real speech: seconds each
def test_an_8k_voicemail_is_upsampled_and_keeps_its_keywords(pocketsphinx: PocketsphinxTranscriber) -> None:
    words = set(transcribe(pocketsphinx, "voicemail_outage_8k.wav").text.split())
    # Telephone-rate audio decodes far worse (WER ~0.6); a few keywords survive.
    assert len(words & {"operation", "operations", "production", "database", "down", "call", "back"}) >= 2


def test_silence_completes_with_no_text(pocketsphinx: PocketsphinxTranscriber) -> None:
    transcript = transcribe(pocketsphinx, "silence_2s.wav")
    assert transcript.text == ""
    assert transcript.document == {"engine": "pocketsphinx", "channels": [{"channel": 0, "words": []}]}


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("garbage.wav", b"this is not audio at all" * 50),
        ("truncated.wav", b"RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00"),
        ("garbage.mp3", bytes(range(256)) * 20),
    ],
)
def test_undecodable_audio_fails_the_job_without_raising(
    pocketsphinx: PocketsphinxTranscriber, audio_store: LocalBlobStore, name: str, data: bytes
) -> None:
    audio_store.write(f"recordings/{name}", data)
    transcript = pocketsphinx.start(job(name))
    assert transcript.status == "failed"
    assert transcript.text == ""
    assert transcript.failure


def test_missing_audio_fails_the_job(pocketsphinx: PocketsphinxTranscriber) -> None:
    transcript = pocketsphinx.start(job("never-recorded.wav"))
    assert transcript.status == "failed"
    assert transcript.failure == "no audio at recordings/never-recorded.wav"


@pytest.mark.slow  # decodes real speech: seconds each
def test_a_stereo_call_is_transcribed_per_channel(pocketsphinx: PocketsphinxTranscriber) -> None:
    transcript = transcribe(pocketsphinx, "conversation_stereo.wav", channels=2)
    caller, called = transcript.text.split("\n")
    assert "delivery address" in caller
    assert "baker street" in caller
    assert "address" in called
    assert transcript.document is not None
    channels = transcript.document["channels"]
    assert [c["channel"] for c in channels] == [0, 1]
    for channel in channels:
        starts = [w["start"] for w in channel["words"]]
        assert starts == sorted(starts)
    # The person called first speaks at 5.6 s.
    assert 5.0 < channels[1]["words"][0]["start"] < 6.5


def test_the_offline_engine_has_nothing_to_collect(pocketsphinx: PocketsphinxTranscriber) -> None:
    with pytest.raises(NotFound, match="completes each job in start"):
        pocketsphinx.collect("job-voicemail_outage.wav")


# Google Speech-to-Text ---------------------------------------------------------------------------


@dataclass
class FakeOperation:
    response: Any
    timeouts: list[float | None] = field(default_factory=list)

    def result(self, timeout: float | None = None) -> Any:
        self.timeouts.append(timeout)
        if isinstance(self.response, Exception):
            raise self.response
        return self.response


@dataclass
class FakeSpeechClient:
    """Records each long_running_recognize request and answers with a canned response."""

    response: Any
    requests: list[tuple[speech.RecognitionConfig, speech.RecognitionAudio]] = field(default_factory=list)
    operations: list[FakeOperation] = field(default_factory=list)

    def long_running_recognize(self, config: speech.RecognitionConfig, audio: speech.RecognitionAudio) -> FakeOperation:
        self.requests.append((config, audio))
        self.operations.append(FakeOperation(self.response))
        return self.operations[-1]


def recognised(*results: tuple[int, str, list[tuple[str, float, float]]]) -> speech.LongRunningRecognizeResponse:
    return speech.LongRunningRecognizeResponse(
        results=[
            speech.SpeechRecognitionResult(
                channel_tag=tag,
                alternatives=[
                    speech.SpeechRecognitionAlternative(
                        transcript=text,
                        confidence=0.9,
                        words=[
                            speech.WordInfo(
                                word=word,
                                start_time={"seconds": int(start), "nanos": round(start % 1 * 1e9)},
                                end_time={"seconds": int(end), "nanos": round(end % 1 * 1e9)},
                                confidence=0.8,
                            )
                            for word, start, end in words
                        ],
                    )
                ],
            )
            for tag, text, words in results
        ]
    )


VOICEMAIL = recognised(
    (1, "Hi, this is Sam.", [("Hi,", 0.2, 0.6), ("this", 0.7, 0.9), ("is", 0.9, 1.1), ("Sam.", 1.1, 1.4)]),
    (1, " The production database is down.", [("The", 2.7, 2.9), ("production", 2.9, 3.5)]),
)


def test_google_is_given_the_routes_other_languages_and_reports_the_one_it_heard(
    audio_store: LocalBlobStore,
) -> None:
    """The real API cannot run here: a fake client records the request and answers in Spanish."""
    heard = recognised((1, "Hola, soy Sam.", [("Hola,", 0.2, 0.6)]), (1, "Hi.", [("Hi.", 1.0, 1.2)]))
    heard.results[0].language_code, heard.results[1].language_code = "es-us", "en-us"
    heard.results.append(speech.SpeechRecognitionResult(heard.results[0]))
    client = FakeSpeechClient(heard)
    asked = replace(job("voicemail_outage_8k.wav"), languages=("en-US", "es-US", "fr-CA"), vocabulary=("Sam",))
    transcript = GoogleTranscriber(audio_store, bucket=None, client=client).start(asked)

    [(config, _)] = client.requests
    assert config.language_code == "en-US"
    assert list(config.alternative_language_codes) == ["es-US", "fr-CA"]
    assert list(config.speech_contexts[0].phrases) == ["Sam"]
    # Two results of three were Spanish: the route's own spelling of it is recorded.
    assert transcript.language == "es-US"
    # Without languages to choose among, nothing is identified.
    plain = GoogleTranscriber(audio_store, bucket=None, client=FakeSpeechClient(heard)).start(
        job("voicemail_outage_8k.wav")
    )
    assert plain.language is None


def heard_result(text: str, words: list[tuple[str, float, float]]) -> dict[str, Any]:
    """One result of the adapter's document, as VOICEMAIL's answer maps to it."""
    return {
        "channel_tag": 1,
        "language_code": "",
        "transcript": text,
        "confidence": pytest.approx(0.9),
        "words": [
            {"word": word, "start": start, "end": end, "confidence": pytest.approx(0.8)} for word, start, end in words
        ],
    }


def test_google_sends_inline_linear16_and_maps_the_results(audio_store: LocalBlobStore) -> None:
    """The real API cannot run here: a fake client records the request the adapter builds."""
    client = FakeSpeechClient(VOICEMAIL)
    transcriber = GoogleTranscriber(audio_store, bucket=None, client=client)
    transcript = transcriber.start(job("voicemail_outage_8k.wav"))

    [(config, audio)] = client.requests
    assert audio.content == (DATA / "voicemail_outage_8k.wav").read_bytes()
    assert not audio.uri
    assert config.encoding == speech.RecognitionConfig.AudioEncoding.LINEAR16
    assert config.sample_rate_hertz == 8000
    assert config.language_code == "en-US"
    assert config.enable_automatic_punctuation
    assert config.enable_word_time_offsets
    assert config.model == "default"
    assert config.audio_channel_count == 1
    assert not config.enable_separate_recognition_per_channel
    assert client.operations[0].timeouts == [120.0]

    assert transcript == Transcript(
        job_name="job-voicemail_outage_8k.wav",
        status="completed",
        text="Hi, this is Sam. The production database is down.",
        document={
            "engine": "google",
            "results": [
                heard_result(
                    "Hi, this is Sam.", [("Hi,", 0.2, 0.6), ("this", 0.7, 0.9), ("is", 0.9, 1.1), ("Sam.", 1.1, 1.4)]
                ),
                heard_result("The production database is down.", [("The", 2.7, 2.9), ("production", 2.9, 3.5)]),
            ],
        },
    )


def test_google_reads_cloud_storage_audio_in_place(audio_store: LocalBlobStore) -> None:
    """The real API cannot run here: a fake client records the request the adapter builds."""
    client = FakeSpeechClient(VOICEMAIL)
    transcriber = GoogleTranscriber(audio_store, bucket="tapedeck-audio", client=client, model="phone_call")
    transcriber.start(job("voicemail_outage.mp3"))

    [(config, audio)] = client.requests
    assert audio.uri == "gs://tapedeck-audio/recordings/voicemail_outage.mp3"
    assert not audio.content
    assert config.encoding == speech.RecognitionConfig.AudioEncoding.MP3
    assert config.sample_rate_hertz == 16000
    assert config.model == "phone_call"
    assert config.use_enhanced


def test_google_is_told_the_routes_language_and_phrases(audio_store: LocalBlobStore) -> None:
    """The real API cannot run here: a fake client records the request the adapter builds."""
    client = FakeSpeechClient(VOICEMAIL)
    phrases = ("Tapedeck", "Kubernetes", "Sam O'Neil")
    GoogleTranscriber(audio_store, bucket=None, client=client).start(
        replace(job("voicemail_outage.wav"), language="en-GB", vocabulary=phrases)
    )
    [(config, _)] = client.requests
    assert config.language_code == "en-GB"
    [context] = config.speech_contexts
    assert (list(context.phrases), context.boost) == (list(phrases), 10.0)


def test_google_gets_no_speech_context_without_phrases(audio_store: LocalBlobStore) -> None:
    client = FakeSpeechClient(VOICEMAIL)
    GoogleTranscriber(audio_store, bucket=None, client=client).start(job("voicemail_outage.wav"))
    [(config, _)] = client.requests
    assert list(config.speech_contexts) == []


def test_google_recognises_each_channel_of_a_stereo_call(audio_store: LocalBlobStore) -> None:
    """The real API cannot run here: a fake client answers as Google does for two channels."""
    client = FakeSpeechClient(
        recognised(
            (1, "Hello, I would like to change my delivery address.", []),
            (2, "Of course.", []),
            (1, "It is 22 Baker Street.", []),
            (2, "Thank you.", []),
        )
    )
    transcript = GoogleTranscriber(audio_store, bucket=None, client=client).start(
        job("conversation_stereo.wav", channels=2)
    )
    [(config, _)] = client.requests
    assert config.audio_channel_count == 2
    assert config.enable_separate_recognition_per_channel
    assert transcript.text == (
        "Hello, I would like to change my delivery address. It is 22 Baker Street.\nOf course. Thank you."
    )


def test_google_errors_fail_the_job(audio_store: LocalBlobStore) -> None:
    """The real API cannot run here: the fake operation raises what the API would."""
    client = FakeSpeechClient(InvalidArgument("sample_rate_hertz (8000) does not match"))
    transcript = GoogleTranscriber(audio_store, bucket=None, client=client).start(job("voicemail_outage.wav"))
    assert transcript.status == "failed"
    assert transcript.failure is not None
    assert "sample_rate_hertz (8000) does not match" in transcript.failure


def test_google_fails_undecodable_audio_before_calling_the_api(audio_store: LocalBlobStore) -> None:
    audio_store.write("recordings/noise.mp3", b"\x00\x01" * 500)
    client = FakeSpeechClient(VOICEMAIL)
    transcript = GoogleTranscriber(audio_store, bucket=None, client=client).start(job("noise.mp3"))
    assert transcript.status == "failed"
    assert client.requests == []


def test_google_has_nothing_to_collect(audio_store: LocalBlobStore) -> None:
    with pytest.raises(NotFound):
        GoogleTranscriber(audio_store, bucket=None, client=FakeSpeechClient(VOICEMAIL)).collect("job-1")


# shared.core.audio ------------------------------------------------------------------------------------


def tone(frequency: float, rate: int, seconds: float = 1.0, amplitude: float = 10000) -> bytes:
    samples = array(
        "h", (round(amplitude * math.sin(2 * math.pi * frequency * n / rate)) for n in range(int(rate * seconds)))
    )
    return samples.tobytes()


def dominant_frequency_and_rms(pcm: bytes, rate: int) -> tuple[float, float]:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    edge = len(x) // 10  # the filter's start-up and run-out at either end
    return float(np.argmax(spectrum) * rate / len(x)), float(np.sqrt(np.mean(x[edge:-edge] ** 2)))


@pytest.mark.parametrize(
    ("from_rate", "to_rate", "frequency"),
    [(8000, 16000, 1000), (16000, 8000, 1000), (24000, 16000, 3000), (48000, 16000, 440), (44100, 16000, 440)],
)
def test_resampling_keeps_length_pitch_and_loudness(from_rate: int, to_rate: int, frequency: float) -> None:
    out = resample(tone(frequency, from_rate), from_rate, to_rate)
    assert len(out) == 2 * to_rate
    found, rms = dominant_frequency_and_rms(out, to_rate)
    assert found == pytest.approx(frequency, abs=2)
    assert rms == pytest.approx(10000 / math.sqrt(2), rel=0.02)


def test_downsampling_removes_what_would_alias() -> None:
    # A 10 kHz tone cannot exist at 16 kHz; unfiltered it would fold back to 6 kHz.
    _, rms = dominant_frequency_and_rms(resample(tone(10000, 48000), 48000, 16000), 16000)
    assert rms < 10000 / math.sqrt(2) / 100


def test_resampling_the_same_rate_or_nothing() -> None:
    pcm = tone(440, 16000, 0.1)
    assert resample(pcm, 16000, 16000) is pcm
    assert resample(b"", 8000, 16000) == b""
    with pytest.raises(ValueError):
        resample(pcm, 0, 16000)


def test_split_channels_deinterleaves_frames() -> None:
    pcm = array("h", [1, -1, 2, -2, 3, -3, 4]).tobytes()  # a trailing half frame
    left, right = split_channels(pcm, 2)
    assert array("h", left).tolist() == [1, 2, 3]
    assert array("h", right).tolist() == [-1, -2, -3]


def test_decode_audio_reads_wav_and_mp3_at_their_own_rates() -> None:
    rate, channels = decode_audio((DATA / "conversation_stereo.wav").read_bytes(), "wav")
    assert rate == 16000
    assert len(channels) == 2
    assert len(channels[0]) == len(channels[1]) == 2 * round(15.575 * 16000)
    rate, channels = decode_audio((DATA / "voicemail_outage.mp3").read_bytes(), "mp3")
    assert rate == 16000
    assert len(channels) == 1
    # MP3 adds encoder delay and padding, but the length stays within a frame or two of 9.4 s.
    assert 9.3 < len(channels[0]) / 2 / rate < 9.7
    header = wav_header(8000, 4)
    assert decode_audio(header + b"\x01\x00\x02\x00", "wav") == (8000, [b"\x01\x00\x02\x00"])


def test_probe_audio_reports_rate_and_channels() -> None:
    assert probe_audio((DATA / "voicemail_outage_8k.wav").read_bytes(), "wav").sample_rate == 8000
    info = probe_audio((DATA / "voicemail_outage.mp3").read_bytes(), "mp3")
    assert (info.sample_rate, info.channels) == (16000, 1)


@pytest.mark.parametrize("media_format", ["wav", "mp3", "ogg"])
def test_decode_audio_rejects_what_it_cannot_read(media_format: str) -> None:
    with pytest.raises(BadRequest):
        decode_audio(b"definitely not audio" * 10, media_format)
