"""Outbound calls placed through the stand-in's create-call API, run as the Vonage platform runs them.

What the person at each number does is scripted (`CalleeScript`): whether they answer, the digits
they type at each `input`, and the platform's quirks a back end must survive: repeated webhooks,
the pre-2020 input shape, and `completed` arriving before the last input webhook.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests

from shared.flows.calls import iso
from tools.standin.webhooks import WebhookSigning, send_webhook

__all__ = ["OUTCOMES", "CalleeScript", "OutboundCall", "OutboundReport", "create_call_problem", "typed_digits"]

log = logging.getLogger(__name__)

OUTCOMES = ("answer", "busy", "unanswered", "rejected", "failed", "timeout", "cancelled")
# The `detail` Vonage adds to the last event of a call that never connected (webhook reference).
_DETAILS = {"unanswered": "timeout", "rejected": "declined", "failed": "cannot_route"}
_PHONE = re.compile(r"[1-9]\d{6,14}")
_KEYS = re.compile(r"[0-9*#]+")
_NOTHING_TYPED = ("", "-")
# With random_from_number Vonage picks one of the application's numbers; the stand-in has this one.
_APPLICATION_NUMBER = "447700900000"
_RATE = "0.01000000"  # EUR per minute, a string as Vonage sends it


@dataclass(frozen=True)
class CalleeScript:
    """What the person at a called number does."""

    outcome: str = "answer"  # or a status the call ends with unconnected: busy, unanswered, ...
    dtmf: tuple[str, ...] = ()  # keys typed at each input reached; "" or "-" types nothing (the input times out)
    legacy_dtmf: bool = False  # input webhooks in the pre-2020 shape: "dtmf" a string, top-level "timed_out"
    webhook_copies: int = 1  # each event and input webhook is delivered this often, as Vonage's retries do
    completed_first: bool = False  # the person hangs up on the last input: `completed` is posted before it
    hang_up_after_inputs: int | None = None  # the person hangs up once this many inputs are sent
    ring_seconds: float = 0.0  # between `ringing` and the outcome

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {self.outcome!r}")
        if self.webhook_copies < 1:
            raise ValueError("webhook_copies must be at least 1")
        if self.hang_up_after_inputs is not None and self.hang_up_after_inputs < 0:
            raise ValueError("hang_up_after_inputs must not be negative")
        for entry in self.dtmf:
            if entry not in _NOTHING_TYPED and not _KEYS.fullmatch(entry):
                raise ValueError(f"DTMF entry {entry!r} must be keys 0-9, * and #, or '-' for none")

    @staticmethod
    def parse_dtmf(text: str) -> tuple[str, ...]:
        """`"1111,-,1234"`: the keys typed at each input in turn; an empty item or `-` types nothing."""
        if not text.strip():
            return ()
        return tuple(item.strip() for item in text.split(","))

    @property
    def hangs_up_after(self) -> int | None:
        """How many inputs are sent before the person hangs up; None: they stay until the NCCO ends."""
        if self.hang_up_after_inputs is not None:
            return self.hang_up_after_inputs
        if self.completed_first:
            return max(len(self.dtmf), 1)
        return None


@dataclass
class OutboundReport:
    """What the stand-in did and saw on one outbound call; `finished` is set once it is over."""

    uuid: str
    conversation_uuid: str
    to: str
    from_: str
    script: CalleeScript
    ncco: list[dict[str, Any]] = field(default_factory=list)  # the first NCCO: answer URL's or the request's
    answer_status: int | None = None  # the answer URL's HTTP status; None when not fetched
    talks: list[str] = field(default_factory=list)
    inputs: list[tuple[str, int | None]] = field(default_factory=list)  # digits sent, input webhook's HTTP status
    events: list[tuple[str, int | None]] = field(default_factory=list)  # status sent, event webhook's HTTP status
    error: str | None = None
    finished: threading.Event = field(default_factory=threading.Event, repr=False)

    @classmethod
    def for_request(cls, request: dict[str, Any], script: CalleeScript) -> OutboundReport:
        """A fresh report for a create-call body that `create_call_problem` accepted."""
        sender = request.get("from") or {"number": _APPLICATION_NUMBER}
        return cls(
            uuid=str(uuid.uuid4()),
            conversation_uuid=f"CON-{uuid.uuid4()}",
            to=str(request["to"][0]["number"]),
            from_=str(sender["number"]),
            script=script,
        )

    @property
    def statuses(self) -> list[str]:
        return [status for status, _ in self.events]

    def wait(self, timeout: float = 30.0) -> OutboundReport:
        """Block until the call is over; TimeoutError if it is still going after `timeout` seconds."""
        if not self.finished.wait(timeout):
            raise TimeoutError(f"call {self.uuid} still going after {timeout} s")
        return self


def create_call_problem(body: Any) -> str | None:
    """What Vonage would refuse in a create-call body; None when the call can be placed."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    to = body.get("to")
    if not (isinstance(to, list) and len(to) == 1 and isinstance(to[0], dict)):
        return "to must be a list holding one endpoint"
    if to[0].get("type") != "phone":
        return "to[0].type must be phone (the only endpoint the stand-in calls)"
    if not _is_number(to[0].get("number")):
        return "to[0].number must be 7 to 15 digits, with no leading + or 0"
    if ("from" in body) == (body.get("random_from_number") is True):
        return "give exactly one of from and random_from_number: true"
    sender = body.get("from")
    if sender is not None and not (
        isinstance(sender, dict) and sender.get("type") == "phone" and _is_number(sender.get("number"))
    ):
        return 'from must be {"type": "phone", "number": "<7 to 15 digits>"}'
    if ("answer_url" in body) == ("ncco" in body):
        return "give exactly one of answer_url and ncco"
    if "answer_url" in body:
        if not _is_url_list(body["answer_url"]):
            return "answer_url must be a list holding one http(s) URL"
        if body.get("answer_method", "GET") not in ("GET", "POST"):
            return "answer_method must be GET or POST"
    elif not (isinstance(body["ncco"], list) and all(isinstance(a, dict) and "action" in a for a in body["ncco"])):
        return "ncco must be a list of actions"
    if not _is_url_list(body.get("event_url")):
        return "event_url must be a list holding one http(s) URL"
    if body.get("event_method", "POST") not in ("GET", "POST"):
        return "event_method must be GET or POST"
    return None


