"""PIN prompt calls, the pure core: the request, the NCCOs, and the state machine of one
transaction (its document is in prompt_transaction.py)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.core.deliveries import DeliveryRecord, DeliveryState
from shared.core.errors import BadRequest
from shared.core.identifiers import DTMF_DIGITS, E164, PIN, is_shaped
from shared.core.ncco import Action
from shared.core.payloads import load_json_object, split_url
from shared.core.prompt_transaction import (
    FINAL,
    PinHash,
    PromptStatus,
    PromptTransaction,
    check_pin,
    hash_pin,
)
from shared.core.vonage_limits import TTS_STYLES, check_language, check_style, check_talk_text

__all__ = [
    "FINAL",
    "PinEntry",
    "PinHash",
    "PromptRequest",
    "PromptStatus",
    "PromptTransaction",
    "answer_ncco",
    "apply_event",
    "apply_input",
    "callback_fields",
    "check_pin",
    "hash_pin",
    "new_transaction",
    "parse_prompt_request",
    "read_dtmf",
    "settle_hang_up",
]

# Call statuses that end an outbound call before anyone could answer the prompt.
UNREACHED = ("busy", "unanswered", "rejected", "failed", "timeout", "cancelled")
DEFAULT_BYE = "Thank you. Goodbye."
DEFAULT_FAILED = "That PIN was not right. Please try again."
_WHOLE = re.compile(r"-?[0-9]{1,6}", re.ASCII)
# Every voice style number some language has; which ones a language has is checked beside.
_STYLES = (0, max(max(styles) for styles in TTS_STYLES.values()))


@dataclass(frozen=True)
class PromptRequest:
    to: str
    from_: str
    text: str
    pin_code: str
    callback: str
    callback_method: str = "POST"
    bye_text: str = DEFAULT_BYE
    failed_text: str = DEFAULT_FAILED
    max_attempts: int = 3
    language: str = "en-US"
    style: int | None = None


class _Fields:
    """Reads a request's fields one by one, noting each bad one and why, instead of stopping."""

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.fields = fields
        self.problems: dict[str, str] = {}

    def text(self, name: str, *, required: bool, default: str = "") -> str:
        value = self.fields.get(name)
        if value is None or value == "":
            if required:
                self.problems[name] = "is required"
            return default
        if not isinstance(value, str):
            self.problems[name] = "must be a string"
            return default
        fault = check_talk_text(value)
        if fault is not None:
            self.problems[name] = fault
        return value

    def number(self, name: str) -> str:
        value = self.fields.get(name)
        text = value.removeprefix("+") if isinstance(value, str) else str(value)
        if isinstance(value, bool) or not isinstance(value, str | int) or not is_shaped(text, E164):
            self.problems[name] = "must be a phone number in E.164 without '+', 7 to 15 digits"
            return ""
        return text

    def whole(self, name: str, low: int, high: int, default: int | None) -> int | None:
        value = self.fields.get(name)
        if value is None or value == "":
            return default
        text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
        result = int(text) if is_shaped(text, _WHOLE) else low - 1
        if not low <= result <= high:
            self.problems[name] = f"must be a whole number from {low} to {high}"
            return default
        return result

    def pin(self) -> str:
        pin = self.fields.get("pin_code")
        if isinstance(pin, bool) or not isinstance(pin, str | int) or not is_shaped(str(pin), PIN):
            self.problems["pin_code"] = "must be 1 to 20 digits"
        return str(pin)

    def callback(self) -> str:
        callback = self.text("callback", required=True)
        try:
            if callback and split_url(callback, "callback").scheme not in ("http", "https"):
                self.problems["callback"] = "must be an https:// URL"
        except BadRequest as err:
            self.problems["callback"] = str(err)
        return callback

    def method(self) -> str:
        method = self.fields.get("callback_method") or "POST"
        if not isinstance(method, str) or method.upper() not in ("GET", "POST"):
            self.problems["callback_method"] = "must be GET or POST"
            return "POST"
        return method.upper()

    def language(self) -> str:
        language = self.fields.get("language") or "en-US"
        fault = check_language(language) if isinstance(language, str) else "must be a string"
        if fault is not None:
            self.problems["language"] = fault
            return "en-US"
        return str(language)

    def style(self, language: str) -> int | None:
        """The `voice` field: Vonage's talk `style`, one the language has."""
        if "language" in self.problems:
            return None  # no language to hold the style against
        style = self.whole("voice", *_STYLES, None)
        fault = check_style(language, style) if style is not None else None
        if fault is not None:
            self.problems["voice"] = fault
            return None
        return style


def parse_prompt_request(fields: Mapping[str, Any]) -> PromptRequest:
    """Check every field of a `POST /call`; one BadRequest names each bad field and why."""
    read = _Fields(fields)
    language = read.language()
    request = PromptRequest(
        read.number("to"),
        read.number("from"),
        read.text("text", required=True),
        read.pin(),
        read.callback(),
        read.method(),
        read.text("bye_text", required=False, default=DEFAULT_BYE),
        read.text("failed_text", required=False, default=DEFAULT_FAILED),
        read.whole("max_attempts", 1, 10, 3) or 3,
        language,
        read.style(language),
    )
    if read.problems:
        raise BadRequest(f"invalid fields: {', '.join(sorted(read.problems))}", read.problems)
    return request


