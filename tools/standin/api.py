"""The stand-in's HTTP API: create-call, recordings and transcripts behind the application's JWT, and SMS."""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from tools.standin.outbound import CalleeScript, OutboundCall, OutboundReport, create_call_problem
from tools.standin.webhooks import WebhookSigning

__all__ = ["StandinApi", "ensure_tls_files", "make_tls_files", "serve_in_thread"]

# Vonage's error bodies name the problem type as a documentation URL.
_ERRORS = "https://developer.nexmo.com/api-errors"


@dataclass
class StandinApi:
    """What the stand-in serves and what it was sent."""

    public_key_pem: bytes | None = None
    recordings: dict[str, bytes] = field(default_factory=dict)
    transcripts: dict[str, bytes] = field(default_factory=dict)  # Vonage's transcript files, by file id
    downloads: list[str] = field(default_factory=list)  # file ids (recordings and transcripts), once per fetch
    sms: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    signature_secret: str | None = None  # signs the webhooks of outbound calls
    signing: WebhookSigning | None = None  # how, when more than the secret is to be chosen
    scripts: dict[str, CalleeScript] = field(default_factory=dict)  # what the person at each number does
    default_script: CalleeScript = field(default_factory=CalleeScript)
    outbound: dict[str, OutboundReport] = field(default_factory=dict)  # by call leg uuid, in the order placed

    def app(self) -> Flask:
        app = Flask("vonage-standin")
        app.add_url_rule("/v1/calls", "create_call", self._create_call, methods=["POST"])
        app.add_url_rule("/v1/files/<recording_uuid>", "recording", self._recording, methods=["GET"])
        app.add_url_rule("/sms/json", "send_sms", self._send_sms, methods=["POST"])
        app.add_url_rule("/standin/sms", "sent", lambda: jsonify(self.sms), methods=["GET"])
        return app

    def _create_call(self) -> Any:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not self._valid_jwt(token):
            return _error(401, "Unauthorized", "application JWT required")
        body = request.get_json(silent=True)
        problem = create_call_problem(body)
        if problem or not isinstance(body, dict):
            return _error(400, "Bad Request", problem or "the body must be a JSON object")
        report = self.place_call(body)
        return jsonify(
            {
                "uuid": report.uuid,
                "status": "started",
                "direction": "outbound",
                "conversation_uuid": report.conversation_uuid,
            }
        ), 201

    def _recording(self, recording_uuid: str) -> Any:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not self._valid_jwt(token):
            return jsonify({"title": "Unauthorized", "detail": "application JWT required"}), 401
        data = self.recordings.get(recording_uuid)
        transcript = self.transcripts.get(recording_uuid)
        if data is None and transcript is None:
            return jsonify({"title": "Not found"}), 404
        with self.lock:
            self.downloads.append(recording_uuid)
        if transcript is not None:
            return transcript, 200, {"Content-Type": "application/json"}
        assert data is not None
        return data, 200, {"Content-Type": "audio/wav" if data[:4] == b"RIFF" else "audio/mpeg"}

    def _send_sms(self) -> Any:
        # The SDK may send a form body under a JSON content type (vonage-python-sdk #323).
        from urllib.parse import parse_qsl

        form = dict(parse_qsl(request.get_data(as_text=True)))
        basic = request.authorization
        has_basic = basic is not None and bool(basic.username) and bool(basic.password)
        if not has_basic and not (form.get("api_key") and (form.get("api_secret") or form.get("sig"))):
            return jsonify({"message-count": "1", "messages": [{"status": "2", "error-text": "Missing api_key"}]})
        with self.lock:
            self.sms.append({k: form.get(k, "") for k in ("from", "to", "text", "client-ref")})
            message_id = f"standin-{len(self.sms):08d}"
        return jsonify(
            {"message-count": "1", "messages": [{"to": form.get("to"), "message-id": message_id, "status": "0"}]}
        )

    def place_call(self, body: dict[str, Any]) -> OutboundReport:
        """Ring the number in a checked create-call body, in the background, as its script says."""
        script = self.scripts.get(str(body["to"][0]["number"]), self.default_script)
        report = OutboundReport.for_request(body, script)
        with self.lock:
            self.outbound[report.uuid] = report
        OutboundCall(body, report, self.signing or WebhookSigning(self.signature_secret)).start()
        return report

    def wait_for_call(self, uuid: str | None = None, timeout: float = 30.0) -> OutboundReport:
        """The call `uuid` (default: the latest placed, waiting for one) once it is over."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                report = self.outbound.get(uuid) if uuid else next(reversed(self.outbound.values()), None)
            if report is not None:
                return report.wait(max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no call {uuid or 'placed'} within {timeout} s")
            time.sleep(0.05)

    def _valid_jwt(self, token: str) -> bool:
        if self.public_key_pem is None:
            return bool(token)
        import jwt

        try:
            claims = jwt.decode(token, self.public_key_pem, algorithms=["RS256"])
        except jwt.PyJWTError:
            return False
        return bool(claims.get("application_id"))

    def serving(
        self, host: str, port: int, tls: tuple[Path, Path] | None = None
    ) -> contextlib.AbstractContextManager[str]:
        """Run the API in a thread; yields its base URL."""
        return serve_in_thread(self.app(), host, port, tls)


def _error(status: int, title: str, detail: str) -> tuple[Any, int]:
    """An error answer in Vonage's shape."""
    slug = title.lower().replace(" ", "-")
    return jsonify({"type": f"{_ERRORS}#{slug}", "title": title, "detail": detail}), status


