"""BlobStore on a local folder: the embedded default.

Every write is flushed to disk (fsync) before its atomic rename. In the recorder's gevent worker
an fsync on the event loop would stop every other stream until the disk answers, so there it runs
in gevent's hub threadpool (a bounded pool of OS threads; fsync releases the GIL) while the
writing greenlet waits; `nox -s bench` measures both. Anywhere else (the Cloud Functions, tests,
tools) it runs directly: no thread is ever started outside gevent.
"""

from __future__ import annotations

import builtins
import fcntl
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from shared.adapters.keys import check_key
from shared.core.ports import BINARY, Blob, BlobInfo, StorageConflict

__all__ = ["LocalBlobStore", "sync_file"]

_COPY_CHUNK = 1024 * 1024
# Where conditional writes take their locks; hidden, as every dot-name is, from listings.
_LOCKS = ".locks"


def _generation(data: bytes) -> int:
    # Content-addressed: a conditional write compares what the writer saw with what is there now.
    return int.from_bytes(hashlib.sha256(data).digest()[:7], "big") | 1


def sync_file(fd: int) -> None:
    """fsync `fd`: in gevent's threadpool when gevent has patched threading, else directly."""
    # Looked up, never imported: only a process that already runs gevent may use its pool, and a
    # bundle that does not run gevent (the functions) does not ship it.
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        sys.modules["gevent"].get_hub().threadpool.apply(os.fsync, (fd,))
    else:
        os.fsync(fd)


class LocalBlobStore:
    """Objects as files under `root`; writes are atomic renames made under a per-object lock.

    `sync` flushes a written file to disk (`sync_file` unless given; the bench passes os.fsync
    to measure it on the event loop)."""

    def __init__(self, root: Path, sync: Callable[[int], None] = sync_file) -> None:
        self.root = Path(root)
        self.sync = sync

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    @contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        # One empty lock file per object, in a folder of its own and named by a hash of the key: it
        # outlives the object (removing it could let two writers hold two locks on one key), so
        # it must not name what the object was (a caller's number, once that caller is forgotten).
        locks = self.root / _LOCKS
        locks.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(path.relative_to(self.root).as_posix().encode()).hexdigest()[:40]
        with open(locks / f"{name}.lock", "a") as lock:
            # Asked without blocking, and waited for with sleeps: under gevent the holder may be
            # another greenlet of this process, paused while its write is flushed, and a blocking
            # flock would stop the very event loop it needs to finish.
            wait = 0.0005
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    time.sleep(wait)
                    wait = min(wait * 2, 0.01)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _replace(self, path: Path, chunks: Iterator[bytes]) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                out.flush()
                self.sync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read(self, key: str) -> Blob | None:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        return Blob(data, _generation(data))

    def write(self, key: str, data: bytes, content_type: str = BINARY, if_generation_match: int | None = None) -> int:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        if if_generation_match is None:
            self._replace(path, iter((data,)))
            return _generation(data)
        with self._locked(path):
            current = self.read(key)
            found = current.generation if current else 0
            if found != if_generation_match:
                raise StorageConflict(f"{key} is at generation {found}, not {if_generation_match}")
            self._replace(path, iter((data,)))
        return _generation(data)

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        # Folders are only a local view of key prefixes: drop the ones this leaves empty.
        for folder in path.parents:
            if folder == self.root or self.root not in folder.parents:
                break
            try:
                folder.rmdir()
            except OSError:
                break

    def list(self, prefix: str) -> list[BlobInfo]:
        base = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not base.is_dir():
            return []
        found = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if name.startswith("."):
                    continue
                path = Path(dirpath, name)
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    stat = path.stat()
                    found.append(BlobInfo(key, stat.st_size, stat.st_mtime))
        return sorted(found, key=lambda info: info.key)

    def list_after(self, prefix: str, start_after: str, limit: int) -> builtins.list[BlobInfo]:
        # Folders are walked in key order and only as far as the page goes, so a page deep in a
        # long listing costs the folders it passes through, not the whole tree.
        found: builtins.list[BlobInfo] = []
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        self._walk_after(base, prefix, start_after, limit, found)
        return found

    def _walk_after(
        self, folder: str, prefix: str, start_after: str, limit: int, found: builtins.list[BlobInfo]
    ) -> None:
        try:
            # A folder sorts as its keys do: by its name and the slash after it.
            entries = sorted(os.scandir(self.root / folder), key=lambda e: e.name + "/" if e.is_dir() else e.name)
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if len(found) >= limit:
                return
            if entry.name.startswith("."):
                continue
            key = f"{folder}/{entry.name}" if folder else entry.name
            if entry.is_dir():
                below = key + "/"
                # Skip a folder wholly before the start, or outside the prefix.
                if start_after[: len(below)] > below or not (below.startswith(prefix) or prefix.startswith(below)):
                    continue
                self._walk_after(key, prefix, start_after, limit, found)
            elif key.startswith(prefix) and key > start_after:
                stat = entry.stat()
                found.append(BlobInfo(key, stat.st_size, stat.st_mtime))

    def read_many(self, keys: Sequence[str]) -> builtins.list[Blob | None]:
        return [self.read(key) for key in keys]

    def compose(self, key: str, sources: Sequence[str], content_type: str) -> None:
        paths = [self._path(source) for source in sources]

        def chunks() -> Iterator[bytes]:
            for source in paths:
                with open(source, "rb") as part:
                    while chunk := part.read(_COPY_CHUNK):
                        yield chunk

        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._replace(path, chunks())
