"""Messenger through Vonage's SMS API, with the v4 SDK."""

from __future__ import annotations

from typing import Any

from shared.core.errors import TapedeckError
from shared.core.ports import TextMessage

__all__ = ["VonageMessenger"]


class SmsRefused(TapedeckError):
    status = 502


class VonageMessenger:
    """SMS via `client.sms.send`. It keeps a client of its own: the SDK shares one headers dict
    between APIs, and a JSON call elsewhere would make SMS go out with the wrong content type."""

    def __init__(self, api_key: str, api_secret: str, rest_host: str, client: Any = None) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.rest_host = rest_host
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from vonage import Auth, HttpClientOptions, Vonage

            self._client = Vonage(
                Auth(api_key=self.api_key, api_secret=self.api_secret),
                HttpClientOptions(rest_host=self.rest_host, max_retries=2, timeout=15),
            )
        return self._client

    def send(self, message: TextMessage, key: str) -> str:
        from vonage_sms import SmsMessage
        from vonage_sms.errors import PartialFailureError, SmsError

        try:
            response = self.client.sms.send(
                SmsMessage(to=message.to, from_=message.sender, text=message.text, client_ref=key[:40])
            )
        except (SmsError, PartialFailureError) as err:
            raise SmsRefused(f"Vonage refused the SMS: {err}") from err
        return str(response.messages[0].message_id)
