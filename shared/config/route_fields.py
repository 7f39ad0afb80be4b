"""What a route entry of the routes file may hold: the `Route` it is read into, and each of its
fields declared once in `ROUTE_FIELDS` (its kind, the routes it is for, what leaving it out means
and its meaning). shared/config/routes.py reads the file by these declarations, and `nox -s docs`
writes docs/reference/routes.md from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.core.call_record import Flow
from shared.core.ncco import VOICEMAIL_SECONDS
from shared.core.redaction import REDACT_CHOICES, Redact
from shared.core.vonage_limits import MP3_CHANNELS, RECORD_SECONDS

__all__ = [
    "BATCH_ENGINES",
    "CAPTURES",
    "DEFAULT_LABELS",
    "ENGINES",
    "FLOWS",
    "LANGUAGES_MOST",
    "MAX_RETENTION_DAYS",
    "MAX_SECONDS",
    "RECORDING_FORMATS",
    "ROUTE_FIELDS",
    "VONAGE_ENGINE",
    "FieldKind",
    "Route",
    "RouteField",
    "Scope",
]

FLOWS = tuple(Flow)
RECORDING_FORMATS = ("mp3", "wav")
DEFAULT_LABELS = ("Caller", "Agent")
# A voicemail's record timeOut and a conversation's connect limit, so Vonage's record range.
MAX_SECONDS = RECORD_SECONDS
MAX_RETENTION_DAYS = 36500
# How a voicemail takes its message: Vonage's `record` action, transcribed after the call
# (the default), or the call's live stream, transcribed as it is spoken.
CAPTURES = ("record", "stream")
# The engines that transcribe stored audio, in a chain a route may give (`engines`).
BATCH_ENGINES = ("aws", "google", "offline")
# Or Vonage, asked in the record action itself: alone, since it transcribes only what it records.
VONAGE_ENGINE = "vonage"
ENGINES = (VONAGE_ENGINE, *BATCH_ENGINES)
# Amazon Transcribe takes two or more LanguageOptions ("more than five is not recommended");
# Google v1 one language_code and up to three alternative_language_codes.
LANGUAGES_MOST = 4


@dataclass(frozen=True)
class Route:
    """One entry of the routes file; its fields' meanings are in ROUTE_FIELDS."""

    flow: Flow
    owner: str = ""
    recipients: tuple[str, ...] = ()
    language: str = "en-US"
    max_seconds: int | None = None
    connect: tuple[str, ...] = ()
    caller_id: str = ""
    labels: tuple[str, ...] = ()
    announcement: str = ""
    format: str = "mp3"
    result_webhook: str = ""
    capture: str = "record"
    live_webhook: str = ""
    recording_webhook: str = ""
    mask_dtmf: bool = False
    sensitive_dtmf: bool = False
    # None: the settings' RETENTION_DAYS.
    retention_days: int | None = None
    redact: tuple[Redact, ...] = ()
    keep_unredacted: bool = False
    vocabulary: tuple[str, ...] = ()
    # "": see engines.
    engine: str = ""
    # Empty: `engine`, or the deployment's TRANSCRIBER.
    engines: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()

    @property
    def transcribed_by_vonage(self) -> bool:
        return self.engine == VONAGE_ENGINE

    def engine_chain(self, default: str) -> tuple[str, ...]:
        """The engines that transcribe this route's stored audio, in the order they are tried."""
        if self.engines:
            return self.engines
        return (self.engine,) if self.engine else (default,)

    @property
    def streams_live(self) -> bool:
        """Whether the recorder takes this route's calls over the websocket, where they can be heard live."""
        return self.flow == Flow.STREAM or (self.flow == Flow.VOICEMAIL and self.capture == "stream")

    @property
    def channels(self) -> int:
        """Recording channels of a conversation: the caller, then one per connected party."""
        return 1 + len(self.connect)

    def channel_labels(self) -> tuple[str, ...]:
        """A label per channel: the route's own, then the defaults, then "Party N"."""
        defaults = (*DEFAULT_LABELS, *(f"Party {i}" for i in range(len(DEFAULT_LABELS), self.channels)))
        return tuple(self.labels) + defaults[len(self.labels) : self.channels]


