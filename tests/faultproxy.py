"""A fault-injecting HTTP proxy in front of gcp-storage-emulator: Cloud Storage as it really fails.

Two things the emulator does not do, this proxy does:

- **Generation preconditions**, as Cloud Storage applies them: `ifGenerationMatch`,
  `ifGenerationNotMatch`, `ifMetagenerationMatch` and `ifMetagenerationNotMatch` on uploads,
  compose (the destination's, and each source's `objectPreconditions`), deletes, metadata reads
  and patches, and downloads. They are checked against the object's generation at the emulator,
  under a lock per object held until the request has been applied, so that two writers racing on
  one object see what Cloud Storage would show them: one write, and a 412 for the other (304 for a
  read whose `ifGenerationNotMatch` fails).
- **Faults**, drawn from a seeded random generator at configurable rates, on every object
  request (uploads, downloads, compose, metadata, listing, deletes): an error status (503, 429, 500
  or 408) answered *before* the request is forwarded, so nothing is applied; a connection reset
  *after* it was forwarded and applied, so the client never hears the answer; and a slow answer.
  A test can also script one fault for the next request that matches (`inject`).

Every request the proxy answers is noted in `seen`, with the fault it got. Run alone:
`python -m tests.faultproxy --upstream http://127.0.0.1:9023 --port 9024 --errors 0.15 --resets 0.05`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = ["ERROR", "RESET", "SLOW", "FaultProxy", "FaultRates", "Request", "Seen"]

ERROR, RESET, SLOW = "error", "reset", "slow"
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade", "content-length"}
_PRECONDITIONS = ("ifGenerationMatch", "ifGenerationNotMatch", "ifMetagenerationMatch", "ifMetagenerationNotMatch")
_API = "/storage/v1/b/"
_UPLOAD = "/upload/storage/v1/b/"
_DOWNLOAD = "/download/storage/v1/b/"


@dataclass(frozen=True)
class FaultRates:
    """How often each fault happens, as a share of object requests, and what it looks like."""

    errors: float = 0.0
    resets: float = 0.0
    slow: float = 0.0
    statuses: tuple[int, ...] = (503, 429, 500, 408)
    slow_seconds: tuple[float, float] = (0.5, 2.0)


@dataclass(frozen=True)
class Request:
    """One request as the proxy reads it: what it does, to which object, under which conditions."""

    method: str
    kind: str  # upload, compose, download, get, patch, delete, list, other
    bucket: str
    name: str
    query: dict[str, str]
    body: bytes = b""

    @property
    def conditional(self) -> bool:
        return any(name in self.query for name in _PRECONDITIONS)


@dataclass(frozen=True)
class Seen:
    """A request the proxy answered: its kind and object, the fault it got, and the status sent."""

    kind: str
    method: str
    name: str
    fault: str | None
    status: int | None
    at: float
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class _Scripted:
    fault: str
    match: Callable[[Request], bool]
    times: int
    status: int


def _object_of(method: str, path: str, query: dict[str, str], body: bytes, content_type: str) -> tuple[str, str, str]:
    """The request's kind, bucket and object name."""
    if path.startswith(_UPLOAD):
        bucket = path[len(_UPLOAD) :].split("/", 1)[0]
        name = query.get("name") or _upload_name(body, content_type)
        return "upload", bucket, name
    if path.startswith(_DOWNLOAD):
        bucket, _, rest = path[len(_DOWNLOAD) :].partition("/o/")
        return "download", bucket, unquote(rest)
    if path.startswith(_API):
        bucket, _, rest = path[len(_API) :].partition("/")
        if rest == "o":
            return ("list" if method == "GET" else "other"), bucket, ""
        if not rest.startswith("o/"):
            return "other", bucket, ""
        name = rest[2:]
        if name.endswith("/compose") and method == "POST":
            return "compose", bucket, unquote(name.removesuffix("/compose"))
        kinds = {"GET": "get", "DELETE": "delete", "PATCH": "patch", "PUT": "patch"}
        return kinds.get(method, "other"), bucket, unquote(name)
    return "other", "", ""


def _upload_name(body: bytes, content_type: str) -> str:
    """The object name in a multipart upload's JSON part (the first part), or in a resumable
    upload's first request."""
    if content_type.startswith("multipart/"):
        boundary = content_type.partition("boundary=")[2].strip('"').encode()
        first = body.split(b"--" + boundary, 2)[1] if boundary else b""
        text = first.partition(b"\r\n\r\n")[2]
    else:
        text = body
    try:
        doc = json.loads(text) if text.strip() else {}
    except ValueError:
        return ""
    return str(doc.get("name", "")) if isinstance(doc, dict) else ""


def _error_body(status: int, reason: str, message: str) -> bytes:
    return json.dumps({"error": {"code": status, "message": message, "errors": [{"reason": reason}]}}).encode()