def typed_digits(entry: str, max_digits: int, submit_on_hash: bool) -> tuple[str, bool]:
    """The digits an input reports for the keys typed, and whether its timeOut ended it."""
    digits = ""
    for key in "" if entry in _NOTHING_TYPED else entry:
        if key == "#" and submit_on_hash:
            return digits, False
        digits += key
        if len(digits) >= max_digits:
            return digits, False
    return digits, True


class OutboundCall:
    """One call placed through POST /v1/calls: events, the NCCO, then each action, as Vonage runs them."""

    def __init__(self, request: dict[str, Any], report: OutboundReport, signing: WebhookSigning | None = None) -> None:
        self.request = request
        self.report = report
        self.signing = signing or WebhookSigning()
        self.http = requests.Session()
        self.event_url = str(request["event_url"][0])
        self.event_method = str(request.get("event_method", "POST"))
        self.fields = {
            "from": report.from_,
            "to": report.to,
            "uuid": report.uuid,
            "conversation_uuid": report.conversation_uuid,
        }
        self.answered_at: float | None = None
        self.completed = False

    def start(self) -> None:
        """Run the call in a daemon thread, as Vonage goes on once it has answered 201."""
        threading.Thread(target=self.run, name=f"outbound-{self.report.uuid}", daemon=True).start()

    def run(self) -> None:
        try:
            self._ring()
        except Exception as err:  # whoever waits for the call must still learn it is over
            log.exception("outbound call failed", extra={"uuid": self.report.uuid})
            self.report.error = f"{type(err).__name__}: {err}"
        finally:
            self.http.close()
            self.report.finished.set()

    def _ring(self) -> None:
        script = self.report.script
        self._event("started")
        self._event("ringing")
        time.sleep(script.ring_seconds)
        if script.outcome != "answer":
            detail = _DETAILS.get(script.outcome)
            self._event(script.outcome, **({"detail": detail} if detail else {}))
            return
        self.answered_at = time.time()
        self._event("answered", start_time=iso(self.answered_at))
        self.report.ncco = self._first_ncco()
        self._run(list(self.report.ncco))
        if not self.completed:
            self._complete()

    def _first_ncco(self) -> list[dict[str, Any]]:
        if "ncco" in self.request:
            return list(self.request["ncco"])
        method = str(self.request.get("answer_method", "GET"))
        response = self._send(str(self.request["answer_url"][0]), self.fields, method, copies=1)
        self.report.answer_status = None if response is None else response.status_code
        ncco = _ncco_of(response)
        if ncco is None:
            # Vonage ends a call whose answer URL gives no NCCO.
            self.report.error = f"answer URL gave no NCCO (HTTP {self.report.answer_status})"
            return []
        return ncco

    def _run(self, actions: list[dict[str, Any]]) -> None:
        script = self.report.script
        typed = iter(script.dtmf)
        last = script.hangs_up_after
        sent = 0
        while actions:
            action = actions.pop(0)
            kind = action.get("action")
            if kind == "talk":
                self.report.talks.append(str(action.get("text", "")))
            elif kind == "input" and "dtmf" in (action.get("type") or []):
                if last is not None and sent >= last:
                    return  # the person hung up before this input
                sent += 1
                if sent == last and script.completed_first:
                    self._complete()
                # A script that runs out types nothing: the input times out.
                reply = self._input(action, next(typed, ""))
                if sent == last:
                    return
                if reply is not None:
                    actions = reply  # the webhook's NCCO replaces the rest of the current one
            else:
                log.warning("action not simulated", extra={"action": kind})

    def _input(self, action: dict[str, Any], entry: str) -> list[dict[str, Any]] | None:
        """Type `entry`, post the input webhook, and return the NCCO it answered, if any."""
        options = action.get("dtmf") or {}
        # Pre-2020 NCCOs put these at the top level of the action.
        max_digits = int(options.get("maxDigits", action.get("maxDigits", 4)))
        on_hash = bool(options.get("submitOnHash", action.get("submitOnHash", False)))
        digits, timed_out = typed_digits(entry, max_digits, on_hash)
        payload: dict[str, Any] = dict(self.fields)
        if self.report.script.legacy_dtmf:
            payload |= {"dtmf": digits, "timed_out": timed_out}
        else:
            # A live capture of a DTMF-only input also reports that speech was not enabled.
            payload["speech"] = {"error": "Speech was not enabled"}
            payload["dtmf"] = {"digits": digits, "timed_out": timed_out}
        payload["timestamp"] = iso(time.time())
        url = str((action.get("eventUrl") or [self.event_url])[0])
        response = self._send(url, payload, str(action.get("eventMethod", "POST")))
        self.report.inputs.append((digits, None if response is None else response.status_code))
        return _ncco_of(response)

    def _event(self, status: str, **extra: str) -> None:
        payload = {**self.fields, "direction": "outbound", "status": status, "timestamp": iso(time.time()), **extra}
        response = self._send(self.event_url, payload, self.event_method)
        self.report.events.append((status, None if response is None else response.status_code))

    def _complete(self) -> None:
        ended = time.time()
        answered = self.answered_at or ended
        seconds = int(ended - answered)
        price = f"{float(_RATE) * max(1, -(-seconds // 60)):.8f}"  # billed per started minute
        times = {"start_time": iso(answered), "end_time": iso(ended), "duration": str(seconds)}
        self._event("completed", **times, rate=_RATE, price=price)
        self.completed = True

    def _send(
        self, url: str, payload: dict[str, Any], method: str, copies: int | None = None
    ) -> requests.Response | None:
        """Deliver a webhook `copies` times (the script's count by default); the first answer counts."""
        first: requests.Response | None = None
        for _ in range(copies or self.report.script.webhook_copies):
            try:
                response: requests.Response | None = send_webhook(self.http, url, payload, self.signing, method)
            except requests.RequestException as err:
                log.warning("webhook not delivered", extra={"url": url, "error": str(err)})
                response = None
            if first is None:
                first = response
        return first


def _ncco_of(response: requests.Response | None) -> list[dict[str, Any]] | None:
    """The NCCO a webhook answered with; None for an error, an empty body or anything not a list."""
    if response is None or not response.ok:
        return None
    try:
        ncco = response.json()
    except ValueError:
        return None
    return ncco if isinstance(ncco, list) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, str) and _PHONE.fullmatch(value) is not None


def _is_url_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 1
        and isinstance(value[0], str)
        and value[0].startswith(("http://", "https://"))
    )
