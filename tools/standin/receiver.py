"""A customer's callback endpoint, for local runs and tests: records what tapedeck delivers.

It checks each delivery's signature and can be told to fail its first few requests, the way
a flaky receiver would, so retries can be watched.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask, request

from shared.flows.delivery import SIGNATURE_HEADER, verify_delivery

__all__ = ["CallbackReceiver", "Delivery"]


@dataclass(frozen=True)
class Delivery:
    """One request as the receiver got it."""

    method: str
    path: str
    fields: dict[str, str]  # the query (GET) or form fields (POST form)
    json: Any  # the JSON body, if any
    signature_valid: bool
    answered: int
    at: float


@dataclass
class CallbackReceiver:
    secret: str
    fail_first: int = 0
    fail_status: int = 500
    deliveries: list[Delivery] = field(default_factory=list)
    on_delivery: Callable[[Delivery], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Flask:
        app = Flask("callback-receiver")

        @app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
        @app.route("/<path:path>", methods=["GET", "POST"])
        def receive(path: str) -> tuple[str, int]:
            body = request.query_string if request.method == "GET" else request.get_data()
            valid = verify_delivery(self.secret, request.headers.get(SIGNATURE_HEADER, ""), body, time.time())
            payload = request.get_json(silent=True) if request.is_json else None
            fields = dict(request.args) if request.method == "GET" else dict(parse_qsl(body.decode(errors="replace")))
            with self._lock:
                failing = len(self.deliveries) < self.fail_first
                status = self.fail_status if failing else (200 if valid else 401)
                delivery = Delivery(request.method, f"/{path}", fields, payload, valid, status, time.time())
                self.deliveries.append(delivery)
            if self.on_delivery:
                self.on_delivery(delivery)
            return ("failing on purpose" if failing else "ok"), status

        return app

    def accepted(self) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.answered == 200]

    def wait(self, count: int = 1, timeout: float = 30.0, settle: float = 0.3) -> list[Delivery]:
        """The accepted deliveries once there are `count`; waits `settle` more to catch extras."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.accepted()) >= count:
                time.sleep(settle)
                return self.accepted()
            time.sleep(0.05)
        raise TimeoutError(f"{count} deliveries expected, {len(self.accepted())} accepted within {timeout} s")
