"""Messenger through Vonage's SMS API, with the v4 SDK."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from shared.core.errors import TapedeckError
from shared.core.ports import TextMessage

__all__ = ["VonageMessenger"]


class SmsRefused(TapedeckError):
    status = 502


@dataclass(eq=False)
class VonageMessenger:
    """SMS via `client.sms.send`. It keeps a client of its own: the SDK shares one headers dict
    between APIs, and a JSON call elsewhere would make SMS go out with the wrong content type."""

    api_key: str
    api_secret: str = field(repr=False)
    rest_host: str
    client: Any = None

    @cached_property
    def _vonage(self) -> Any:
        if self.client is not None:
            return self.client
        from vonage import Auth, HttpClientOptions, Vonage

        return Vonage(
            Auth(api_key=self.api_key, api_secret=self.api_secret),
            HttpClientOptions(rest_host=self.rest_host, max_retries=2, timeout=15),
        )

    def send(self, message: TextMessage, key: str) -> str:
        from vonage_sms import SmsMessage
        from vonage_sms.errors import PartialFailureError, SmsError

        try:
            response = self._vonage.sms.send(
                SmsMessage(to=message.to, from_=message.sender, text=message.text, client_ref=key[:40])
            )
        except (SmsError, PartialFailureError) as err:
            raise SmsRefused(f"Vonage refused the SMS: {err}") from err
        return str(response.messages[0].message_id)

    def forget(self, key: str) -> int:
        # An SMS is on the recipient's phone once sent, and Vonage keeps its own message records
        # (its retention, not tapedeck's): nothing here can be removed.
        return 0
