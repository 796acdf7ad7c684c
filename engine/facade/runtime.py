"""The indexes this process has open (``LiveIndex``: appender, tail, snapshot) and their materializers.

An index is opened once per process, on first use or when its activity mark says it has writes to
fold (``engine/materialize/activity.py``), and its materializer runs as a task of the engine's
task group (when ``settings.run_materializers``), parked while it has nothing to do. Nothing is
opened at start but the marked indexes, and an idle process costs two requests per
``materialize_idle_interval`` (a catalog probe, a listing of the marks), whatever the number of
indexes: every materializing process is a candidate for the lease of every index with work.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import anyio
from anyio.abc import TaskGroup

from engine.catalog import Catalog, Index
from engine.clock import Clock, IdSource
from engine.dataset import LanceMirror
from engine.errors import CorruptEvent, StoreUnavailable, VecledgerError
from engine.materialize import activity
from engine.materialize.schedule import keep_folding
from engine.serving.live_index import LiveIndex
from engine.settings import Settings
from engine.store import ObjectStore

RELEASE_SECONDS = 5  # at close: how long releasing this process's leases may take


class IndexRuntime:
    def __init__(
        self,
        store: ObjectStore,
        settings: Settings,
        clock: Clock,
        ids: IdSource,
        holder: str,
        on_record_changed: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.on_record_changed = on_record_changed  # an index's log marked its catalog record changed
        self.mirror: LanceMirror | None = None  # the local copies of S3 roots' Lance files (Engine.open)
        self.settings = settings
        self.clock = clock
        self.ids = ids
        self.holder = holder
        self.failed: dict[str, BaseException] = {}  # index id -> why its materializer stopped
        self._live: dict[str, LiveIndex] = {}
        self._opening = anyio.Lock()
        self._tg: TaskGroup | None = None
        self._scopes: dict[str, anyio.CancelScope] = {}
        self._used: dict[str, float] = {}  # index id -> monotonic time of its last open()
        # index id -> its Lance caches' bytes, measured when it opens and at every poll (~40 us an
        # index with a loaded vector index: too much to sum over every open index at each open).
        self._cached: dict[str, int] = {}

    def start(self, tg: TaskGroup) -> None:
        """Run materializers (of indexes opened from now on) in ``tg``."""
        self._tg = tg

    def stop(self) -> None:
        self._tg = None

    def open_indexes(self) -> dict[str, LiveIndex]:
        """The indexes open in this process, by id (a copy: scraping them opens none)."""
        return dict(self._live)

    def get(self, index_id: str) -> LiveIndex | None:
        return self._live.get(index_id)

    async def open(self, index: Index) -> LiveIndex:
        self._used[index.id] = self.clock.monotonic()
        live = self._live.get(index.id)
        if live is not None:
            self._live[index.id] = self._live.pop(index.id)  # most recently used last
            return live
        async with self._opening:
            if index.id not in self._live:
                self.close_cold(over=self.settings.max_open_indexes - 1)
                live = LiveIndex(
                    self.store,
                    index,
                    self.settings,
                    self.clock,
                    self.ids,
                    self.holder,
                    self.mirror,
                    on_record_changed=self.on_record_changed,
                )
                await live.open()
                self._live[index.id] = live
                self._cached[index.id] = live.cache_bytes()
                if self.settings.run_materializers and self._tg is not None:
                    self._tg.start_soon(self._materialize, live)
        return self._live[index.id]

    def _idle(self, live: LiveIndex) -> bool:
        """Nothing of it runs: a parked materializer, or none in this process."""
        return live.materializer.parked or not (self.settings.run_materializers and self._tg is not None)

    def close_cold(self, over: int | None = None) -> int:
        """Close idle indexes unused for ``index_close_after`` seconds, and the least recently used
        idle ones past ``over`` open indexes or while the open indexes' Lance caches hold more than
        ``open_cache_bytes``. A request still holding a closed one finishes with it (it reads its
        log and snapshot as before); the next opens the index again."""
        now, closed = self.clock.monotonic(), 0
        total = sum(self._cached.values())
        for index_id, live in list(self._live.items()):  # least recently used first
            old = now - self._used.get(index_id, now) >= self.settings.index_close_after
            crowded = over is not None and len(self._live) > over
            heavy = total > self.settings.open_cache_bytes
            if (old or crowded or heavy) and self._idle(live):
                total -= self._cached.get(index_id, 0)
                self.forget(index_id)
                closed += 1
        return closed

    async def _materialize(self, live: LiveIndex) -> None:
        with anyio.CancelScope() as scope:
            self._scopes[live.index.id] = scope
            try:
                await keep_folding(live.materializer)
            except CorruptEvent as e:
                self.failed[live.index.id] = e
            finally:
                with anyio.CancelScope(shield=True), contextlib.suppress(VecledgerError):
                    await live.materializer.release()  # let another process take over at once

    def forget(self, index_id: str) -> None:
        """Stop the index's materializer and drop what this process holds for it (the index was
        deleted, or is closed when cold)."""
        scope = self._scopes.pop(index_id, None)
        if scope is not None:
            scope.cancel()
        live = self._live.pop(index_id, None)
        self._used.pop(index_id, None)
        self._cached.pop(index_id, None)
        if live is not None:
            live.close()

    async def release_all(self) -> None:
        """Release the leases of this process's folds, including those run on demand (tools,
        tests), so that the next process folds at once rather than after the lease expires."""
        with anyio.move_on_after(RELEASE_SECONDS, shield=True), contextlib.suppress(VecledgerError):
            for live in self._live.values():
                await live.materializer.release()

    async def follow(self, catalog: Catalog) -> None:
        """``poll`` forever."""
        while True:
            await self.clock.sleep(self.settings.materialize_idle_interval)
            with contextlib.suppress(StoreUnavailable):
                await self.poll(catalog)

    async def poll(self, catalog: Catalog) -> None:
        """Adopt other processes' catalog changes for the open indexes (a text search configuration
        to backfill), forget deleted ones, and wake (opening them) the materializers of the
        indexes marked active."""
        state = await catalog.refresh()
        await catalog.snapshot_if_due(self.settings.catalog_snapshot_every)
        self._cached = {index_id: live.cache_bytes() for index_id, live in self._live.items()}
        self.close_cold()
        for index_id, live in list(self._live.items()):
            index = state.indexes.get(index_id)
            if index is None:
                self.forget(index_id)
            elif live.index != index:
                live.adopt(index)
        for bucket_id, index_id in await activity.marked(self.store):
            index = state.indexes.get(index_id)
            if index is not None and index_id not in self.failed:
                (await self.open(index)).materializer.wake()
            elif index_id in state.deleted_indexes:
                await activity.unmark(self.store, bucket_id, index_id)
