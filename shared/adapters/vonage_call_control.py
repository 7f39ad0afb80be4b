"""CallControl on the Vonage v4 SDK: outbound calls with the application's key or a forwarded JWT."""

from __future__ import annotations

import logging
from typing import Any

from shared.core.errors import BadGateway, BadRequest, Unauthorized
from shared.core.ports import OutboundCall, VonageCredentials

__all__ = ["VonageCallControl"]

log = logging.getLogger(__name__)


def _forwarded_auth(token: str) -> Any:
    """An SDK Auth that sends a caller's own application JWT instead of minting one."""
    from vonage import Auth

    class ForwardedJwt(Auth):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self._token = token.encode()

        @property
        def application_id(self) -> None:
            return None

        def generate_application_jwt(self, claims: dict[str, Any] | None = None) -> bytes:
            return self._token

        def create_jwt_auth_string(self) -> bytes:
            return b"Bearer " + self._token

    return ForwardedJwt()


class VonageCallControl:
    def __init__(self, api_host: str) -> None:
        self.api_host = api_host

    def check_credentials(self, credentials: VonageCredentials) -> None:
        """Refuse an application key that cannot sign Vonage's RS256 JWT, before anything is stored."""
        if credentials.bearer:
            return
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        problem = "must be an unencrypted RSA private key in PEM"
        try:
            key = load_pem_private_key(credentials.private_key.encode(), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as err:
            raise BadRequest(f"private_key {problem}", {"private_key": problem}) from err
        if not isinstance(key, RSAPrivateKey):
            raise BadRequest(f"private_key {problem}", {"private_key": problem})

    def create_call(self, call: OutboundCall, credentials: VonageCredentials) -> str:
        from vonage import Auth, HttpClientOptions, Vonage
        from vonage_http_client.errors import AuthenticationError, ForbiddenError, HttpRequestError, JWTGenerationError
        from vonage_voice import CreateCallRequest
        from vonage_voice.errors import VoiceError

        try:
            if credentials.bearer:
                auth = _forwarded_auth(credentials.bearer)
            else:
                auth = Auth(application_id=credentials.application_id, private_key=credentials.private_key)
            client = Vonage(auth, HttpClientOptions(api_host=self.api_host, timeout=10, max_retries=0))
            request = CreateCallRequest(
                to=[{"type": "phone", "number": call.to}],
                from_={"type": "phone", "number": call.from_},
                answer_url=[call.answer_url],
                answer_method="GET",
                event_url=[call.event_url],
                event_method="POST",
            )
            response = client.voice.create_call(request)
        except (AuthenticationError, ForbiddenError, JWTGenerationError) as err:
            raise Unauthorized("Vonage refused the application credentials") from err
        except (HttpRequestError, VoiceError) as err:
            status = getattr(getattr(err, "response", None), "status_code", None)
            if status is not None and 400 <= status < 500:
                raise BadRequest(f"Vonage refused the call (HTTP {status})") from err
            raise BadGateway(f"Vonage did not place the call (HTTP {status or 'error'})") from err
        except (OSError, ValueError) as err:
            raise BadGateway(f"Vonage could not be reached: {type(err).__name__}") from err
        log.info("call placed", extra={"uuid": response.uuid, "to": call.to})
        return str(response.uuid)
