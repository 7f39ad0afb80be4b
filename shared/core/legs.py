"""A streamed call's websocket legs, and whether one that closed is followed by another. Pure.

Each time the recorder's websocket is connected to a call is one leg: 1 from the answer's NCCO,
one more per reconnect. When a leg's socket closes, Vonage posts `disconnected` to the connect's
eventUrl and runs the NCCO it is answered with. The call reconnects unless the socket's end is
the call's: the call is over (a hang-up), the recorder closed it on purpose for good (noted as
`final` before it sent the close frame), the leg never reached the recorder (its handshake was
refused, so a retry would be too), or the call has used its legs.

A close the recorder made to hand the call over (rotation, shutdown, no audio) is noted as
`reconnect` before its close frame, so the webhook that follows never waits. A close the other
side made carries no note; then the caller may just have hung up, and the hang-up's `completed`
event may be a moment behind: the webhook waits a little for it before reconnecting.
"""

from __future__ import annotations

from enum import StrEnum

from shared.core.call_record import CallRecord, SessionClose, call_ended

__all__ = ["MAX_LEGS", "AfterClose", "after_close"]

# Enough for a two-day call at one leg an hour; and a recorder that closes every stream at once
# (each noted, so each reconnects) still ends the loop.
MAX_LEGS = 50


class AfterClose(StrEnum):
    """What follows a leg's `disconnected` event."""

    RECONNECT = "reconnect"
    # No note and the call not known to be over: perhaps a hang-up whose `completed` is on its way.
    UNSURE = "unsure"
    CALL_OVER = "call over"
    CLOSED_FOR_GOOD = "closed for good"
    NEVER_RECORDED = "never recorded"
    OUT_OF_LEGS = "out of legs"


def after_close(call: CallRecord | None, leg: int) -> AfterClose:
    """Whether websocket leg `leg` of `call`, just closed, is followed by leg + 1."""
    sessions = call.leg_sessions(leg) if call is not None else []
    if call is None or not sessions:
        return AfterClose.NEVER_RECORDED
    if call_ended(call):
        return AfterClose.CALL_OVER
    notes = {entry.closing for entry in sessions}
    if SessionClose.FINAL in notes:
        return AfterClose.CLOSED_FOR_GOOD
    if leg >= MAX_LEGS:
        return AfterClose.OUT_OF_LEGS
    if SessionClose.RECONNECT in notes:
        return AfterClose.RECONNECT
    return AfterClose.UNSURE
