"""BlobStore on a Cloud Storage bucket."""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shared.adapters.keys import check_key
from shared.core.ports import Blob, BlobInfo, StorageConflict

if TYPE_CHECKING:
    import google.cloud.storage as storage

__all__ = ["GcsBlobStore"]

# One compose request takes at most 32 sources.
_COMPOSE_LIMIT = 32


class GcsBlobStore:
    """Objects in one bucket. The client is built on first use unless one is injected."""

    def __init__(self, bucket: str, client: storage.Client | None = None) -> None:
        self.bucket_name = bucket
        self._client = client
        self._bucket: Any = None

    @property
    def bucket(self) -> Any:
        if self._bucket is None:
            if self._client is None:
                import google.cloud.storage as storage

                self._client = storage.Client()
            self._bucket = self._client.bucket(self.bucket_name)
        return self._bucket

    def read(self, key: str) -> Blob | None:
        from google.api_core.exceptions import NotFound
        from google.api_core.exceptions import PreconditionFailed as GcsPreconditionFailed

        # Metadata first, then the bytes of exactly that generation, so the pair is consistent.
        for _ in range(5):
            blob = self.bucket.get_blob(check_key(key))
            if blob is None:
                return None
            generation = int(blob.generation or 0)
            try:
                data = blob.download_as_bytes(if_generation_match=generation)
            except NotFound:
                return None
            except GcsPreconditionFailed:
                continue
            return Blob(data, generation)
        raise StorageConflict(f"{key} kept changing while being read")

    def write(
        self,
        key: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        if_generation_match: int | None = None,
    ) -> int:
        from google.api_core.exceptions import PreconditionFailed as GcsPreconditionFailed

        blob = self.bucket.blob(check_key(key))
        try:
            blob.upload_from_string(data, content_type=content_type, if_generation_match=if_generation_match)
        except GcsPreconditionFailed as err:
            raise StorageConflict(f"{key} changed since it was read") from err
        return int(blob.generation or 0)

    def delete(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        with contextlib.suppress(NotFound):
            self.bucket.blob(check_key(key)).delete()

    def list(self, prefix: str) -> list[BlobInfo]:
        blobs = self.bucket.client.list_blobs(self.bucket, prefix=prefix)
        found = [BlobInfo(b.name, int(b.size or 0), b.updated.timestamp() if b.updated else 0.0) for b in blobs]
        return sorted(found, key=lambda info: info.key)

    def list_after(self, prefix: str, start_after: str, limit: int) -> builtins.list[BlobInfo]:
        # start_offset is inclusive: ask for one more and drop the key the page starts after.
        blobs = self.bucket.client.list_blobs(
            self.bucket, prefix=prefix, start_offset=start_after or None, max_results=limit + 1
        )
        found = [
            BlobInfo(b.name, int(b.size or 0), b.updated.timestamp() if b.updated else 0.0)
            for b in blobs
            if b.name > start_after
        ]
        return sorted(found, key=lambda info: info.key)[:limit]

    def read_many(self, keys: Sequence[str]) -> builtins.list[Blob | None]:
        # One at a time: the functions use this store, and nothing there may start a pool. The
        # recordings browser reads in parallel through its own wrapper (shared/runtime/reads.py).
        return [self.read(key) for key in keys]

    def signed_url(self, key: str, ttl_seconds: int) -> str:
        """A V4 signed GET URL. On managed runtimes the credentials hold only a token, so
        signing goes through IAM signBlob (the service account needs Token Creator on itself)."""
        from datetime import timedelta

        blob = self.bucket.blob(check_key(key))
        expiration = timedelta(seconds=ttl_seconds)
        credentials = self.bucket.client._credentials
        if hasattr(credentials, "signer"):
            return str(blob.generate_signed_url(version="v4", expiration=expiration, method="GET"))
        import google.auth.transport.requests

        credentials.refresh(google.auth.transport.requests.Request())
        return str(
            blob.generate_signed_url(
                version="v4",
                expiration=expiration,
                method="GET",
                service_account_email=credentials.service_account_email,
                access_token=credentials.token,
            )
        )

    def compose(self, key: str, sources: Sequence[str], content_type: str) -> None:
        check_key(key)
        pending = [self.bucket.blob(check_key(s)) for s in sources]
        self._compose_once(key, pending[:_COMPOSE_LIMIT], content_type)
        pending = pending[_COMPOSE_LIMIT:]
        # Past 32 sources, fold the rest in: each round composes the object so far with 31 more.
        while pending:
            self._compose_once(key, [self.bucket.blob(key), *pending[: _COMPOSE_LIMIT - 1]], content_type)
            pending = pending[_COMPOSE_LIMIT - 1 :]

    def _compose_once(self, key: str, sources: Sequence[Any], content_type: str) -> None:
        # A fresh destination each round: one that carries the previous round's checksum is refused.
        dest = self.bucket.blob(key)
        dest.content_type = content_type
        dest.compose(sources)
