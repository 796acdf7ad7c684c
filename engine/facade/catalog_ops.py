"""Catalog operations of the engine facade: buckets, their policies and tags, indexes.

Each is one catalog event (``Catalog.submit`` checks it against the folded state first, so an
invalid request never reaches the log); reads fold the catalog log up to its end first, so they
see every write any process acknowledged.
"""

from __future__ import annotations

from typing import Any

from engine import keys
from engine.catalog import Bucket, Catalog, Index
from engine.catalog.state import ENHANCED_ONLY_SINCE
from engine.clock import IdSource
from engine.context import RequestContext
from engine.errors import IndexNotFound, PolicyNotFound, ValidationError
from engine.facade.runtime import IndexRuntime
from engine.ids import short_id
from engine.log import Appender
from engine.log import event as ev
from engine.query import validate
from engine.refs import BucketRef, IndexRef
from engine.serving.live_index import LiveIndex, record_changed_event
from engine.settings import Settings


def index_created(index_id: str, bucket: Bucket, name: str, like: Index | None, **fields: Any) -> dict[str, Any]:
    """The payload of an ``index.created`` event: ``fields``, or those of ``like`` (a restore)."""
    if like is not None:
        fields = (
            {
                "dimension": like.dimension,
                "metric": like.metric,
                "data_type": like.data_type,
                "non_filterable_keys": list(like.non_filterable_keys),
                "encryption": like.encryption,
                "text_search": list(like.text_search),
                "tags": like.tags,
            }
            | ({"schema": like.schema} if like.schema else {})
            | fields
        )
    return {"bucket_id": bucket.id, "index_id": index_id, "name": name} | fields


def _check_mode(bucket: Bucket, mode: str, field: str) -> None:
    if mode == "CLASSIC" and not bucket.classic_allowed:
        raise ValidationError(
            "You can set the mode to CLASSIC only for a vector index in a vector bucket created before "
            "September 30, 2026.",
            field=field,
        )