class FaultProxy:
    """The proxy: `url` is what clients use as STORAGE_EMULATOR_HOST; `rates` can change at any time."""

    def __init__(
        self,
        upstream: str,
        rates: FaultRates | None = None,
        *,
        seed: int = 0,
        preconditions: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rates = rates or FaultRates()
        self.preconditions = preconditions
        self.seen: list[Seen] = []
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, str], threading.Lock] = {}
        self._scripted: list[_Scripted] = []
        self._server = _QuietServer((host, port), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def inject(self, fault: str, match: Callable[[Request], bool], times: int = 1, status: int = 503) -> None:
        """The next `times` requests that `match` get `fault`, whatever the rates say."""
        with self._lock:
            self._scripted.append(_Scripted(fault, match, times, status))

    def reset(self) -> None:
        """No faults, nothing scripted, nothing seen: as new, but for the seed's place."""
        with self._lock:
            self.rates = FaultRates()
            self._scripted.clear()
            self.seen.clear()

    def faults(self, kind: str | None = None) -> list[Seen]:
        """The requests that got a fault (of one kind of request, if given)."""
        with self._lock:
            return [s for s in self.seen if s.fault and (kind is None or s.kind == kind)]

    # --- what happens to one request --------------------------------------------------------------

    def draw(self, request: Request) -> tuple[str | None, int]:
        """The fault this request gets, and the status of an error."""
        if request.kind == "other":
            return None, 0
        with self._lock:
            for scripted in self._scripted:
                if scripted.times > 0 and scripted.match(request):
                    scripted.times -= 1
                    return scripted.fault, scripted.status
            roll, rates = self._random.random(), self.rates
            status = self._random.choice(rates.statuses)
        if roll < rates.errors:
            return ERROR, status
        if roll < rates.errors + rates.resets:
            return RESET, 0
        if roll < rates.errors + rates.resets + rates.slow:
            return SLOW, 0
        return None, 0

    def slow_seconds(self) -> float:
        with self._lock:
            return self._random.uniform(*self.rates.slow_seconds)

    def note(self, request: Request, fault: str | None, status: int | None) -> None:
        with self._lock:
            self.seen.append(
                Seen(request.kind, request.method, request.name, fault, status, time.time(), request.query)
            )

    @contextmanager
    def holding(self, request: Request) -> Iterator[None]:
        """One request at a time per object, from its precondition check until it was applied."""
        if not request.name:
            yield
            return
        with self._lock:
            lock = self._objects.setdefault((request.bucket, request.name), threading.Lock())
        with lock:
            yield

    def refusal(self, request: Request) -> int | None:
        """The status Cloud Storage would answer for a precondition that does not hold, if any."""
        if not self.preconditions:
            return None
        checks = [(request.name, request.query)] if request.conditional and request.name else []
        if request.kind == "compose":
            sources = json.loads(request.body or b"{}").get("sourceObjects", [])
            for source in sources:
                condition = source.get("objectPreconditions", {}).get("ifGenerationMatch")
                if condition is not None:
                    checks.append((source["name"], {"ifGenerationMatch": str(condition)}))
        for name, query in checks:
            generation, metageneration = self._current(request.bucket, name)
            failed = (
                ("ifGenerationMatch" in query and generation != int(query["ifGenerationMatch"]))
                or ("ifMetagenerationMatch" in query and metageneration != int(query["ifMetagenerationMatch"]))
                or ("ifMetagenerationNotMatch" in query and metageneration == int(query["ifMetagenerationNotMatch"]))
            )
            if "ifGenerationNotMatch" in query and generation == int(query["ifGenerationNotMatch"]):
                return 304 if request.method == "GET" else 412
            if failed:
                return 412
        return None

    def _current(self, bucket: str, name: str) -> tuple[int, int]:
        """The object's generation and metageneration at the emulator; (0, 0) when it is absent."""
        status, _, data = self.forward("GET", f"{_API}{bucket}/o/{quote(name, safe='')}", {}, b"")
        if status == 404:
            return 0, 0
        doc = json.loads(data)
        return int(doc["generation"]), int(doc["metageneration"])

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list[Any], bytes]:
        connection = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that drops its idle keep-alive connection is not news.
        pass


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._proxy()

        do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        def _proxy(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            split = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(split.query).items()}
            kind, bucket, name = _object_of(self.command, split.path, query, body, self.headers.get("Content-Type", ""))
            request = Request(self.command, kind, bucket, name, query, body)
            fault, status = proxy.draw(request)
            if fault == ERROR:
                proxy.note(request, fault, status)
                self._answer(status, [], _error_body(status, "backendError", "injected by the fault proxy"))
                return
            with proxy.holding(request):
                refused = proxy.refusal(request)
                if refused is None:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                    answer = proxy.forward(self.command, self.path, headers, body)
            if refused is not None:
                proxy.note(request, None, refused)
                message = "At least one of the pre-conditions you specified did not hold."
                self._answer(refused, [], b"" if refused == 304 else _error_body(refused, "conditionNotMet", message))
                return
            if fault == RESET:
                proxy.note(request, fault, None)
                self._reset()
                return
            if fault == SLOW:
                time.sleep(proxy.slow_seconds())
            proxy.note(request, fault, answer[0])
            self._answer(*answer)

        def _answer(self, status: int, headers: list[Any], data: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP and name.lower() not in ("server", "date"):
                    self.send_header(name, value)
            if status != 304:
                self.send_header("Content-Length", str(len(data)))
            if not any(name.lower() == "content-type" for name, _ in headers) and data:
                self.send_header("Content-Type", "application/json")
            self.end_headers()
            if status != 304:
                self.wfile.write(data)

        def _reset(self) -> None:
            # The request was applied; the client gets a reset instead of the answer (SO_LINGER 0).
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True

        def finish(self) -> None:
            with suppress(OSError):
                super().finish()

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="the emulator's URL")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--errors", type=float, default=0.0)
    parser.add_argument("--resets", type=float, default=0.0)
    parser.add_argument("--slow", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rates = FaultRates(errors=args.errors, resets=args.resets, slow=args.slow)
    with FaultProxy(args.upstream, rates, seed=args.seed, port=args.port) as proxy:
        print(proxy.url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