@contextlib.contextmanager
def serve_in_thread(app: Any, host: str, port: int, tls: tuple[Path, Path] | None = None) -> Iterator[str]:
    """Serve a WSGI app from a thread (port 0: any free port); yields its base URL."""
    context = None
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
    server = make_server(host, port, app, threaded=True, ssl_context=context)
    # A short poll keeps shutdown quick: tests start and stop servers many times.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://{host}:{server.server_port}"
    finally:
        server.shutdown()


def make_tls_files(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for `host`; point REQUESTS_CA_BUNDLE at the first file."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vonage-standin")])
    now = datetime.datetime.now(datetime.UTC)
    try:
        alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt = x509.DNSName(host)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "standin-cert.pem", folder / "standin-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def ensure_tls_files(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """The certificate `make_tls_files` left in `folder`, made again if missing, for another host, or expiring."""
    import datetime
    import ipaddress

    from cryptography import x509

    cert_path, key_path = folder / "standin-cert.pem", folder / "standin-key.pem"
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        try:
            covered = ipaddress.ip_address(host) in names.get_values_for_type(x509.IPAddress)
        except ValueError:
            covered = host in names.get_values_for_type(x509.DNSName)
        fresh = cert.not_valid_after_utc > datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
        if covered and fresh:
            _write_ca_bundle(folder, cert_path)
            return cert_path, key_path
    made = make_tls_files(folder, host)
    _write_ca_bundle(folder, made[0])
    return made


def _write_ca_bundle(folder: Path, cert_path: Path) -> None:
    """`ca-bundle.pem`: the public roots plus the stand-in's certificate, for REQUESTS_CA_BUNDLE.

    The local server trusts the stand-in's TLS this way and still reaches real https hosts.
    """
    import certifi

    bundle = Path(certifi.where()).read_bytes().rstrip(b"\n") + b"\n" + cert_path.read_bytes()
    target = folder / "ca-bundle.pem"
    if not target.exists() or target.read_bytes() != bundle:
        target.write_bytes(bundle)


def make_application_key(path: Path) -> bytes:
    """Create (once) an RSA key standing in for a Vonage application's private key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return path.read_bytes()


def public_key_of(private_pem: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem, password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
