"""The stand-in's HTTP API: recording files behind the application's JWT, and the SMS API."""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

__all__ = ["StandinApi", "make_tls_files", "serve_in_thread"]


@dataclass
class StandinApi:
    """What the stand-in serves and what it was sent."""

    public_key_pem: bytes | None = None
    recordings: dict[str, bytes] = field(default_factory=dict)
    sms: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Flask:
        app = Flask("vonage-standin")

        @app.get("/v1/files/<recording_uuid>")
        def recording(recording_uuid: str) -> Any:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme != "Bearer" or not self._valid_jwt(token):
                return jsonify({"title": "Unauthorized", "detail": "application JWT required"}), 401
            data = self.recordings.get(recording_uuid)
            if data is None:
                return jsonify({"title": "Not found"}), 404
            return data, 200, {"Content-Type": "audio/wav" if data[:4] == b"RIFF" else "audio/mpeg"}

        @app.post("/sms/json")
        def send_sms() -> Any:
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

        @app.get("/standin/sms")
        def sent() -> Any:
            return jsonify(self.sms)

        return app

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


@contextlib.contextmanager
def serve_in_thread(app: Any, host: str, port: int, tls: tuple[Path, Path] | None = None) -> Iterator[str]:
    """Serve a WSGI app from a thread (port 0: any free port); yields its base URL."""
    context = None
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
    server = make_server(host, port, app, threaded=True, ssl_context=context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
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
        .not_valid_after(now + datetime.timedelta(days=1))
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
