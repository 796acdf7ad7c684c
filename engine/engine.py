"""The engine facade: every operation the API needs, over the catalog and the live indexes.

``async with Engine.open(root, settings) as engine:`` opens the store, folds the catalog log, and
starts one materializer per index (when ``settings.run_materializers``). Every mutation takes a
``RequestContext`` whose principal, account, source, request id and dialect land in the event.
The engine knows nothing of dialects: names arrive as (account, bucket name, index name).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import anyio
from anyio.abc import TaskGroup

from engine import validate
from engine.audit import AuditLog
from engine.catalog import Catalog
from engine.catalog_state import Bucket, Index
from engine.clock import Clock, IdSource, RandomIds, SystemClock
from engine.context import RequestContext
from engine.engine_recovery import RecoveryOps
from engine.engine_status import StatusOps
from engine.engine_vectors import VectorOps
from engine.errors import (
    CorruptEvent,
    IndexNotFound,
    PolicyNotFound,
    StoreUnavailable,
    ValidationError,
)
from engine.live_index import LiveIndex
from engine.log import event as ev
from engine.refs import BucketRef, IndexRef
from engine.settings import Settings
from engine.store import ObjectStore, open_store

__all__ = ["BucketRef", "Engine", "IndexRef"]


class Engine(VectorOps, RecoveryOps, StatusOps):
    def __init__(self, store: ObjectStore, settings: Settings, clock: Clock, ids: IdSource) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.ids = ids
        self.catalog = Catalog(store, clock, ids)
        self.audit = AuditLog(store, clock, ids)
        self._live: dict[str, LiveIndex] = {}
        self._opening = anyio.Lock()
        self._tg: TaskGroup | None = None
        self._scopes: dict[str, anyio.CancelScope] = {}
        self.failed_materializers: dict[str, BaseException] = {}
        # Names this process in materializer leases (and in logs when one takes over from another).
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{ids.new_id()[:8]}"

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        root: str,
        settings: Settings | None = None,
        *,
        store: ObjectStore | None = None,
        clock: Clock | None = None,
        ids: IdSource | None = None,
    ) -> AsyncIterator[Engine]:
        settings = settings or Settings()
        store = store or await open_store(root, settings)
        engine = cls(store, settings, clock or SystemClock(), ids or RandomIds())
        try:
            await engine.catalog.refresh()
            async with anyio.create_task_group() as tg:
                engine._tg = tg
                for index in list(engine.catalog.state.indexes.values()):
                    await engine._live_index(index)
                if settings.run_materializers:
                    tg.start_soon(engine._follow_catalog)
                yield engine
                tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The background task group wraps whatever the caller's block raised; hand back the
            # caller's own exception rather than a group of one.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            engine._tg = None
            # Leases taken by folds run on demand (``materialize``: tools, tests) are released too,
            # so that the next process folds at once rather than after the lease expires.
            with anyio.move_on_after(5, shield=True), contextlib.suppress(Exception):
                for live in engine._live.values():
                    await live.materializer.release()
            await store.close()

    # --- index runtime --------------------------------------------------------------------------

    async def _live_index(self, index: Index) -> LiveIndex:
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
                await live.materializer.run()
            except CorruptEvent as e:
                self.failed_materializers[live.index.id] = e
            finally:
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await live.materializer.release()  # let another process take over at once

    async def _follow_catalog(self) -> None:
        """Start folding indexes other processes create, stop for those they delete, and adopt
        their changes (a text search configuration to backfill): every process that materializes
        is a candidate for every index's lease, requests or not."""
        while True:
            await anyio.sleep(self.settings.materialize_idle_interval)
            try:
                state = await self.catalog.refresh()
            except StoreUnavailable:
                continue
            for index in list(state.indexes.values()):
                live = self._live.get(index.id)
                if live is None:
                    await self._live_index(index)
                elif live.index != index:
                    live.adopt(index)
            for index_id in [i for i in self._live if i not in state.indexes]:
                self._forget(index_id)

    def _forget(self, index_id: str) -> None:
        scope = self._scopes.pop(index_id, None)
        if scope is not None:
            scope.cancel()
        live = self._live.pop(index_id, None)
        if live is not None:
            live.close()

    async def live(self, ref: IndexRef) -> LiveIndex:
        index = await self.get_index(ref)
        live = await self._live_index(index)
        if live.index != index:
            live.adopt(index)  # e.g. its text configuration changed, maybe in another process
        return live

    # --- buckets ------------------------------------------------------------------------------

    async def create_bucket(
        self,
        ctx: RequestContext,
        ref: BucketRef,
        *,
        encryption: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
    ) -> Bucket:
        if not ref.name:
            raise ValidationError("bucket name must not be empty", field="vectorBucketName")
        payload = {
            "bucket_id": self.ids.new_id()[:16],
            "name": ref.name,
            "account": ref.account,
            "encryption": encryption,
            "tags": tags or {},
        }
        await self.catalog.submit(ctx, ev.BUCKET_CREATED, payload)
        return self.catalog.state.bucket(ref.account, ref.name)

    async def get_bucket(self, ref: BucketRef) -> Bucket:
        return (await self.catalog.refresh()).bucket(ref.account, ref.name)

    async def list_buckets(self, account: str, prefix: str = "") -> list[Bucket]:
        state = await self.catalog.refresh()
        return [b for b in state.buckets_of(account) if b.name.startswith(prefix)]

    async def delete_bucket(self, ctx: RequestContext, ref: BucketRef) -> None:
        bucket = await self.get_bucket(ref)
        await self.catalog.submit(ctx, ev.BUCKET_DELETED, {"bucket_id": bucket.id})

    async def put_bucket_policy(self, ctx: RequestContext, ref: BucketRef, policy: str) -> None:
        bucket = await self.get_bucket(ref)
        await self.catalog.submit(ctx, ev.BUCKET_POLICY_PUT, {"bucket_id": bucket.id, "policy": policy})

    async def get_bucket_policy(self, ref: BucketRef) -> str:
        bucket = await self.get_bucket(ref)
        if bucket.policy is None:
            raise PolicyNotFound(ref.name)
        return bucket.policy

    async def delete_bucket_policy(self, ctx: RequestContext, ref: BucketRef) -> None:
        bucket = await self.get_bucket(ref)
        await self.catalog.submit(ctx, ev.BUCKET_POLICY_DELETED, {"bucket_id": bucket.id})

    async def put_default_index_mode(self, ctx: RequestContext, ref: BucketRef, mode: str) -> None:
        bucket = await self.get_bucket(ref)
        await self.catalog.submit(ctx, ev.BUCKET_DEFAULT_INDEX_MODE, {"bucket_id": bucket.id, "mode": mode})

    # --- tags (on a bucket, or on an index when ``index`` is given) ------------------------------

    async def _tag_target(self, ref: BucketRef, index: str | None) -> tuple[str, str]:
        if index is None:
            return "bucket", (await self.get_bucket(ref)).id
        return "index", (await self.get_index(IndexRef(ref.account, ref.name, index))).id

    async def tag(
        self,
        ctx: RequestContext,
        ref: BucketRef,
        index: str | None,
        *,
        set: dict[str, str] | None = None,
        remove: list[str] | None = None,
    ) -> None:
        kind, id_ = await self._tag_target(ref, index)
        payload = {"resource": kind, "id": id_, "set": set or {}, "remove": remove or []}
        await self.catalog.submit(ctx, ev.TAGS_CHANGED, payload)

    async def tags(self, ref: BucketRef, index: str | None) -> dict[str, str]:
        if index is None:
            return dict((await self.get_bucket(ref)).tags)
        return dict((await self.get_index(IndexRef(ref.account, ref.name, index))).tags)

    # --- indexes ------------------------------------------------------------------------------

    async def create_index(
        self,
        ctx: RequestContext,
        ref: IndexRef,
        *,
        dimension: int,
        metric: str,
        non_filterable_keys: list[str] | None = None,
        data_type: str = "float32",
        encryption: dict[str, Any] | None = None,
        text_search: list[dict[str, Any]] | None = None,
        tags: dict[str, str] | None = None,
    ) -> Index:
        if not ref.name:
            raise ValidationError("index name must not be empty", field="indexName")
        if data_type != "float32":
            raise ValidationError("dataType must be float32", field="dataType")
        nfk = list(non_filterable_keys or [])
        if len(set(nfk)) != len(nfk) or not all(isinstance(k, str) and k for k in nfk):
            raise ValidationError("nonFilterableMetadataKeys must be distinct non-empty strings")
        bucket = await self.get_bucket(ref.bucket_ref)
        payload = {
            "bucket_id": bucket.id,
            "index_id": self.ids.new_id()[:16],
            "name": ref.name,
            "dimension": validate.dimension(dimension, self.settings.max_dimension),
            "metric": validate.metric(metric),
            "data_type": data_type,
            "non_filterable_keys": nfk,
            "encryption": encryption,
            "text_search": text_search or [],
            "tags": tags or {},
        }
        await self.catalog.submit(ctx, ev.INDEX_CREATED, payload)
        index = self.catalog.state.index(bucket, ref.name)
        await self._live_index(index)
        return index

    async def get_index(self, ref: IndexRef) -> Index:
        state = await self.catalog.refresh()
        return state.index(state.bucket(ref.account, ref.bucket), ref.name)

    async def list_indexes(self, ref: BucketRef, prefix: str = "") -> list[Index]:
        state = await self.catalog.refresh()
        bucket = state.bucket(ref.account, ref.name)
        return [i for i in state.indexes_of(bucket.id) if i.name.startswith(prefix)]

    async def delete_index(self, ctx: RequestContext, ref: IndexRef) -> None:
        index = await self.get_index(ref)
        await self.catalog.submit(ctx, ev.INDEX_DELETED, {"bucket_id": index.bucket_id, "index_id": index.id})
        self._forget(index.id)

    async def update_index_mode(self, ctx: RequestContext, ref: IndexRef, mode: str) -> None:
        index = await self.get_index(ref)
        await self.catalog.submit(ctx, ev.INDEX_MODE_CHANGED, {"index_id": index.id, "mode": mode})

    async def update_text_search(self, ctx: RequestContext, ref: IndexRef, text_search: list[dict[str, Any]]) -> Index:
        """Replace the index's text search configurations; the materializer backfills the rows
        already folded (GetIndex says BUILDING until then; queries answer exactly meanwhile)."""
        index = await self.get_index(ref)
        await self.catalog.submit(
            ctx, ev.INDEX_METADATA_CONFIGURATION, {"index_id": index.id, "text_search": text_search}
        )
        live = await self.live(ref)
        await live.text_changed(ctx)
        return live.index

    async def text_search_status(self, ref: IndexRef) -> dict[tuple[str, str | None], str]:
        """BUILDING or ACTIVE per (metadataKey, language) of the index's text configuration."""
        live = await self.live(ref)
        await live.refresh()
        return live.text_status()

    def index_by_id(self, index_id: str) -> Index:
        index = self.catalog.state.indexes.get(index_id)
        if index is None:
            raise IndexNotFound(index_id)
        return index
