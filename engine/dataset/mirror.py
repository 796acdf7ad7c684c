"""Local copies of the Lance files served indexes read, for roots on S3: the cache tier.

Lance reads a dataset on S3 with a ranged GET per column page it needs: a warm query of a 30k x 128
index cost ~20 S3 requests (the refine step's vectors, the hits' keys, index pages outside the
session's cache), ~90 ms through moto and hundreds on real S3. Every Lance file but the manifest
is immutable and named once (``data/<uuid>.lance``, ``_indices/<uuid>/``, ``_deletions/<fragment>-
<version>-<id>``), and a version's manifest never changes either, so a copy never needs
revalidation: each time an index's reader is renewed, one LIST of its dataset finds the newest
manifest, the manifest says which files that version reads, and only those not here yet are
fetched. Queries then read local files; the only per-query store request left is the log's
freshness probe. Writes still go to S3 (the materializer's own handle): S3 stays the truth.

Bounded by ``budget`` bytes: an index that does not fit is served from S3 as before, and copies of
indexes closed for ``grace`` seconds are removed, least recently synced first, to make room. Files the newest
version no longer reads are removed at the sync after next (a reader of the version before may
still be finishing a query with them).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import anyio

from engine.dataset.schema import DatasetNotFound, open_dataset
from engine.store import LanceLocation, ObjectStore

log = logging.getLogger("vecledger.mirror")

_U64 = 2**64 - 1
# Lance's layout inside a dataset (not vecledger's object keys, which engine/keys.py builds).
LANCE_DATA, LANCE_DELETIONS, LANCE_INDICES = "data", "_deletions", "_indices"
CHUNK = 16 * 1024 * 1024  # larger files are fetched in ranges of this size (bounded memory)
PARALLEL = 8
RELEASE_GRACE = 30.0


def manifest_version(name: str) -> int | None:
    """The version a ``_versions/*.manifest`` file holds: Lance's V2 naming stores ``u64::MAX -
    version`` (so that the newest lists first), V1 the version itself."""
    stem = name.removeprefix("_versions/").removesuffix(".manifest")
    if not name.startswith("_versions/") or not name.endswith(".manifest") or not stem.isdigit():
        return None
    n = int(stem)
    return _U64 - n if n > _U64 // 2 else n


class LanceMirror:
    """One process's copies, under ``folder`` (one folder per dataset prefix)."""

    def __init__(self, store: ObjectStore, folder: Path, budget: int) -> None:
        self.store = store
        self.folder = folder
        self.budget = budget
        self._bytes: dict[str, int] = {}  # prefix -> bytes of its copy
        self._synced: dict[str, float] = {}  # prefix -> monotonic time of its last sync
        self._open: set[str] = set()
        self._previous: dict[str, set[str]] = {}  # prefix -> files the version before read
        self._locks: dict[str, anyio.Lock] = {}
        self._released: dict[str, float] = {}  # prefix -> monotonic time its index was closed
        self.fetched_bytes = 0
        # A closed index's copy is kept this long before it may be removed: a request that took
        # the index before it closed may still be reading it.
        self.grace = RELEASE_GRACE

    @classmethod
    async def open(cls, store: ObjectStore, folder: Path, budget: int) -> LanceMirror:
        """A mirror in ``folder``, counting the copies a past process left there (removed first
        when room is needed, unless an index opened again syncs them)."""
        mirror = cls(store, folder, budget)

        def scan() -> dict[str, int]:
            folder.mkdir(parents=True, exist_ok=True)
            found = {}
            for versions in folder.rglob("_versions"):
                here = versions.parent
                size = sum(p.stat().st_size for p in here.rglob("*") if p.is_file())
                found[here.relative_to(folder).as_posix()] = size
            return found

        for prefix, size in (await anyio.to_thread.run_sync(scan)).items():
            mirror._bytes[prefix], mirror._synced[prefix] = size, 0.0
        return mirror

    def _here(self, prefix: str) -> Path:
        return self.folder / prefix

    def used_bytes(self) -> int:
        return sum(self._bytes.values())

    async def sync(self, prefix: str) -> tuple[LanceLocation, int] | None:
        """A local location holding the newest version of the dataset under ``prefix``, and that
        version; None when the dataset does not exist yet or does not fit the budget (read it
        from the store)."""
        lock = self._locks.setdefault(prefix, anyio.Lock())
        self._open.add(prefix)  # from now on: no other sync may remove this copy to make room
        async with lock:
            listing = {o.key[len(prefix) + 1 :]: o.size async for o in self.store.list(prefix + "/")}
            versions = {v: name for name in listing if (v := manifest_version(name)) is not None}
            if not versions:
                return None
            version = max(versions)
            here = self._here(prefix)
            manifest = versions[version]
            if await anyio.to_thread.run_sync(_missing, here, [manifest], listing):
                await self._fetch(prefix, manifest, listing[manifest])
            wanted = await anyio.to_thread.run_sync(_referenced, here, version, manifest, listing)
            if wanted is None:
                return None
            size = sum(listing[n] for n in wanted)
            if size > self.budget:
                log.info("%s: %d MB is over the cache's budget; served from the store", prefix, size >> 20)
                return None
            await self._make_room(prefix, size)
            missing = await anyio.to_thread.run_sync(_missing, here, sorted(wanted), listing)
            limit = anyio.CapacityLimiter(PARALLEL)

            async def one(name: str) -> None:
                async with limit:
                    await self._fetch(prefix, name, listing[name])

            async with anyio.create_task_group() as tg:
                for name in missing:
                    tg.start_soon(one, name)
            keep = wanted | self._previous.get(prefix, set())
            self._bytes[prefix] = await anyio.to_thread.run_sync(_prune, here, keep)
            self._previous[prefix] = wanted
            self._synced[prefix] = self.store.clock.monotonic()
            return LanceLocation(str(here)), version

    def release(self, prefix: str) -> None:
        """The index is closed: its copy may be removed to make room for others."""
        self._open.discard(prefix)
        self._released[prefix] = self.store.clock.monotonic()

    async def _make_room(self, prefix: str, size: int) -> None:
        now = self.store.clock.monotonic()

        def removable(p: str) -> bool:
            closed_at = self._released.get(p)
            return p != prefix and p not in self._open and (closed_at is None or now - closed_at >= self.grace)

        others = sorted((t, p) for p, t in self._synced.items() if removable(p))
        while others and self.used_bytes() - self._bytes.get(prefix, 0) + size > self.budget:
            _, victim = others.pop(0)
            await anyio.to_thread.run_sync(shutil.rmtree, self._here(victim), True)
            for table in (self._bytes, self._synced, self._previous, self._released):
                table.pop(victim, None)

    async def _fetch(self, prefix: str, name: str, size: int) -> None:
        """Copy one object here, whole or not at all (written aside, then renamed)."""
        target = self._here(prefix) / name
        key = f"{prefix}/{name}"
        if size <= CHUNK:
            parts = [(await self.store.get(key)).data]
        else:
            parts = [await self.store.get_range(key, at, min(size, at + CHUNK)) for at in range(0, size, CHUNK)]
        await anyio.to_thread.run_sync(_write, target, parts)
        self.fetched_bytes += size


def _missing(here: Path, names: list[str], listing: dict[str, int]) -> list[str]:
    """The names not copied here yet (or cut short: a copy is complete when its size is)."""

    def present(path: Path, size: int) -> bool:
        try:
            return path.stat().st_size == size
        except FileNotFoundError:
            return False

    return [n for n in names if not present(here / n, listing[n])]


def _write(target: Path, parts: list[bytes]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    aside = target.with_name(f".{target.name}.{os.getpid()}.part")
    with aside.open("wb") as f:
        for part in parts:
            f.write(part)
    aside.replace(target)


def _referenced(here: Path, version: int, manifest: str, listing: dict[str, int]) -> set[str] | None:
    """The files (relative names, as listed) one version of the local copy reads; the manifest is
    already here. Lance opens a version from its manifest alone and reads files as queries need
    them, so it can say what the version references before any of it is fetched."""
    try:
        ds: Any = open_dataset(LanceLocation(str(here)), version)
    except DatasetNotFound:
        return None
    fragments = ds.get_fragments()
    wanted = {manifest}
    wanted |= {f"{LANCE_DATA}/{df.path}" for f in fragments for df in f.data_files()}
    live = tuple(f"{LANCE_DELETIONS}/{f.fragment_id}-" for f in fragments)
    indexes = tuple(f"{LANCE_INDICES}/{i['uuid']}/" for i in ds.list_indices())
    wanted |= {n for n in listing if (live and n.startswith(live)) or (indexes and n.startswith(indexes))}
    return {n for n in wanted if n in listing}


def _prune(here: Path, keep: set[str]) -> int:
    """Remove files no kept version reads (and partial downloads); the bytes left."""
    total = 0
    for path in [p for p in here.rglob("*") if p.is_file()]:
        name = path.relative_to(here).as_posix()
        if name in keep:
            total += path.stat().st_size
        else:
            path.unlink(missing_ok=True)
    return total
