"""When the recorder closes a session's socket itself, before the platform does: pure, frame by frame.

App Engine flexible closes an established websocket after an hour. The recorder closes it first,
after `lifetime` seconds, and the call reconnects at once into a new session; the audio spoken
while it reconnects is lost. In the last stretch of the lifetime (`window`) it closes at the first
quiet moment, `quiet` seconds without speech, so what is lost is most likely silence.
"""

from __future__ import annotations

from shared.core.message_end import SPEECH_DBFS, level_dbfs

__all__ = ["QUIET_SECONDS", "WINDOW_SECONDS", "Rotation"]

# A pause between phrases: long enough not to fall inside a word, short enough to come often.
QUIET_SECONDS = 0.3
# The longest stretch before the lifetime's end in which a quiet moment is awaited.
WINDOW_SECONDS = 300.0


class Rotation:
    """Decides when a session is old enough to close: at a quiet moment late in its lifetime, or
    at the lifetime's end whatever is being said."""

    def __init__(self, lifetime: float, rate: int, quiet: float = QUIET_SECONDS) -> None:
        self.lifetime = lifetime
        # A quarter of a short lifetime (the tests'), at most five minutes of a long one.
        self.window = min(WINDOW_SECONDS, lifetime / 4)
        self._quiet_needed = round(quiet * rate)
        self._quiet = 0

    def due(self, elapsed: float, frame: bytes) -> bool:
        """Take the next frame, `elapsed` seconds after the socket opened; True once it is time."""
        if elapsed >= self.lifetime:
            return True
        if elapsed < self.lifetime - self.window:
            # Levels are measured only where a quiet moment would close the socket: the frame
            # path of a long call pays nothing for them until its last minutes.
            return False
        samples = len(frame) // 2
        self._quiet = self._quiet + samples if level_dbfs(frame) < SPEECH_DBFS else 0
        return self._quiet >= self._quiet_needed
