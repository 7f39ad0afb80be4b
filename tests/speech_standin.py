"""A stand-in for Google's Speech service (v1 StreamingRecognize) on 127.0.0.1, over real gRPC.

Its language is numbers: a stream is cut into 100 ms units, each unit's samples all hold one
number, and a nonzero n is heard as the word "wN" (an interim result once its unit is complete);
a silent unit (0) makes the words so far final. `frames` writes audio in that language. It
answers at once and recognises nothing, so what it costs says nothing about what Google costs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import grpc
from google.cloud import speech_v1 as speech
from google.cloud.speech_v1.services.speech.transports import SpeechGrpcTransport

__all__ = ["Call", "SpeechStandIn", "frames"]


@dataclass
class Call:
    """What one StreamingRecognize brought: its config and the number in each unit."""

    rate: int = 0
    model: str = ""
    enhanced: bool = False
    word_times: bool = False
    interim: bool = False
    language: str = ""
    # Each speech context's phrases and boost.
    contexts: list[tuple[list[str], float]] = field(default_factory=list)
    units: list[int] = field(default_factory=list)
    audio_bytes: int = 0


class SpeechStandIn:
    """The Speech service on 127.0.0.1. `finalize_at_end`: a half-closed stream's last words
    become final (as Google does); `stall`: never read the audio; `hang`: read it, answer nothing;
    `fail_first`: abort the first call with UNAVAILABLE after that many units; `workers`: calls
    served at once (each holds a thread until it ends)."""

    def __init__(
        self,
        finalize_at_end: bool = True,
        stall: bool = False,
        hang: bool = False,
        fail_first: int | None = None,
        workers: int = 8,
    ) -> None:
        self.finalize_at_end = finalize_at_end
        self.stall = stall
        self.hang = hang
        self.fail_first = fail_first
        self.calls: list[Call] = []
        self.release = threading.Event()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
        handler = grpc.stream_stream_rpc_method_handler(
            self.streaming_recognize,
            request_deserializer=speech.StreamingRecognizeRequest.deserialize,
            response_serializer=speech.StreamingRecognizeResponse.serialize,
        )
        self.server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler("google.cloud.speech.v1.Speech", {"StreamingRecognize": handler})]
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def client(self) -> speech.SpeechClient:
        return speech.SpeechClient(
            transport=SpeechGrpcTransport(channel=grpc.insecure_channel(f"127.0.0.1:{self.port}"))
        )

    def stop(self) -> None:
        self.release.set()
        self.server.stop(grace=None)

    def streaming_recognize(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        call = Call()
        self.calls.append(call)
        first = next(requests)
        config = first.streaming_config
        call.rate = config.config.sample_rate_hertz
        call.model = config.config.model
        call.enhanced = config.config.use_enhanced
        call.word_times = config.config.enable_word_time_offsets
        call.interim = config.interim_results
        call.language = config.config.language_code
        call.contexts = [(list(c.phrases), c.boost) for c in config.config.speech_contexts]
        if self.stall:
            self.release.wait(60)
            return
        unit_bytes = call.rate // 10 * 2
        audio = bytearray()
        pending: list[Any] = []
        for request in requests:
            audio += request.audio_content
            call.audio_bytes += len(request.audio_content)
            while len(audio) >= unit_bytes:
                number = int.from_bytes(audio[:2], "little", signed=True)
                del audio[:unit_bytes]
                call.units.append(number)
                index = len(call.units)
                if self.fail_first is not None and len(self.calls) == 1 and index > self.fail_first:
                    context.abort(grpc.StatusCode.UNAVAILABLE, "stand-in went away")
                if self.hang:
                    continue
                if number:
                    pending.append(word(f"w{number}", index - 1, index))
                    yield result(pending, index, final=False)
                elif pending:
                    yield result(pending, index, final=True)
                    pending = []
        if self.hang:
            self.release.wait(60)
        elif pending and self.finalize_at_end:
            yield result(pending, len(call.units), final=True)


def word(text: str, start: int, end: int) -> Any:
    return speech.WordInfo(
        word=text, start_time=timedelta(seconds=start / 10), end_time=timedelta(seconds=end / 10), confidence=0.9
    )


def result(words: list[Any], end: int, final: bool) -> Any:
    alternative = speech.SpeechRecognitionAlternative(
        transcript=" ".join(w.word for w in words), confidence=0.9, words=words if final else []
    )
    return speech.StreamingRecognizeResponse(
        results=[
            speech.StreamingRecognitionResult(
                alternatives=[alternative], is_final=final, result_end_time=timedelta(seconds=end / 10)
            )
        ]
    )


def frames(units: list[int], rate: int) -> list[bytes]:
    """20 ms frames of 100 ms units, each unit's samples all its number."""
    unit = [n.to_bytes(2, "little", signed=True) * (rate // 10) for n in units]
    audio = b"".join(unit)
    size = rate // 50 * 2
    return [audio[i : i + size] for i in range(0, len(audio), size)]
