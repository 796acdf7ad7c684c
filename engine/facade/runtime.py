"""The indexes this process has open (``LiveIndex``: appender, tail, snapshot) and their materializers.

An index is opened once per process, on first use or at start, and its materializer runs as a
task of the engine's task group (when ``settings.run_materializers``). Indexes other processes
create are followed through the catalog log, so every materializing process is a candidate for
every index's lease, requests or not.
"""

from __future__ import annotations

import contextlib

import anyio
from anyio.abc import TaskGroup

from engine.catalog import Catalog, Index
from engine.clock import Clock, IdSource
from engine.errors import CorruptEvent, StoreUnavailable, VecledgerError
from engine.materialize.schedule import keep_folding
from engine.serving.live_index import LiveIndex
from engine.settings import Settings
from engine.store import ObjectStore

RELEASE_SECONDS = 5  # at close: how long releasing this process's leases may take


class IndexRuntime:
    def __init__(self, store: ObjectStore, settings: Settings, clock: Clock, ids: IdSource, holder: str) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.ids = ids
        self.holder = holder
        self.failed: dict[str, BaseException] = {}  # index id -> why its materializer stopped
        self._live: dict[str, LiveIndex] = {}
        self._opening = anyio.Lock()
        self._tg: TaskGroup | None = None
        self._scopes: dict[str, anyio.CancelScope] = {}

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
        live = self._live.get(index.id)
        if live is not None:
            return live
        async with self._opening:
            if index.id not in self._live:
                live = LiveIndex(self.store, index, self.settings, self.clock, self.ids, self.holder)
                await live.open()
                self._live[index.id] = live
                if self.settings.run_materializers and self._tg is not None:
                    self._tg.start_soon(self._materialize, live)
        return self._live[index.id]

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
        """The index was deleted: stop its materializer and drop what this process holds for it."""
        scope = self._scopes.pop(index_id, None)
        if scope is not None:
            scope.cancel()
        live = self._live.pop(index_id, None)
        if live is not None:
            live.close()

    async def release_all(self) -> None:
        """Release the leases of this process's folds, including those run on demand (tools,
        tests), so that the next process folds at once rather than after the lease expires."""
        with anyio.move_on_after(RELEASE_SECONDS, shield=True), contextlib.suppress(VecledgerError):
            for live in self._live.values():
                await live.materializer.release()

    async def follow(self, catalog: Catalog) -> None:
        """Open indexes other processes create, forget those they delete, and adopt their changes
        (a text search configuration to backfill), forever."""
        while True:
            await self.clock.sleep(self.settings.materialize_idle_interval)
            try:
                state = await catalog.refresh()
                await catalog.snapshot_if_due(self.settings.catalog_snapshot_every)
            except StoreUnavailable:
                continue
            for index in list(state.indexes.values()):
                live = self._live.get(index.id)
                if live is None:
                    await self.open(index)
                elif live.index != index:
                    live.adopt(index)
            for index_id in [i for i in self._live if i not in state.indexes]:
                self.forget(index_id)