@dataclass(frozen=True)
class Scope:
    """The routes a field is for: their flows and, where it matters, a voicemail's capture."""

    flows: tuple[Flow, ...]
    capture: str | None = None
    # What the parser says of the field on a route outside the scope; None: not refused there, unused.
    refusal: str | None = None

    def takes(self, route: Route) -> bool:
        """Whether `route` is one the field is for."""
        if route.flow not in self.flows:
            return False
        return self.capture is None or route.flow != Flow.VOICEMAIL or route.capture == self.capture

    @property
    def described(self) -> str:
        if self.flows == FLOWS:
            return "every flow"
        capture = f" with `capture: {self.capture}`" if self.capture else ""
        return ", ".join(flow.value + (capture if flow == Flow.VOICEMAIL else "") for flow in self.flows)


FieldKind = Literal["text", "list", "flag", "number"]


@dataclass(frozen=True)
class RouteField:
    """One field of a route entry. `item`: what one entry of a list is called in a fault; `values`:
    what it takes, where that is not any text; `unset`: what leaving it out means, where that is not
    Route's own default."""

    name: str
    kind: FieldKind
    scope: Scope
    meaning: str
    item: str = ""
    values: str = ""
    unset: str = ""


_EVERY = Scope(FLOWS)
# The routes whose calls stream to the recorder, where they can be heard live.
_STREAMED = Scope(
    (Flow.STREAM, Flow.VOICEMAIL), "stream", "only a stream, or a voicemail with capture: stream, can have one"
)
_VOICEMAIL = Scope((Flow.VOICEMAIL,))
_CONVERSATION = Scope((Flow.CONVERSATION,))
_RECORDED = Scope((Flow.VOICEMAIL, Flow.CONVERSATION))
# The routes whose audio is stored and transcribed after the call, and those Vonage records.
_TRANSCRIBED = Scope((Flow.VOICEMAIL, Flow.CONVERSATION), None, "only a voicemail or a conversation can have one")
_VONAGE_RECORDED = Scope(
    (Flow.VOICEMAIL, Flow.CONVERSATION), "record", "only a recorded voicemail or a conversation can have one"
)
_WEBHOOK = "an `https://` URL"
_PHONE = "phone numbers, 5 to 15 digits"
_E164 = "E.164: country code first, 7 to 15 digits, no leading 0"

