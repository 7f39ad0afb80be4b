"""BlobStore on a Cloud Storage bucket.

Every request is retried as Google's retry strategy asks
(https://cloud.google.com/storage/docs/retry-strategy): answers 408, 429 and 5xx, timeouts and
broken connections, with truncated exponential backoff and full jitter, each attempt bounded by
`StorageRetry.timeout` and the whole by `StorageRetry.deadline`; past it, StorageUnavailable.
A request may therefore reach Cloud Storage twice (the first applied, its answer lost), and three
rules make that harmless:

- a conditional write carries a write id in its custom metadata: when the retry of a write that
  was applied is answered 412, the object's write id tells tapedeck's own write from another
  writer's, and the write counts as done;
- compose never composes an object into itself: past 32 sources, groups of sources are composed
  into intermediate objects (beside the first source), then those into the destination, so the
  same sources always give the same bytes;
- the rest is idempotent as it is: a write carries a key's whole content, a read or a listing
  changes nothing, deleting what is gone is not an error.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import http.client
import logging
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.adapters.keys import check_key
from shared.core.ports import BINARY, Blob, BlobInfo, StorageConflict, StorageUnavailable

if TYPE_CHECKING:
    import google.cloud.storage as storage

__all__ = ["WRITE_ID", "GcsBlobStore", "StorageRetry"]

log = logging.getLogger(__name__)

# One compose request takes at most 32 sources.
_COMPOSE_LIMIT = 32
# The custom metadata key of a conditional write's id.
WRITE_ID = "tapedeck-write"
# Answers Google's retry strategy says to retry, besides every 5xx.
_RETRIED_STATUSES = (408, 429)


@dataclass(frozen=True)
class StorageRetry:
    """How requests are retried: delays from `initial` doubling to `maximum` (each drawn at
    random below its bound), `deadline` seconds in all; each attempt gets `timeout` seconds to
    connect and to answer."""

    initial: float = 0.25
    maximum: float = 8.0
    multiplier: float = 2.0
    deadline: float = 30.0
    timeout: tuple[float, float] = (5.0, 15.0)


def is_transient(err: BaseException) -> bool:
    """Whether a failed request is worth trying again: a 408, 429 or 5xx answer, a timeout or a
    broken connection."""
    import requests
    from google.api_core.exceptions import GoogleAPICallError
    from google.auth.exceptions import TransportError
    from google.cloud.storage.exceptions import InvalidResponse

    if isinstance(err, GoogleAPICallError):
        code = int(err.code or 0)
        return code in _RETRIED_STATUSES or 500 <= code < 600
    if isinstance(err, InvalidResponse):
        status = int(err.response.status_code)
        return status in _RETRIED_STATUSES or 500 <= status < 600
    if isinstance(err, TransportError):
        return any(isinstance(arg, BaseException) and is_transient(arg) for arg in err.args)
    return isinstance(
        err,
        requests.ConnectionError
        | requests.Timeout
        | requests.exceptions.ChunkedEncodingError
        | ConnectionError
        | TimeoutError
        | http.client.HTTPException,
    )


class GcsBlobStore:
    """Objects in one bucket. The client is built on first use (or by `prepare`) unless one is injected."""

    def __init__(self, bucket: str, client: storage.Client | None = None, retry: StorageRetry | None = None) -> None:
        self.bucket_name = bucket
        self.policy = retry or StorageRetry()
        # Requests tried again, for the logs and the tests.
        self.retries = 0
        self._client = client
        self._bucket: Any = None
        self._retry: Any = None

    def prepare(self) -> None:
        """Import the client library and build the client now, rather than in the first request
        (in the recorder, that would stall every stream of the worker while it loads)."""
        _ = self.bucket, self.retry
        # Uploads are checksummed with it, imported by the library on the first upload otherwise.
        import google_crc32c  # noqa: F401

    @property
    def bucket(self) -> Any:
        if self._bucket is None:
            if self._client is None:
                import google.cloud.storage as storage

                self._client = storage.Client()
            self._bucket = self._client.bucket(self.bucket_name)
        return self._bucket

    @property
    def retry(self) -> Any:
        """The google-api-core Retry every request is made with."""
        if self._retry is None:
            from google.api_core.retry import Retry

            policy = self.policy
            self._retry = Retry(
                predicate=is_transient,
                initial=policy.initial,
                maximum=policy.maximum,
                multiplier=policy.multiplier,
                timeout=policy.deadline,
                on_error=self._retrying,
            )
        return self._retry

    def _retrying(self, err: BaseException) -> None:
        self.retries += 1
        log.debug("storage request retried", extra={"error": f"{type(err).__name__}: {err}"})

    @property
    def _calls(self) -> dict[str, Any]:
        return {"retry": self.retry, "timeout": self.policy.timeout}

    @contextlib.contextmanager
    def _failing(self, what: str, key: str) -> Iterator[None]:
        """Storage failures that outlast the retries, as StorageUnavailable."""
        from google.api_core.exceptions import RetryError

        try:
            yield
        except RetryError as err:
            after = self.policy.deadline
            raise StorageUnavailable(f"{what} {key}: still failing after {after} s: {err.cause}") from err
        except Exception as err:
            if is_transient(err):
                raise StorageUnavailable(f"{what} {key}: {type(err).__name__}: {err}") from err
            raise

    def read(self, key: str) -> Blob | None:
        from google.api_core.exceptions import NotFound
        from google.api_core.exceptions import PreconditionFailed as GcsPreconditionFailed

        # Metadata first, then the bytes of exactly that generation, so the pair is consistent.
        for _ in range(5):
            with self._failing("read", key):
                blob = self.bucket.get_blob(check_key(key), **self._calls)
                if blob is None:
                    return None
                generation = int(blob.generation or 0)
                try:
                    data = blob.download_as_bytes(if_generation_match=generation, **self._calls)
                except NotFound:
                    return None
                except GcsPreconditionFailed:
                    continue
            return Blob(data, generation)
        raise StorageConflict(f"{key} kept changing while being read")

    def write(self, key: str, data: bytes, content_type: str = BINARY, if_generation_match: int | None = None) -> int:
        from google.api_core.exceptions import PreconditionFailed as GcsPreconditionFailed

        blob = self.bucket.blob(check_key(key))
        if if_generation_match is None:
            with self._failing("write", key):
                blob.upload_from_string(data, content_type=content_type, **self._calls)
            return int(blob.generation or 0)
        # Marked, so that a retry answered 412 after this very write was applied is known as ours.
        write_id = secrets.token_hex(12)
        blob.metadata = {WRITE_ID: write_id}
        try:
            with self._failing("write", key):
                blob.upload_from_string(
                    data, content_type=content_type, if_generation_match=if_generation_match, **self._calls
                )
        except GcsPreconditionFailed as err:
            generation = self._written_by(key, write_id)
            if generation is None:
                raise StorageConflict(f"{key} changed since it was read") from err
            log.info("a write applied before its answer was lost", extra={"key": key})
            return generation
        return int(blob.generation or 0)

    def _written_by(self, key: str, write_id: str) -> int | None:
        """The object's generation if the write `write_id` is what it holds now."""
        with self._failing("read", key):
            current = self.bucket.get_blob(key, **self._calls)
        if current is None or (current.metadata or {}).get(WRITE_ID) != write_id:
            return None
        return int(current.generation or 0)

    def delete(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        # A delete applied before its answer was lost is retried and answered 404: done either way.
        with contextlib.suppress(NotFound), self._failing("delete", key):
            self.bucket.blob(check_key(key)).delete(**self._calls)

    def list(self, prefix: str) -> list[BlobInfo]:
        with self._failing("list", prefix):
            blobs = self.bucket.client.list_blobs(self.bucket, prefix=prefix, **self._calls)
            found = [BlobInfo(b.name, int(b.size or 0), b.updated.timestamp() if b.updated else 0.0) for b in blobs]
        return sorted(found, key=lambda info: info.key)

    def list_after(self, prefix: str, start_after: str, limit: int) -> builtins.list[BlobInfo]:
        # start_offset is inclusive: ask for one more and drop the key the page starts after.
        with self._failing("list", prefix):
            blobs = self.bucket.client.list_blobs(
                self.bucket, prefix=prefix, start_offset=start_after or None, max_results=limit + 1, **self._calls
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

    def signed_url(self, key: str, ttl_seconds: int, download_as: str | None = None) -> str:
        """A V4 signed GET URL; with `download_as`, Cloud Storage answers it as an attachment of
        that name. On managed runtimes the credentials hold only a token, so signing goes through
        IAM signBlob (the service account needs Token Creator on itself)."""
        from datetime import timedelta

        blob = self.bucket.blob(check_key(key))
        expiration = timedelta(seconds=ttl_seconds)
        disposition = f'attachment; filename="{download_as}"' if download_as else None
        credentials = self.bucket.client._credentials
        if hasattr(credentials, "signer"):
            return str(
                blob.generate_signed_url(
                    version="v4", expiration=expiration, method="GET", response_disposition=disposition
                )
            )
        import google.auth.transport.requests

        credentials.refresh(google.auth.transport.requests.Request())
        return str(
            blob.generate_signed_url(
                version="v4",
                expiration=expiration,
                method="GET",
                response_disposition=disposition,
                service_account_email=credentials.service_account_email,
                access_token=credentials.token,
            )
        )

    def compose(self, key: str, sources: Sequence[str], content_type: str) -> None:
        check_key(key)
        pending = [check_key(source) for source in sources]
        # Intermediate objects are named by the sources they hold, beside the first source.
        folder = pending[0].rpartition("/")[0] if pending else ""
        label = hashlib.sha256("\n".join([key, *pending]).encode()).hexdigest()[:16]
        folds: builtins.list[str] = []
        level = 0
        while len(pending) > _COMPOSE_LIMIT:
            groups = [pending[n : n + _COMPOSE_LIMIT] for n in range(0, len(pending), _COMPOSE_LIMIT)]
            pending = []
            for number, group in enumerate(groups):
                if len(group) == 1:
                    pending.append(group[0])
                    continue
                fold = f"{folder}/fold-{label}-{level}-{number}" if folder else f"fold-{label}-{level}-{number}"
                self._compose_once(fold, group, content_type)
                folds.append(fold)
                pending.append(fold)
            level += 1
        self._compose_once(key, pending, content_type)
        for fold in folds:
            self.delete(fold)

    def _compose_once(self, key: str, sources: Sequence[str], content_type: str) -> None:
        # A fresh destination each time: one that carries a previous answer's checksum is refused.
        dest = self.bucket.blob(key)
        dest.content_type = content_type
        # Retried whatever its preconditions: the destination is never among its sources.
        with self._failing("compose", key):
            dest.compose([self.bucket.blob(source) for source in sources], **self._calls)