class CatalogOps:
    def __init__(self, catalog: Catalog, runtime: IndexRuntime, settings: Settings, ids: IdSource) -> None:
        self.catalog = catalog
        self.runtime = runtime
        self.settings = settings
        self.ids = ids

    async def live(self, ref: IndexRef) -> LiveIndex:
        """The open index behind ``ref``, with this process's copy of its catalog record current."""
        index = await self.get_index(ref)
        live = await self.runtime.open(index)
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
            "bucket_id": short_id(self.ids),
            "name": ref.name,
            "account": ref.account,
            "encryption": encryption,
            "tags": tags or {},
            # Decided once, by the clock, and recorded: a replay must not decide it again.
            "default_index_mode": "ENHANCED" if self.catalog.clock.now() >= ENHANCED_ONLY_SINCE else "CLASSIC",
        }
        await self.catalog.submit(ctx, ev.BUCKET_CREATED, payload)
        return self.catalog.state.bucket(ref.account, ref.name)

    async def get_bucket(self, ref: BucketRef) -> Bucket:
        return await self.catalog.find(lambda state: state.bucket(ref.account, ref.name))

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
        _check_mode(bucket, mode, "defaultIndexMode")
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
        schema: dict[str, Any] | None = None,
    ) -> Index:
        """``schema``: an OSS fusion index's schemaConfiguration, kept to be shown and to name its
        vector field; the index itself is built from the other arguments."""
        if not ref.name:
            raise ValidationError("index name must not be empty", field="indexName")
        if data_type != "float32":
            raise ValidationError("dataType must be float32", field="dataType")
        nfk = list(non_filterable_keys or [])
        if len(set(nfk)) != len(nfk) or not all(isinstance(k, str) and k for k in nfk):
            raise ValidationError("nonFilterableMetadataKeys must be distinct non-empty strings")
        bucket = await self.get_bucket(ref.bucket_ref)
        payload = index_created(
            short_id(self.ids),
            bucket,
            ref.name,
            None,
            dimension=validate.dimension(dimension, self.settings.max_dimension),
            metric=validate.metric(metric),
            data_type=data_type,
            non_filterable_keys=nfk,
            encryption=encryption,
            text_search=text_search or [],
            tags=tags or {},
            **({"schema": schema} if schema else {}),
        )
        await self.catalog.submit(ctx, ev.INDEX_CREATED, payload)
        # Not opened here: the first request that uses it opens it (an index created and never
        # used costs no dataset handle, tail or materializer; design note 0005).
        return self.catalog.state.index(bucket, ref.name)

    async def get_index(self, ref: IndexRef) -> Index:
        return await self.catalog.find(lambda state: state.index(state.bucket(ref.account, ref.bucket), ref.name))

    async def list_indexes(self, ref: BucketRef, prefix: str = "") -> list[Index]:
        state = await self.catalog.refresh()
        bucket = state.bucket(ref.account, ref.name)
        return [i for i in state.indexes_of(bucket.id) if i.name.startswith(prefix)]

    async def delete_index(self, ctx: RequestContext, ref: IndexRef) -> None:
        index = await self.get_index(ref)
        await self.catalog.submit(ctx, ev.INDEX_DELETED, {"bucket_id": index.bucket_id, "index_id": index.id})
        try:
            await self._mark(ctx, index, ev.INDEX_DELETED)
        finally:
            self.runtime.forget(index.id)

    async def update_index_mode(self, ctx: RequestContext, ref: IndexRef, mode: str) -> None:
        index = await self.get_index(ref)
        _check_mode(self.catalog.state.buckets[index.bucket_id], mode, "indexMode")
        await self.catalog.submit(ctx, ev.INDEX_MODE_CHANGED, {"index_id": index.id, "mode": mode})
        await self._mark(ctx, index, ev.INDEX_MODE_CHANGED)

    async def _mark(self, ctx: RequestContext, index: Index, change: str) -> None:
        """Mark the index's log after a change to its catalog record, before it is acknowledged,
        so that reads in every process that trust a recent catalog state see it (``Catalog``).
        Through the open index if there is one (its appender is the log's in this process)."""
        live = self.runtime.get(index.id)
        if live is not None:
            await live.record_changed(ctx, change)
            return
        event = record_changed_event(ctx, self.ids, self.catalog.clock, change)
        await Appender(self.catalog.store, keys.index_log(index.bucket_id, index.id), self.catalog.clock).append(
            [event]
        )

    async def set_index_retention(self, ctx: RequestContext, ref: IndexRef, changes: dict[str, float | None]) -> Index:
        """Change how long an index keeps restore points (``pitr_window``) and its log
        (``log_retention``, 0: forever); a setting left out stays, None returns to the server's
        default. A catalog event like any other, so it is audited."""
        unknown = set(changes) - {"pitr_window", "log_retention"}
        if unknown:
            raise ValidationError(f"unknown retention settings: {', '.join(sorted(unknown))}", field="retention")
        checks = (("pitr_window", "pitrWindowSeconds", 0.0), ("log_retention", "logRetentionSeconds", -1.0))
        for name, wire, floor in checks:
            v = changes.get(name)
            if v is not None and not (isinstance(v, int | float) and floor < v < float("inf")):
                what = "a positive" if floor == 0.0 else "a non-negative (0: forever)"
                raise ValidationError(f"{wire} must be {what} number of seconds", field=wire)
        index = await self.get_index(ref)
        current = {k: v for k, v in (index.retention or {}).items() if k in ("pitr_window", "log_retention")}
        return await self.set_index_setting(ctx, ref, index, ev.INDEX_RETENTION, current | changes)

    async def set_index_setting(
        self, ctx: RequestContext, ref: IndexRef, index: Index, event_type: str, payload: dict[str, Any]
    ) -> Index:
        """Submit an index-setting event (quota, retention) and hand the result to its live index."""
        await self.catalog.submit(ctx, event_type, {"index_id": index.id, **payload})
        updated = await self.get_index(ref)
        live = self.runtime.get(updated.id)
        if live is not None:
            live.adopt(updated)
        return updated

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