def new_transaction(tid: str, request: PromptRequest, now: float, ttl_days: int) -> PromptTransaction:
    return PromptTransaction(
        tid=tid,
        to=request.to,
        from_=request.from_,
        status=PromptStatus.CALLING,
        detail="",
        attempts=0,
        max_attempts=request.max_attempts,
        pin=hash_pin(request.pin_code),
        text=request.text,
        bye_text=request.bye_text,
        failed_text=request.failed_text,
        language=request.language,
        style=request.style,
        callback=DeliveryRecord(request.callback, DeliveryState.WAITING, method=request.callback_method),
        replies={},
        events=[],
        created_at=now,
        updated_at=now,
        expires_at=now + ttl_days * 86400,
    )


def _talk(doc: PromptTransaction, text: str, *, barge_in: bool) -> Action:
    action: Action = {"action": "talk", "text": text, "language": doc.language}
    if doc.style is not None:
        action["style"] = doc.style
    if barge_in:
        action["bargeIn"] = True
    return action


def _input(doc: PromptTransaction, input_url: str, attempt: int, timeout: int) -> Action:
    return {
        "action": "input",
        "type": ["dtmf"],
        "dtmf": {"maxDigits": doc.pin.length, "submitOnHash": True, "timeOut": timeout},
        # The attempt number in the URL tells a retried delivery from the next try.
        "eventUrl": [f"{input_url}&attempt={attempt}"],
        "eventMethod": "POST",
    }


def answer_ncco(doc: PromptTransaction, input_url: str, timeout: int) -> list[Action]:
    """Speak the message (a keypress cuts it short), then wait for the PIN."""
    return [_talk(doc, doc.text, barge_in=True), _input(doc, input_url, doc.attempts + 1, timeout)]


def read_dtmf(params: Mapping[str, Any]) -> tuple[str, bool]:
    """The digits and whether the input timed out, from the current or the legacy webhook shape.

    A GET input webhook carries `dtmf` as JSON text (`{"digits":"3","timed_out":true}`).
    """
    dtmf = params.get("dtmf")
    if isinstance(dtmf, str) and dtmf.startswith("{"):
        dtmf = load_json_object(dtmf, "dtmf")
    if isinstance(dtmf, dict):
        digits, timed_out = dtmf.get("digits"), dtmf.get("timed_out", False)
    else:
        # Before 2020 `dtmf` was the digits as a string, with `timed_out` beside it.
        digits, timed_out = dtmf, params.get("timed_out", False)
    if digits is None:
        digits = ""
    if not is_shaped(digits, DTMF_DIGITS):
        raise BadRequest("dtmf digits are malformed")
    # `1` and `True` compare equal, so the check is on the type: a JSON true, or the text of one.
    return digits.rstrip("#"), timed_out is True or timed_out in ("true", "True")


def _finish(doc: PromptTransaction, status: PromptStatus, detail: str, now: float) -> None:
    doc.status, doc.detail, doc.finished_at = status, detail, now
    doc.callback.state = DeliveryState.DUE


@dataclass(frozen=True)
class PinEntry:
    """One input webhook: the try it answers, the digits typed, and whether the wait timed out."""

    attempt: int
    digits: str
    timed_out: bool


def apply_input(doc: PromptTransaction, entry: PinEntry, *, input_url: str, timeout: int, now: float) -> list[Action]:
    """Count one try and return the NCCO to answer with; none (no actions) ends the call. A
    retried delivery of the same try gets the answer it got the first time and counts nothing."""
    attempt, digits, timed_out = entry.attempt, entry.digits, entry.timed_out
    stored = doc.replies.get(str(attempt))
    if stored is not None:
        return list(stored)
    if doc.final or attempt != doc.attempts + 1:
        return []
    doc.attempts = attempt
    doc.updated_at = now
    if not timed_out and digits and check_pin(doc.pin, digits):
        _finish(doc, PromptStatus.OK, f"PIN entered correctly on try {attempt}", now)
        reply = [_talk(doc, doc.bye_text, barge_in=False)]
    elif attempt >= doc.max_attempts:
        why = "no PIN entered" if timed_out or not digits else "wrong PIN"
        _finish(doc, PromptStatus.FAILED, f"{why} on the last of {doc.max_attempts} tries", now)
        reply = []
    else:
        doc.status = PromptStatus.ANSWERED
        reply = [_talk(doc, doc.failed_text, barge_in=True), _input(doc, input_url, attempt + 1, timeout)]
    doc.replies[str(attempt)] = reply
    return reply


def apply_event(doc: PromptTransaction, status: str, timestamp: str, now: float) -> bool:
    """Note a call status; True when it settles the outcome as an error.

    `completed` only settles once the hang-up grace has passed (see `settle_hang_up`), because
    a delayed input webhook may still carry the right PIN.
    """
    event = {"status": status, "timestamp": timestamp}
    if event in doc.events:
        return False
    doc.events.append(event)
    doc.updated_at = now
    if doc.final:
        return False
    if status in UNREACHED:
        _finish(doc, PromptStatus.ERROR, f"call {status}", now)
        return True
    if status == "answered" and doc.status == PromptStatus.CALLING:
        doc.status = PromptStatus.ANSWERED
    if status == "completed":
        doc.hung_up_at = now
    return False


def settle_hang_up(doc: PromptTransaction, now: float) -> bool:
    """After the grace: a call that hung up without a result is an error. True when settled now."""
    if doc.final or doc.hung_up_at is None:
        return False
    _finish(doc, PromptStatus.ERROR, "hung up before a result", now)
    return True


def callback_fields(doc: PromptTransaction) -> dict[str, str]:
    return {"to": doc.to, "tid": doc.tid, "status": doc.status, "detail": doc.detail}
