"""One index as this process serves it: its appender, its tail, its dataset snapshot, its reads.

Reads merge the Lance snapshot with the in-memory tail of events past the snapshot's checkpoint;
keys touched in the tail are taken from the tail (a delete hides the key at once). Before a read the
index probes its log for entries written by any process since it last looked, so every read sees
every acknowledged write.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio

from engine import keys
from engine.catalog.state import Index
from engine.clock import Clock, IdSource
from engine.context import RequestContext
from engine.dataset import (
    Hit,
    LanceMirror,
    forget_row_keys,
    key_hash,
    scan_keys,
    search,
    take,
    text_config,
    wants_prefix_index,
)
from engine.errors import CorruptEvent, PartialBatch, StoreUnavailable, Throttled, Unavailable
from engine.log import Appender, EventObject, read_log
from engine.log.event import (
    ARROW,
    INDEX_CHANGED,
    RECORD_MARKS,
    TEXT_SEARCH_CHANGED,
    VECTORS_DELETED,
    VECTORS_PUT,
    Event,
    json_payload,
)
from engine.log.payload import VectorBatch, Vectors, encode_vectors, parse_metadata
from engine.materialize.activity import ActivityMark
from engine.materialize.checkpoint import Checkpoint, read_checkpoint
from engine.materialize.lease import Lease
from engine.materialize.materializer import Materializer
from engine.query.filters import Filter
from engine.query.tail import Tail, TailRow
from engine.query.text import config_pairs
from engine.serving.quota import WriteQuota
from engine.serving.records import ListPage, VectorRecord, decode_token, encode_token, records_of, shaped
from engine.serving.text_search import TextHits, TextQuery, text_hits
from engine.settings import Settings
from engine.store import ObjectStore

log = logging.getLogger("vecledger.index")
CHECKPOINT_POLL = 1.0  # seconds between checkpoint reads when another process folds this index


class LiveIndex:
    def __init__(
        self,
        store: ObjectStore,
        index: Index,
        settings: Settings,
        clock: Clock,
        ids: IdSource,
        holder: str,
        mirror: LanceMirror | None = None,
        on_record_changed: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        # Called when the log says this index's catalog record changed (``RECORD_MARKS``).
        self.on_record_changed = on_record_changed
        self.index = index
        self.settings = settings
        self.clock = clock
        self.ids = ids
        self.prefix = keys.index_log(index.bucket_id, index.id)
        self.tail = Tail(index.metric)
        self.checkpoint = Checkpoint()
        self.reader: Any = None
        lease = Lease(store, keys.index_lease(index.bucket_id, index.id), holder, clock, settings.lease_seconds)
        self.materializer = Materializer(store, index, settings, publish=self.publish, lease=lease, mirror=mirror)
        self.materializer.dataset.text_pairs = config_pairs(index.text_search)
        self._appender: Appender | None = None
        self.activity = ActivityMark(store, index, clock, settings.materialize_idle_exit)
        self._encoding: dict[str, VectorBatch] = {}  # event id -> rows, while its append is in flight
        self._refresh_lock = anyio.Lock(fast_acquire=True)
        self._last_checkpoint_poll = 0.0
        self.quota = WriteQuota(clock)
        self.corrupt: CorruptEvent | None = None

    async def open(self) -> None:
        self.checkpoint = await read_checkpoint(self.store, self.index)
        self.reader = await self.materializer.fresh_reader()
        self.tail = Tail(self.index.metric, base_seq=self.checkpoint.seq)
        await self.refresh()
        self._appender = Appender(
            self.store,
            self.prefix,
            self.clock,
            window=self.settings.group_commit_window,
            max_bytes=self.settings.max_event_bytes,
            known_seq=self.tail.seq,
            on_written=self._written,
        )
        self._last_checkpoint_poll = self.clock.monotonic()
        if self.settings.run_materializers and "BUILDING" in self.text_status().values():
            # A dataset built without this configuration (a restore replays into a fresh dataset
            # without it): log a marker so that the materializer folds and backfills.
            await self.text_changed(RequestContext.system(self.index.account))

    def adopt(self, index: Index) -> bool:
        """Take a newer catalog record of this index (its text configuration may have changed);
        the materializer backfills the ``text`` column on its next fold. True if text changed."""
        changed = index.text_search != self.index.text_search
        self.index = index
        self.materializer.index = index
        self.materializer.dataset.text_pairs = config_pairs(index.text_search)
        return changed

    async def text_changed(self, ctx: RequestContext) -> None:
        """Log a marker so that the materializer folds (and backfills) even if no vector comes."""
        payload = json_payload({"text_search": list(self.index.text_search)})
        await self._append([self._event(ctx, TEXT_SEARCH_CHANGED, payload, "json", {})])

    async def record_changed(self, ctx: RequestContext, change: str) -> None:
        """Mark the log: this index's catalog record changed (``change``: the catalog event's
        type), so readers that trusted a recent catalog state look again (``Catalog``)."""
        await self._append([record_changed_event(ctx, self.ids, self.clock, change)])

    def text_status(self) -> dict[tuple[str, str | None], str]:
        """ACTIVE for the text keys the served dataset indexes (or when it has no rows to backfill),
        BUILDING for the others: queries answer either way, exactly, the latter by a scan."""
        pairs = config_pairs(self.index.text_search)
        if not pairs:
            return {}  # most indexes: nothing to ask the dataset (this runs as every index opens)
        reader = self.reader
        done = set(text_config(reader)) if reader is not None and reader.count_rows() else None
        return {p: "ACTIVE" if done is None or p in done else "BUILDING" for p in pairs}

    async def publish(self, checkpoint: Checkpoint, reader: Any) -> None:
        """Adopt a newer materialized state: swap the snapshot, forget the folded tail."""
        if checkpoint.seq < self.checkpoint.seq:
            return
        self.checkpoint, self.reader = checkpoint, reader
        self.tail.trim(checkpoint.seq)

    async def refresh(self) -> None:
        """Pull every event past the tail (written by any process) into the tail."""
        async with self._refresh_lock:
            if self.corrupt is None:
                try:
                    async for obj in read_log(self.store, self.prefix, self.tail.seq):
                        self.tail.apply(obj)
                        self._note_marks(obj)
                except CorruptEvent as e:
                    # Never skip an entry: reads keep the last good state, writes are refused.
                    log.error("index %s: %s; serving the state before it, refusing writes", self.index.id, e)
                    self.corrupt = e
            # Another process folds this index: adopt its checkpoints now and then. Not while this
            # process's materializer is parked: then nobody folds (a write marks the index, which
            # wakes it within a poll), and a read of an idle index costs one request, not two.
            m = self.materializer
            if not (m.leading or m.parked) and self.clock.monotonic() - self._last_checkpoint_poll >= CHECKPOINT_POLL:
                self._last_checkpoint_poll = self.clock.monotonic()
                cp = await read_checkpoint(self.store, self.index)
                # A newer seq, or the same seq on a newer Lance version (its index maintained).
                if (cp.seq, cp.lance_version) > (self.checkpoint.seq, self.checkpoint.lance_version):
                    await self.publish(cp, await self.materializer.fresh_reader())

    # --- writes -------------------------------------------------------------------------------

    async def _append(self, events: list[Event]) -> int:
        assert self._appender is not None, "LiveIndex.open() first"
        if self.corrupt is not None:
            # The key names internal ids: the operator finds it in the server's log and /metrics.
            raise Unavailable(
                f"index {self.index.name!r} cannot take writes: its log is corrupt "
                "(the server's log names the object; restore it from a backup, or restore the index "
                "to a point before it)"
            )
        marked = self.activity.due()
        if marked:
            await self.activity.mark()
        seq = await self._appender.append(events)
        self.activity.appended()
        if marked:
            with contextlib.suppress(StoreUnavailable):  # the write is durable: never fail it now
                await self.activity.mark()
        if self.tail.seq < seq:
            await self.refresh()
        self.materializer.wake()
        return seq

    def _written(self, obj: EventObject) -> None:
        """Fold our own appends without reading them back, when they are next in line."""
        if self.tail.seq == obj.seq - 1:
            self.tail.apply(obj, self._encoding)
            self._note_marks(obj)

    def _note_marks(self, obj: EventObject) -> None:
        if any(e.type in RECORD_MARKS for e in obj.events):
            self.on_record_changed()

    def _event(self, ctx: RequestContext, type: str, payload: bytes, fmt: str, attrs: dict[str, Any]) -> Event:
        return Event.new(
            ctx, id=self.ids.new_id(), type=type, time=self.clock.now(), payload=payload, format=fmt, attrs=attrs
        )

    def check_backlog(self, rows: int) -> None:
        """Refuse a write (retryably) that would grow the unfolded tail past its budget; a first
        write into an empty tail always passes, whatever its size."""
        held = len(self.tail)
        per_row = 4 * self.index.dimension + 64  # the vector, and the key and metadata, roughly
        if held and (held + rows) * per_row > self.settings.max_tail_bytes:
            raise Throttled(
                f"index {self.index.name!r} has {held} rows written and not yet folded; "
                "retry once the materializer has caught up"
            )

    async def put(self, ctx: RequestContext, batch: VectorBatch) -> list[int]:
        """Append a put; batches over the event size become chunk events (not atomic as a whole)."""
        per_row = max(1, batch.nbytes() // max(1, len(batch)))
        rows_per_chunk = max(1, self.settings.max_event_bytes // per_row)
        chunks = [batch.slice(i, i + rows_per_chunk) for i in range(0, len(batch), rows_per_chunk)]
        seqs: list[int] = []
        for n, chunk in enumerate(chunks):
            attrs = {"count": len(chunk)} | ({"chunk": [n + 1, len(chunks)]} if len(chunks) > 1 else {})
            ev = self._event(ctx, VECTORS_PUT, encode_vectors(chunk), ARROW, attrs)
            self._encoding[ev.id] = chunk  # the tail takes the rows as they are, not decoded back
            try:
                seqs.append(await self._append([ev]))
            except StoreUnavailable as e:
                if len(chunks) == 1:
                    raise
                raise PartialBatch(
                    f"chunk {n + 1} of {len(chunks)} could not be appended; chunks 1-{n} are written",
                    seqs,
                    n + 1,
                    len(chunks),
                ) from e
            finally:
                del self._encoding[ev.id]
        return seqs

    async def delete(self, ctx: RequestContext, keys_: list[str]) -> int:
        ev = self._event(ctx, VECTORS_DELETED, json_payload({"keys": keys_}), "json", {"count": len(keys_)})
        return await self._append([ev])

    def cache_bytes(self) -> int:
        """What its Lance session holds (opened index files, manifests) as Lance counts it."""
        session = self.materializer.session
        return 0 if session is None else session.size_bytes()

    def close(self) -> None:
        """The index was deleted or closed: drop what this process keeps for it beyond this object."""
        forget_row_keys(self.reader)
        if self.materializer.mirror is not None:
            self.materializer.mirror.release(keys.lance_under(self.materializer.root))

    # --- reads --------------------------------------------------------------------------------

    def _sql_for(self, reader: Any, flt: Filter | None) -> str | None:
        """The filter's SQL for this snapshot's columns (None: no filter). A $startsWith filter on
        a large snapshot without the prefix index asks the materializer for one."""
        if flt is None:
            return None
        if reader is None or not flt.needs_strings:
            return flt.sql
        names = reader.schema.names
        if "strings" not in names:
            raise Unavailable(
                "this index's data predates $startsWith: it can be used once the index's next write "
                "is folded (which adds the column)"
            )
        if wants_prefix_index(reader, self.settings.tuning):
            self.materializer.want_prefix_index()
        return flt.sql_for(names)

    async def query(
        self, vector: Vectors, k: int, flt: Filter | None, *, metadata: bool = True, exact: bool = True
    ) -> list[Hit]:
        """The ``k`` nearest rows; ``metadata``/``exact``: whether dataset hits need their metadata
        and float64 distances (``dataset.search``); tail hits always have both."""
        await self.refresh()
        # Capture the snapshot and the tail's answer together, with no await in between, so the
        # two describe the same moment even if the materializer publishes meanwhile.
        reader, touched = self.reader, self.tail.touched()
        sql = self._sql_for(reader, flt)
        tail_hits = [Hit(k_, d, m) for k_, d, m in self.tail.search(vector, k, flt.predicate if flt else None)]
        want = k + min(len(touched), 4 * k + 100)
        while True:
            hits = await anyio.to_thread.run_sync(
                partial(search, metadata=metadata, exact=exact),
                reader,
                vector,
                want,
                self.index.metric,
                sql,
                self.settings.tuning,
            )
            kept = [h for h in hits if h.key not in touched]
            if len(kept) >= k or len(hits) < want:
                break
            want *= 4
        merged = sorted(tail_hits + kept, key=lambda h: h.distance)
        return merged[:k]

    async def text_search(self, queries: list[TextQuery], flt: Filter | None) -> dict[str, TextHits]:
        """BM25 per queried key (``text_search.text_hits``), every acknowledged write included."""
        await self.refresh()
        return await text_hits(lambda: (self.reader, self.tail), queries, flt)

    async def get(self, keys_: list[str], return_data: bool, return_metadata: bool) -> list[VectorRecord]:
        await self.refresh()
        found: dict[str, VectorRecord] = {}
        from_lance = []
        for key in dict.fromkeys(keys_):
            if key not in self.tail:
                from_lance.append(key)
            elif (row := self.tail.lookup(key)) is not None:
                found[key] = VectorRecord(key, row.vector, parse_metadata(row.metadata))
        if from_lance:
            table = await anyio.to_thread.run_sync(take, self.reader, from_lance, ["key", "vector", "metadata"])
            for rec in records_of(table):
                found[rec.key] = rec
        return [shaped(found[k], return_data, return_metadata) for k in dict.fromkeys(keys_) if k in found]

    async def list(
        self,
        limit: int,
        token: str | None,
        segment_count: int,
        segment_index: int,
        return_data: bool,
        return_metadata: bool,
        flt: Filter | None = None,
    ) -> ListPage:
        await self.refresh()
        after = decode_token(token, segment_count, segment_index) if token else None
        reader, tail = self.reader, self.tail

        def mine(key: str) -> bool:
            return (after is None or key > after) and (
                segment_count <= 1 or key_hash(key) % segment_count == segment_index
            )

        def matches(r: TailRow) -> bool:
            return flt is None or flt.predicate(parse_metadata(r.metadata) or {})

        sql = self._sql_for(reader, flt)
        tail_rows = {r.key: r for r in tail.live_rows() if mine(r.key) and matches(r)}
        touched = tail.touched()
        lance_keys = await anyio.to_thread.run_sync(
            scan_keys, reader, after, segment_count, segment_index, limit + 1 + len(touched), sql
        )
        candidates = sorted(set(tail_rows) | {k for k in lance_keys if k not in touched})
        page, more = candidates[:limit], len(candidates) > limit
        records: dict[str, VectorRecord] = {}
        need = [k for k in page if k not in tail_rows]
        if need:
            table = await anyio.to_thread.run_sync(take, reader, need, ["key", "vector", "metadata"])
            records = {r.key: r for r in records_of(table)}
        for k in page:
            if k in tail_rows:
                r = tail_rows[k]
                records[k] = VectorRecord(k, r.vector, parse_metadata(r.metadata))
        out = [shaped(records[k], return_data, return_metadata) for k in page if k in records]
        next_token = encode_token(page[-1], segment_count, segment_index) if more and page else None
        return ListPage(out, next_token)


def record_changed_event(ctx: RequestContext, ids: IdSource, clock: Clock, change: str) -> Event:
    """The ``INDEX_CHANGED`` mark of a change to an index's catalog record (``record_changed``)."""
    payload = json_payload({"change": change})
    return Event.new(ctx, id=ids.new_id(), type=INDEX_CHANGED, time=clock.now(), payload=payload, format="json")
