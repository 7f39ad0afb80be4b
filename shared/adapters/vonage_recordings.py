"""Recordings from Vonage, fetched with an RS256 application JWT."""

from __future__ import annotations

import ipaddress
from typing import Any

from shared.core.errors import BadRequest, TapedeckError
from shared.core.payloads import split_url

__all__ = ["MAX_RECORDING_BYTES", "VonageRecordings"]

MAX_RECORDING_BYTES = 200 * 1024 * 1024
_VONAGE_DOMAINS = ("nexmo.com", "vonage.com")


class RecordingUnavailable(TapedeckError):
    """Vonage did not hand over the recording (yet); a retry may succeed."""

    status = 502


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class VonageRecordings:
    """Downloads recording URLs, but only from Vonage's hosts or the configured API host."""

    def __init__(self, application_id: str, private_key: str, api_host: str, http: Any = None) -> None:
        self.application_id = application_id
        self.private_key = private_key
        self.api_host = api_host
        self._http = http

    def check_url(self, url: str) -> None:
        """Refuse URLs that would make tapedeck fetch from anywhere else (SSRF)."""
        parts = split_url(url, "recording_url")
        host = parts.hostname or ""
        vonage = any(host == d or host.endswith(f".{d}") for d in _VONAGE_DOMAINS)
        configured = parts.netloc == self.api_host
        if not (vonage or configured):
            raise BadRequest(f"recording_url host {host!r} is not a Vonage host")
        if parts.scheme != "https" and not (configured and _is_loopback(host) and parts.scheme == "http"):
            raise BadRequest("recording_url must be https")

    def download(self, url: str) -> bytes:
        self.check_url(url)
        import requests
        from vonage_jwt import JwtClient

        token = JwtClient(self.application_id, self.private_key).generate_application_jwt()
        if self._http is None:
            self._http = requests.Session()
        try:
            response = self._http.get(
                url, headers={"Authorization": f"Bearer {token.decode()}"}, timeout=30, stream=True
            )
        except requests.RequestException as err:
            raise RecordingUnavailable(f"recording download failed: {err}") from err
        if response.status_code != 200:
            raise RecordingUnavailable(f"recording download answered {response.status_code}")
        data = bytearray()
        for chunk in response.iter_content(64 * 1024):
            data += chunk
            if len(data) > MAX_RECORDING_BYTES:
                raise BadRequest("recording is larger than tapedeck accepts")
        return bytes(data)
