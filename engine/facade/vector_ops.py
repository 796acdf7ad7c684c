"""Vector operations of the engine facade: writes (with quotas and partial-batch auditing) and
fresh reads, each on the ``LiveIndex`` the catalog operations resolve a name to."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from engine.audit.trail import AuditLog
from engine.catalog.state import Index
from engine.context import RequestContext
from engine.dataset import Hit
from engine.errors import PartialBatch, StoreUnavailable, Throttled, ValidationError
from engine.facade.catalog_ops import CatalogOps
from engine.log import event as ev
from engine.query import validate
from engine.query.filters import Filter, compile_filter
from engine.query.fusion import RRF_K, Scored, hybrid, text_ranking
from engine.query.text import analyze
from engine.refs import IndexRef
from engine.serving.live_index import LiveIndex
from engine.serving.records import ListPage, VectorRecord
from engine.serving.text_search import TextQuery
from engine.settings import Settings

T = TypeVar("T")
INLINE_FILTER_ITEMS = 64  # larger filters compile in a worker thread, off the event loop


def _items(doc: Any, cap: int) -> int:
    """How many members ``doc``'s objects and arrays hold, counting no further than ``cap`` (and
    never walking a huge list or object: a 2-million-term ``$in`` is counted by its length)."""
    seen, todo = 0, [doc]
    while todo and seen <= cap:
        node = todo.pop()
        members = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        seen += len(members) if members else 1
        todo.extend(m for m in itertools.islice(members, cap) if isinstance(m, dict | list))
    return seen


async def _compiled(filter: Any, index: Index) -> Filter | None:
    """The index's view of a request's filter. A large one (up to the 1,000 conditions the compiler
    allows on a CLASSIC index: ~4 ms) compiles in a thread, so one request cannot stall every other on the loop."""
    if filter is None:
        return None
    compile_it = functools.partial(compile_filter, filter, index.non_filterable_keys, enhanced=index.mode == "ENHANCED")
    if _items(filter, INLINE_FILTER_ITEMS) <= INLINE_FILTER_ITEMS:
        return compile_it()
    return await anyio.to_thread.run_sync(compile_it)


class VectorOps:
    def __init__(self, indexes: CatalogOps, audit: AuditLog, settings: Settings) -> None:
        self.indexes = indexes
        self.audit = audit
        self.settings = settings

    async def _admit(self, ctx: RequestContext, live: LiveIndex, operation: str, vectors: int) -> None:
        quota = live.index.quota or {}
        try:
            live.check_backlog(vectors)
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
        live = await self.indexes.live(ref)
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
        live = await self.indexes.live(ref)
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
        index = await self.indexes.get_index(ref)
        payload = {"requests_per_second": requests_per_second, "vectors_per_second": vectors_per_second}
        return await self.indexes.set_index_setting(ctx, ref, index, ev.INDEX_QUOTA, payload)

    async def _read(self, ref: IndexRef, read: Callable[[LiveIndex], Awaitable[T]]) -> T:
        """``read`` on the index ``ref`` names; run again, on a probed catalog, if a request that
        trusted a recent catalog state learnt meanwhile (from an index's log) that it was voided:
        the index may have been deleted, re-created or changed (``Catalog``)."""
        result = await read(await self.indexes.live(ref))
        if self.indexes.catalog.trusted():
            return result
        await self.indexes.catalog.refresh(probe=True)
        return await read(await self.indexes.live(ref))

    async def get_vectors(
        self, ref: IndexRef, keys: list[str], *, return_data: bool = False, return_metadata: bool = False
    ) -> list[VectorRecord]:
        checked = validate.keys(keys)
        return await self._read(ref, lambda live: live.get(checked, return_data, return_metadata))

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

        async def read(live: LiveIndex) -> ListPage:
            flt = await _compiled(filter, live.index)
            return await live.list(limit, token, segment_count, segment_index, return_data, return_metadata, flt)

        return await self._read(ref, read)

    async def query_vectors(self, ref: IndexRef, vector: Any, top_k: int, filter: Any = None) -> list[Hit]:
        """The ``top_k`` nearest vectors (fewer if fewer match the filter), nearest first."""
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise ValidationError("topK must be a positive integer", field="topK")

        async def read(live: LiveIndex) -> list[Hit]:
            q = validate.vector(live.index, vector)
            return await live.query(q, top_k, await _compiled(filter, live.index))

        return await self._read(ref, read)

    async def search(
        self,
        ref: IndexRef,
        vector: Any,
        texts: list[tuple[str, str]],
        top_k: int,
        filter: Any = None,
        *,
        metadata: bool = True,
        distances: bool = True,
        rrf_k: int = RRF_K,
        keep: int | None = None,
    ) -> list[Scored]:
        """Full-text (``texts``: (metadataKey, text) pairs), vector, or hybrid search: BM25 for
        texts alone, distance for a vector alone, RRF of the two rankings for both.

        ``metadata``/``distances``: whether the caller shows them; without, vector hits skip
        reading them (their metadata is then None, their distances Lance's float32 ones).
        ``rrf_k``, ``keep``: the RRF constant, and how many fused rows to keep (``top_k``, the
        depth of each list, by default), for OSS's rrf retriever."""
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise ValidationError("topK must be a positive integer", field="topK")
        return await self._read(
            ref, functools.partial(self._search, vector, texts, top_k, filter, metadata, distances, rrf_k, keep)
        )

    async def _search(
        self,
        vector: Any,
        texts: list[tuple[str, str]],
        top_k: int,
        filter: Any,
        metadata: bool,
        distances: bool,
        rrf_k: int,
        keep: int | None,
        live: LiveIndex,
    ) -> list[Scored]:
        flt = await _compiled(filter, live.index)
        vector_hits: list[Scored] = []
        if vector is not None:
            q = validate.vector(live.index, vector)
            hits = await live.query(q, top_k, flt, metadata=metadata, exact=distances)
            vector_hits = [Scored(h.key, h.metadata, distance=h.distance) for h in hits]
            if not texts:
                return vector_hits
        languages = {c["metadataKey"]: c.get("language") for c in live.index.text_search}
        queries = []
        for i, (key, text) in enumerate(texts):
            if key not in languages:
                raise ValidationError(
                    f"metadata key {key!r} has no text search configuration", field=f"queryTexts[{i}].metadataKey"
                )
            lang = languages[key]
            queries.append(TextQuery(key, lang, list(dict.fromkeys(analyze(text, lang)))))
        text_hits = text_ranking(await live.text_search(queries, flt), top_k)
        return hybrid(vector_hits, text_hits, keep or top_k, rrf_k) if vector is not None else text_hits

    async def materialize(self, ref: IndexRef) -> int:
        """Fold everything logged so far for one index now (tools and tests); returns objects folded."""
        live = await self.indexes.live(ref)
        return await live.materializer.run_to_end()
