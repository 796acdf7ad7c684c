"""An object store on a local folder.

Create-only writes publish a fully written, fsynced temp file with ``os.link``, which fails if the
name exists: readers never see a torn object and a crash never leaves a truncated one.
``O_EXCL``-then-write lets readers see partial entries (measured before this store was written), and ``rename``
would replace an existing key. Blocking calls run in worker threads, off the event loop.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import anyio.to_thread

from engine import metrics
from engine.clock import Clock, SystemClock
from engine.errors import ObjectNotFound, PreconditionFailed
from engine.store.base import Blob, LanceLocation, ObjectInfo

_TMP_MARK = ".tmp-"


def _etag(st: os.stat_result) -> str:
    # Every write publishes a new inode (temp file + link/replace), so inode, size and mtime
    # identify one version of a key without hashing its contents.
    return f"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"


class LocalStore:
    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True, clock: Clock | None = None) -> None:
        self.root = Path(root).absolute()
        self.clock: Clock = clock or SystemClock()
        self.fsync = fsync
        self.root.mkdir(parents=True, exist_ok=True)
        # put_if_match is read-compare-replace; a folder has no CAS, so serialise it per key.
        # This covers one process; several processes on one folder rely on create-only appends.
        self._cas_locks: dict[str, threading.Lock] = {}
        self._cas_guard = threading.Lock()
        self._tmp_counter = 0

    def _path(self, key: str) -> Path:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"bad object key {key!r}")
        return self.root / key

    def _write_temp(self, path: Path, data: bytes) -> tuple[Path, str]:
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._cas_guard:
            self._tmp_counter += 1
            n = self._tmp_counter
        tmp = path.with_name(f"{path.name}{_TMP_MARK}{os.getpid()}-{threading.get_ident()}-{n}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if self.fsync:
                os.fsync(fd)
            etag = _etag(os.fstat(fd))
        finally:
            os.close(fd)
        return tmp, etag

    def _fsync_dir(self, path: Path) -> None:
        if self.fsync:
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _put_if_absent(self, key: str, data: bytes) -> str:
        path = self._path(key)
        tmp, etag = self._write_temp(path, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise PreconditionFailed(key) from None
        finally:
            os.unlink(tmp)
        self._fsync_dir(path)
        return etag

    def _put(self, key: str, data: bytes) -> str:
        path = self._path(key)
        tmp, etag = self._write_temp(path, data)
        os.replace(tmp, path)
        self._fsync_dir(path)
        return etag

    def _put_if_match(self, key: str, data: bytes, etag: str) -> str:
        with self._cas_guard:
            lock = self._cas_locks.setdefault(key, threading.Lock())
        with lock:
            current = self._get(key).etag
            if current != etag.strip('"'):
                raise PreconditionFailed(key)
            return self._put(key, data)

    def _get(self, key: str) -> Blob:
        try:
            with open(self._path(key), "rb") as f:
                return Blob(f.read(), _etag(os.fstat(f.fileno())))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(key) from None

    def _get_range(self, key: str, start: int, end: int) -> bytes:
        try:
            with open(self._path(key), "rb") as f:
                f.seek(start)
                return f.read(max(0, end - start))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(key) from None

    def _head(self, key: str) -> ObjectInfo:
        try:
            st = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        if not stat.S_ISREG(st.st_mode):
            raise ObjectNotFound(key)
        return ObjectInfo(key, st.st_size, _etag(st))

    def _list(self, prefix: str, start_after: str | None) -> list[ObjectInfo]:
        # Keys are '/'-separated paths; walk the folder that holds the prefix and filter.
        base, _, _ = prefix.rpartition("/")
        top = self.root / base if base else self.root
        out: list[ObjectInfo] = []
        if not top.is_dir():
            return out
        for dirpath, dirnames, filenames in os.walk(top):
            rel = os.path.relpath(dirpath, self.root)
            rel = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            dirnames[:] = [
                d for d in dirnames if (rel + d + "/").startswith(prefix) or prefix.startswith(rel + d + "/")
            ]
            for name in filenames:
                key = rel + name
                if _TMP_MARK in name or not key.startswith(prefix):
                    continue
                if start_after is not None and key <= start_after:
                    continue
                try:
                    st = os.stat(os.path.join(dirpath, name))
                except FileNotFoundError:
                    continue
                out.append(ObjectInfo(key, st.st_size, _etag(st)))
        out.sort(key=lambda o: o.key)
        return out

    def _delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            if e.errno not in (errno.EISDIR, errno.ENOTDIR):
                raise

    async def put_if_absent(self, key: str, data: bytes) -> str:
        metrics.STORE_REQUESTS.labels("put").inc()
        return await anyio.to_thread.run_sync(self._put_if_absent, key, data)

    async def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        metrics.STORE_REQUESTS.labels("put").inc()
        return await anyio.to_thread.run_sync(self._put_if_match, key, data, etag)

    async def put(self, key: str, data: bytes) -> str:
        metrics.STORE_REQUESTS.labels("put").inc()
        return await anyio.to_thread.run_sync(self._put, key, data)

    async def get(self, key: str) -> Blob:
        metrics.STORE_REQUESTS.labels("get").inc()
        # Most gets are freshness probes of the next log entry, which does not exist yet: a stat
        # on the event loop (microseconds) answers those without a hop to a worker thread.
        if not os.path.exists(self._path(key)):
            raise ObjectNotFound(key)
        return await anyio.to_thread.run_sync(self._get, key)

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        metrics.STORE_REQUESTS.labels("get").inc()
        return await anyio.to_thread.run_sync(self._get_range, key, start, end)

    async def head(self, key: str) -> ObjectInfo:
        metrics.STORE_REQUESTS.labels("head").inc()
        # A stat, not a read: HEAD is the freshness probe on every read, so it must be cheap.
        return await anyio.to_thread.run_sync(self._head, key)

    async def list(self, prefix: str, start_after: str | None = None) -> AsyncIterator[ObjectInfo]:
        metrics.STORE_REQUESTS.labels("list").inc()
        for info in await anyio.to_thread.run_sync(self._list, prefix, start_after):
            yield info

    async def delete(self, key: str) -> None:
        metrics.STORE_REQUESTS.labels("delete").inc()
        await anyio.to_thread.run_sync(self._delete, key)

    def lance_location(self, prefix: str) -> LanceLocation:
        return LanceLocation(str(self.root / prefix.rstrip("/")))

    async def close(self) -> None:
        return None