ROUTE_FIELDS: tuple[RouteField, ...] = (
    RouteField("flow", "text", _EVERY, "The flow the number's calls get.", values=", ".join(FLOWS), unset="required"),
    RouteField(
        "announcement",
        "text",
        _EVERY,
        "Spoken to the caller first, before anything is recorded or streamed (a recording notice), in the "
        "route's `language`.",
        values="text to speak",
    ),
    RouteField("notice", "text", _EVERY, "The older name of `announcement`, still read: give one of them."),
    RouteField(
        "language",
        "text",
        _EVERY,
        "The language the route speaks in and its callers are transcribed in.",
        values="a BCP-47 tag; where the route speaks, one Vonage speaks",
    ),
    RouteField(
        "retention_days",
        "number",
        _EVERY,
        "How long its calls are kept before the sweep erases them (0: until deleted).",
        values=f"0 to {MAX_RETENTION_DAYS} days",
        unset="`RETENTION_DAYS`",
    ),
    RouteField(
        "redact",
        "list",
        _EVERY,
        "What is hidden of what callers say, in pages, webhooks, stored transcripts and a silenced copy of the "
        "audio (shared/core/redaction.py).",
        item="kind",
        values=", ".join(REDACT_CHOICES),
    ),
    RouteField(
        "keep_unredacted",
        "flag",
        _EVERY,
        "`true`: the words as heard are kept too, for admins only; only on a route that redacts.",
    ),
    RouteField(
        "vocabulary",
        "list",
        _EVERY,
        "Phrases its callers say (names, products, jargon) that every engine taking them is told to expect, live "
        "and after the call (shared/core/vocabulary.py).",
        item="phrase",
    ),
    RouteField(
        "live_webhook",
        "text",
        _STREAMED,
        "Where each live transcript's segments go as they are heard, and the whole transcript once the call is "
        "over; needs `LIVE_TRANSCRIBER`.",
        values=_WEBHOOK,
    ),
    RouteField(
        "recording_webhook",
        "text",
        _STREAMED,
        "Where each recording's final state goes, once: complete, recovered, partial with its gaps, or failed "
        "(shared/core/recording_outcome.py).",
        values=_WEBHOOK,
    ),
    RouteField(
        "mask_dtmf",
        "flag",
        _STREAMED,
        "`true`: the audio of each key press is silenced in the stored WAV (shared/core/dtmf_mask.py).",
    ),
    RouteField(
        "sensitive_dtmf",
        "flag",
        _STREAMED,
        "`true`: the digits pressed are kept out of call.json and the logs, their times kept.",
    ),
    RouteField("owner", "text", _VOICEMAIL, "Named in the voicemail's greeting.", unset='"this number"'),
    RouteField(
        "capture",
        "text",
        _VOICEMAIL,
        "How a voicemail takes its message: `record` (Vonage records, then the batch transcription) or `stream` "
        "(the recorder takes the message live).",
        values=", ".join(CAPTURES),
    ),
    RouteField(
        "recipients",
        "list",
        _RECORDED,
        "The numbers paged by SMS: a voicemail's message (at least one), a conversation's summary of the dialogue.",
        item="recipient",
        values=_PHONE,
    ),
    RouteField(
        "max_seconds",
        "number",
        _RECORDED,
        "The longest a voicemail records, or a conversation stays connected.",
        values=f"{MAX_SECONDS[0]} to {MAX_SECONDS[1]} seconds",
        unset=f"a voicemail: {VOICEMAIL_SECONDS}; a conversation: Vonage's own limit",
    ),
    RouteField(
        "connect",
        "list",
        _CONVERSATION,
        "The parties connected to the caller (at least one), each recorded on its own channel.",
        item="number to connect",
        values=f"phone numbers in {_E164}",
    ),
    RouteField(
        "caller_id",
        "text",
        _CONVERSATION,
        "The Vonage number shown to the parties.",
        values=f"a phone number in {_E164}",
        unset="the number called",
    ),
    RouteField(
        "labels",
        "list",
        _CONVERSATION,
        "A name per channel, the caller first, in transcripts and pages.",
        item="label",
        values="1 to 40 characters each",
        unset=", ".join(f"`{label}`" for label in DEFAULT_LABELS) + ", then `Party N`",
    ),
    RouteField(
        "format",
        "text",
        _CONVERSATION,
        "The recording's format.",
        values=", ".join(RECORDING_FORMATS),
        unset=f"`mp3` up to {MP3_CHANNELS} channels, `wav` above (as Vonage does)",
    ),
    RouteField(
        "result_webhook", "text", _CONVERSATION, "Where the conversation's transcript is delivered.", values=_WEBHOOK
    ),
    RouteField(
        "engine",
        "text",
        _VONAGE_RECORDED,
        "The engine that transcribes the recording: `vonage` (Vonage transcribes it itself and calls back) or "
        "another engine.",
        values=", ".join(ENGINES),
        unset="`TRANSCRIBER`",
    ),
    RouteField(
        "engines",
        "list",
        _TRANSCRIBED,
        "A fallback chain of engines, tried in order on the same stored audio (shared/flows/transcription.py); "
        "not with `engine`.",
        item="engine",
        values=f"up to {len(BATCH_ENGINES)} of {', '.join(BATCH_ENGINES)}",
        unset="`engine` alone",
    ),
    RouteField(
        "languages",
        "list",
        _TRANSCRIBED,
        "The languages an engine that identifies the one spoken (Amazon Transcribe, Google) chooses among, the "
        "route's `language` among them; the other engines transcribe in `language`.",
        item="language",
        values=f"2 to {LANGUAGES_MOST} BCP-47 tags",
    ),
)
