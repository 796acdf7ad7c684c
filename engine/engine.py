"""The engine facade: every operation the API needs, over the catalog and the live indexes.

``async with Engine.open(root, settings) as engine:`` opens the store, folds the catalog log, and
starts one materializer per index (when ``settings.run_materializers``). Every mutation takes a
``RequestContext`` whose principal, account, source, request id and dialect land in the event.
The engine knows nothing of dialects: names arrive as (account, bucket name, index name).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import anyio
from anyio.abc import TaskGroup

from engine import audit_query, keys, recovery, validate
from engine.audit import AuditLog
from engine.catalog import Catalog
from engine.catalog_state import Bucket, Index
from engine.clock import Clock, IdSource, RandomIds, SystemClock
from engine.context import RequestContext
from engine.errors import (
    CorruptEvent,
    IndexAlreadyExists,
    IndexNotFound,
    PartialBatch,
    PolicyNotFound,
    StoreUnavailable,
    Throttled,
    ValidationError,
)
from engine.filters import compile_filter
from engine.lance_dataset import Hit
from engine.live_index import ListPage, LiveIndex, VectorRecord
from engine.log import event as ev
from engine.settings import Settings
from engine.store import ObjectStore, open_store


@dataclass(frozen=True)
class BucketRef:
    account: str
    name: str


@dataclass(frozen=True)
class IndexRef:
    account: str
    bucket: str
    name: str

    @property
    def bucket_ref(self) -> BucketRef:
        return BucketRef(self.account, self.bucket)


class Engine:
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
            await store.close()

    # --- index runtime --------------------------------------------------------------------------

    async def _live_index(self, index: Index) -> LiveIndex:
        live = self._live.get(index.id)
        if live is not None:
            return live
        async with self._opening:
            if index.id not in self._live:
                live = LiveIndex(self.store, index, self.settings, self.clock, self.ids)
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

    def _forget(self, index_id: str) -> None:
        scope = self._scopes.pop(index_id, None)
        if scope is not None:
            scope.cancel()
        self._live.pop(index_id, None)

    async def live(self, ref: IndexRef) -> LiveIndex:
        return await self._live_index(await self.get_index(ref))

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
        index = await self.get_index(ref)
        await self.catalog.submit(
            ctx, ev.INDEX_METADATA_CONFIGURATION, {"index_id": index.id, "text_search": text_search}
        )
        return await self.get_index(ref)

    # --- vectors ------------------------------------------------------------------------------

    async def _admit(self, ctx: RequestContext, live: LiveIndex, operation: str, vectors: int) -> None:
        quota = live.index.quota or {}
        try:
            live.quota.admit(
                quota.get("requests_per_second", self.settings.write_requests_per_second),
                quota.get("vectors_per_second", self.settings.write_vectors_per_second),
                vectors,
            )
        except Throttled as e:
            await self.audit.try_record(ctx, ev.REQUEST_THROTTLED, operation, self._resource(live.index), str(e))
            raise

    @staticmethod
    def _resource(index: Index) -> str:
        return f"{index.account}/{index.bucket_name}/{index.name}"

    async def put_vectors(
        self, ctx: RequestContext, ref: IndexRef, keys: list[str], vectors: Any, metadata: list[Any]
    ) -> list[int]:
        """Append the vectors; returns the seqs of the event objects that hold them.

        A batch over the event size is appended as chunk events; if one fails, the client is told
        (``PartialBatch``, a 5xx), the chunks written stay, and the audit log says which landed.
        """
        live = await self.live(ref)
        batch = validate.batch(live.index, keys, vectors, metadata)
        await self._admit(ctx, live, "PutVectors", len(batch))
        try:
            return await live.put(ctx, batch)
        except StoreUnavailable as e:
            landed = e.landed if isinstance(e, PartialBatch) else []
            chunks = e.chunks if isinstance(e, PartialBatch) else 1
            await self.audit.try_record(
                ctx,
                ev.REQUEST_FAILED,
                "PutVectors",
                self._resource(live.index),
                str(e),
                landed_seqs=landed,
                chunks=chunks,
                vectors=len(batch),
            )
            raise

    async def delete_vectors(self, ctx: RequestContext, ref: IndexRef, keys: list[str]) -> int:
        live = await self.live(ref)
        checked = validate.keys(keys)
        await self._admit(ctx, live, "DeleteVectors", len(checked))
        try:
            return await live.delete(ctx, checked)
        except StoreUnavailable as e:
            await self.audit.try_record(ctx, ev.REQUEST_FAILED, "DeleteVectors", self._resource(live.index), str(e))
            raise

    async def set_index_quota(
        self, ctx: RequestContext, ref: IndexRef, requests_per_second: float | None, vectors_per_second: float | None
    ) -> Index:
        """Set (or with None, lift) an index's write quotas; a catalog event like any other."""
        for name, v in (("requestsPerSecond", requests_per_second), ("vectorsPerSecond", vectors_per_second)):
            if v is not None and not (isinstance(v, int | float) and v > 0):
                raise ValidationError(f"{name} must be a positive number", field=name)
        index = await self.get_index(ref)
        payload = {
            "index_id": index.id,
            "requests_per_second": requests_per_second,
            "vectors_per_second": vectors_per_second,
        }
        await self.catalog.submit(ctx, ev.INDEX_QUOTA, payload)
        updated = await self.get_index(ref)
        live = self._live.get(updated.id)
        if live is not None:
            live.index = updated
        return updated

    # --- recovery -----------------------------------------------------------------------------

    async def find_index(self, ref: IndexRef) -> Index:
        """A live index, or the most recent deleted one of that name (whose log remains)."""
        state = await self.catalog.refresh()
        return state.find_index(ref.account, ref.bucket, ref.name)

    async def restore_index(
        self,
        ctx: RequestContext,
        source: IndexRef,
        into: IndexRef,
        *,
        to_seq: int | None = None,
        to_time: float | None = None,
        source_id: str | None = None,
        progress: recovery.Progress | None = None,
    ) -> Index:
        """Rebuild ``source`` as it stood at a seq or a time into a new index ``into``.

        By time, the source is the index that bore the name then (it may since have been deleted,
        or deleted and re-created); by seq, the live index of that name, else the last deleted one,
        or exactly ``source_id``.
        """
        if (to_seq is None) == (to_time is None):
            raise ValidationError("give exactly one of a seq and a time to restore to", field="to")
        state = await self.catalog.refresh()
        if source_id is not None:
            found = state.indexes.get(source_id) or state.deleted_indexes.get(source_id)
            if found is None:
                raise IndexNotFound(source_id)
            src = found
        elif to_time is not None:
            src = state.find_index_at(source.account, source.bucket, source.name, to_time)
        else:
            src = state.find_index(source.account, source.bucket, source.name)
        prefix = keys.index_log(src.bucket_id, src.id)
        tail = await recovery.last_seq(self.store, src)
        if to_seq is not None:
            upto = recovery.check_upto(to_seq, tail, f"seq {to_seq}")
        else:
            assert to_time is not None
            upto = recovery.check_upto(await recovery.seq_at_time(self.store, prefix, to_time), tail, "that time")
        state = await self.catalog.refresh()
        bucket = state.bucket(into.account, into.bucket)
        if (bucket.id, into.name) in state.index_names:
            raise IndexAlreadyExists(f"index {into.name!r} already exists in {bucket.name!r}")
        target = replace(
            src,
            id=self.ids.new_id()[:16],
            bucket_id=bucket.id,
            bucket_name=bucket.name,
            account=bucket.account,
            name=into.name,
        )
        await recovery.build_restored(
            self.store, self.settings, ctx, src, upto, target, self.ids.new_id(), self.clock.now(), progress
        )
        restored_from = {
            "bucket": src.bucket_name,
            "index": src.name,
            "bucket_id": src.bucket_id,
            "index_id": src.id,
            "seq": upto,
        }
        payload = {
            "bucket_id": bucket.id,
            "index_id": target.id,
            "name": into.name,
            "dimension": src.dimension,
            "metric": src.metric,
            "data_type": src.data_type,
            "non_filterable_keys": list(src.non_filterable_keys),
            "encryption": src.encryption,
            "text_search": list(src.text_search),
            "tags": src.tags,
            "restored_from": restored_from,
        }
        await self.catalog.submit(ctx, ev.INDEX_CREATED, payload)
        index = self.catalog.state.index(bucket, into.name)
        await self._live_index(index)
        return index

    async def audit_records(self, q: audit_query.AuditQuery) -> list[audit_query.AuditRecord]:
        """Every mutation and refused request matching ``q``, oldest first (see docs/audit.md)."""
        return await audit_query.query(self.store, await self.catalog.refresh(), q)

    async def replay_check(self, ref: IndexRef) -> recovery.CheckReport:
        """Fold the index again from seq 0 into a scratch dataset and compare with the live one."""
        live = await self.live(ref)
        await live.materializer.run_to_end()
        return await recovery.replay_check(self.store, self.settings, live.index, self.ids.new_id()[:12])

    async def get_vectors(
        self, ref: IndexRef, keys: list[str], *, return_data: bool = False, return_metadata: bool = False
    ) -> list[VectorRecord]:
        live = await self.live(ref)
        return await live.get(validate.keys(keys), return_data, return_metadata)

    async def list_vectors(
        self,
        ref: IndexRef,
        *,
        limit: int = 500,
        token: str | None = None,
        segment_count: int = 1,
        segment_index: int = 0,
        return_data: bool = False,
        return_metadata: bool = False,
        filter: Any = None,
    ) -> ListPage:
        """A page of vectors in key order; ``filter`` (OSS's ListVectors has one) keeps matching rows."""
        if limit < 1:
            raise ValidationError("maxResults must be at least 1", field="maxResults")
        if segment_count < 1 or not 0 <= segment_index < segment_count:
            raise ValidationError("segmentIndex must be below segmentCount", field="segmentIndex")
        live = await self.live(ref)
        flt = None if filter is None else compile_filter(filter, live.index.non_filterable_keys)
        return await live.list(limit, token, segment_count, segment_index, return_data, return_metadata, flt)

    async def query_vectors(self, ref: IndexRef, vector: Any, top_k: int, filter: Any = None) -> list[Hit]:
        """The ``top_k`` nearest vectors (fewer if fewer match the filter), nearest first."""
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise ValidationError("topK must be a positive integer", field="topK")
        live = await self.live(ref)
        q = validate.vector(live.index, vector)
        flt = None if filter is None else compile_filter(filter, live.index.non_filterable_keys)
        return await live.query(q, top_k, flt)

    async def materialize(self, ref: IndexRef) -> int:
        """Fold everything logged so far for one index now (tools and tests); returns objects folded."""
        live = await self.live(ref)
        return await live.materializer.run_to_end()

    def index_by_id(self, index_id: str) -> Index:
        index = self.catalog.state.indexes.get(index_id)
        if index is None:
            raise IndexNotFound(index_id)
        return index
