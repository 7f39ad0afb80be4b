"""Checks every live transcriber must pass, whatever its engine."""

from __future__ import annotations

from shared.core.ports import StreamingTranscriber


def check_streams_past_the_limit_wait_for_one_to_close(engine: StreamingTranscriber, timeout: float) -> None:
    """With a limit of one stream, a second is refused until the first closes."""
    first = engine.open(16000, lambda segment: None)
    assert first is not None
    assert engine.open(16000, lambda segment: None) is None
    first.close(timeout=timeout)
    again = engine.open(16000, lambda segment: None)
    assert again is not None
    again.close(timeout=timeout)
