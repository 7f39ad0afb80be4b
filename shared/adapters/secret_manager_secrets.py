"""Secrets from Google Secret Manager, read once at start-up by the recorder on App Engine.

Cloud Functions get their secrets as variables through `--set-secrets`; App Engine flexible has
no such mechanism, so the recorder fills each secret setting it was not given from the secret of
the same name (`STREAM_TOKEN_SECRET` from `tapedeck-stream-token-secret`), over REST, since grpc
and the gevent worker need special care together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.config.settings import secret_id
from shared.core.errors import ConfigError

__all__ = ["SecretManagerSecrets"]


class SecretManagerSecrets:
    def __init__(self, project: str, client: Any = None) -> None:
        self.project = project
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import google.cloud.secretmanager as secretmanager

            self._client = secretmanager.SecretManagerServiceClient(transport="rest")
        return self._client

    def fill(self, env: Mapping[str, str], names: Sequence[str]) -> dict[str, str]:
        """`env` with each of `names` it lacks read from Secret Manager; a secret that does not
        exist is left unset (Settings then says whether it was needed), any other failure stops."""
        from google.api_core.exceptions import GoogleAPIError, NotFound

        filled = dict(env)
        for name in names:
            if filled.get(name):
                continue
            path = f"projects/{self.project}/secrets/{secret_id(name)}/versions/latest"
            try:
                filled[name] = self.client.access_secret_version(name=path).payload.data.decode("utf-8")
            except NotFound:
                continue
            except GoogleAPIError as err:
                raise ConfigError(f"{name}: Secret Manager secret {secret_id(name)} cannot be read: {err}") from err
        return filled
