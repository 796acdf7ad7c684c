"""Folding an index's data log into its Lance dataset, in the background.

The loop: read the events after the checkpoint (many per fold), fold them in memory with the same
``Tail`` the reads use (last write by seq wins, deletes remove), apply the result to Lance in one
delete and one upsert commit, write the checkpoint ``{seq, lance_version}``, then maintain the
vector index (and checkpoint again, same seq, if that made a new Lance version). A crash between
the Lance commit and the checkpoint makes the next run fold the same events again, which changes
nothing: upserts and deletes by key are idempotent.

An index's own materializer folds only while its process holds the index's lease
(``lease.py``); the lease generation is checked before every Lance commit and written into
the checkpoint, so a holder that lost the lease cannot move either.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import anyio

from engine import failpoints, keys, memory, metrics
from engine.catalog.state import Index
from engine.dataset import IndexSession, LanceDataset, LanceMirror, warm
from engine.errors import LeaseLost, ObjectNotFound, PreconditionFailed, StoreUnavailable
from engine.log import read_log
from engine.log.event import TEXT_SEARCH_CHANGED, VECTORS_RESTORED
from engine.materialize import restore_points
from engine.materialize.checkpoint import Checkpoint, checkpoint_document, read_checkpoint, swap_checkpoint
from engine.materialize.lease import Lease
from engine.materialize.pruner import Pruner
from engine.materialize.rows import rows_table, strings_of
from engine.query.tail import Tail
from engine.query.text import config_pairs
from engine.settings import Settings
from engine.store import LanceLocation, ObjectStore, exists

log = logging.getLogger("vecledger.materializer")


# Called after each fold with the new checkpoint and a fresh read-only dataset handle.
Publish = Callable[[Checkpoint, Any], Awaitable[None]]


class Materializer:
    """Folds one index's log. With ``target`` (a key prefix) it folds into a dataset and checkpoint
    of its own there instead of the index's: that is replay, for checks and recovery; ``until``
    stops the fold at a seq (point-in-time recovery)."""

    def __init__(
        self,
        store: ObjectStore,
        index: Index,
        settings: Settings,
        *,
        publish: Publish | None = None,
        target: str | None = None,
        until: int | None = None,
        checkpoint_key: str | None = None,
        lease: Lease | None = None,
        mirror: LanceMirror | None = None,
    ) -> None:
        self.store = store
        self.index = index
        self.settings = settings
        self.publish = publish
        self.until = until
        self.root = keys.index_root(index.bucket_id, index.id) if target is None else target
        # Only an index's own materializer keeps the seq -> Lance version history restores start from,
        # and maintains the vector index as it folds: a replay builds it once, at the end, if at all.
        self.record_versions = target is None
        self.maintain_index = target is None
        self.checkpoint_key = checkpoint_key or keys.checkpoint_under(self.root)
        location = store.lance_location(keys.lance_under(self.root))
        # The served handles' caches (a replay's dataset is read once, in the process's session).
        self.session = IndexSession() if target is None else None
        self.mirror = mirror  # the serving process's local copies of S3 datasets (None: read the store)
        self.dataset = LanceDataset(
            location,
            index.dimension,
            index.metric,
            settings.tuning,
            strings_of(index.non_filterable_keys),
            self.session,
        )
        self.checkpoint: Checkpoint | None = None
        # The background loop and explicit calls (tools, tests) may both fold; Lance datasets
        # must not be written from two threads at once.
        self._lock = anyio.Lock()
        self._wake = anyio.Event()
        self.folds = 0
        self._fold_bytes = settings.fold_max_bytes  # halved after a fold overflows Lance's pool
        self.last_maintenance: list[str] = []
        # Index work a busy fold deferred (and, at start, whatever a crash may have cut short).
        self.maintenance_due = True
        # Rows below the optimize threshold wait unindexed until the writes stop for a while.
        self.leftovers_due = True
        self._idle_runs = 0
        self.lease = lease
        self.parked = False  # no work, no polling: waiting for a write to wake it (schedule.py)
        # Restore points of this index (its own materializer: replays are thrown away whole).
        self.points = Pruner(store, settings, self.dataset.location) if target is None else None

    @property
    def _log_prefix(self) -> str:
        return keys.index_log(self.index.bucket_id, self.index.id)

    async def _start(self) -> Checkpoint:
        if self.checkpoint is None:
            self.checkpoint = await read_checkpoint(self.store, self.index, self.checkpoint_key)
            await anyio.to_thread.run_sync(self.dataset.open)
        return self.checkpoint

    @property
    def settled(self) -> bool:
        """Nothing is left to do until the next write: index upkeep and pruning are done."""
        pruning = self.points is not None and self.points.unpruned
        return not (self.maintenance_due or self.leftovers_due or pruning)

    @property
    def leading(self) -> bool:
        """Whether this materializer is the one folding its index (it holds the lease, if any)."""
        return self.lease is None or self.lease.held

    async def run_once(self) -> int:
        """Fold what the log holds past the checkpoint; returns the number of event objects folded
        (0 also when another process holds the lease)."""
        async with self._lock:
            if self.lease is None:
                return await self._fold()
            was_held = self.lease.held
            if not await self.lease.hold():
                return 0
            if not was_held:
                self.checkpoint = None  # taking over: start from what the last holder wrote
                if self.points is not None:
                    self.points.forget()
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._keep_lease, self.lease)
                    try:
                        folded = await self._fold()
                    finally:
                        tg.cancel_scope.cancel()
            except BaseExceptionGroup as group:
                if len(group.exceptions) == 1:
                    raise group.exceptions[0] from None  # the fold's own error, not a group of one
                raise
            return folded

    def _capped(self, objects: int, rows: int, size: int) -> bool:
        """Whether a fold holds enough: objects, rows, or event bytes (the rows' size: a fold of
        50,000 rows of 384 dimensions overflowed the memory pool of Lance's merge)."""
        settings = self.settings
        return objects >= settings.fold_max_events or rows >= settings.fold_max_rows or size >= self._fold_bytes

    @staticmethod
    async def _keep_lease(lease: Lease) -> None:
        """Renew the lease while a long fold (an index build) runs."""
        while lease.generation is not None:
            await lease.clock.sleep(lease.duration / 3)
            await lease.hold()

    async def _fence(self) -> int | None:
        return None if self.lease is None else await self.lease.check()

    async def release(self) -> None:
        if self.lease is not None:
            await self.lease.release()

    async def _fold(self) -> int:
        cp = await self._start()
        started = metrics.stopwatch()
        tail = Tail(self.index.metric, base_seq=cp.seq)
        folded = size = 0
        try:
            async for obj in read_log(self.store, self._log_prefix, cp.seq, until=self.until):
                marker = next((e for e in obj.events if e.type == VECTORS_RESTORED), None)
                if marker is not None:
                    if folded:
                        break  # fold what came before; the marker starts the next run
                    await self._fold_restored(obj.seq, marker.json())
                    return 1
                tail.apply(obj)
                for event in obj.events:
                    if event.type == TEXT_SEARCH_CHANGED:
                        # The log carries the configuration the backfill needs, so a materializer
                        # in another process need not have seen the catalog change yet.
                        self.dataset.text_pairs = config_pairs(event.json().get("text_search", []))
                folded += 1
                size += sum(len(e.payload) for e in obj.events)
                if self._capped(folded, len(tail), size):
                    break
        except StoreUnavailable:
            if not folded:
                raise
            # Fold what was read: on a flaky store, a long backlog still makes progress.
        if not folded:
            self._idle_runs += 1
            if self.maintenance_due:
                await self._maintain(settled=True)  # the writers paused: finish what busy folds deferred
            elif self.leftovers_due and self._idle_runs >= self.settings.quiet_runs:
                await self._maintain(settled=True, quiet=True)  # they stopped: index the last rows too
            elif self.points is not None and self.points.unpruned and self._idle_runs >= self.settings.quiet_runs:
                await self.points.upkeep(self.index)
            return 0
        self._idle_runs = 0
        self.leftovers_due = True
        # Building the rows (metadata parsing, filter columns) is CPU work: off the event loop.
        upserts = await anyio.to_thread.run_sync(
            rows_table, tail.live_batch(self.index.dimension), self.index.non_filterable_keys
        )
        await self._fence()
        applied = metrics.stopwatch()
        try:
            await anyio.to_thread.run_sync(self.dataset.apply, upserts, tail.deleted_keys())
        except OSError as e:
            if "Resources exhausted" not in str(e) or folded == 1:
                raise
            # Lance's merge holds the fold's rows in a hash join, in a pool of 300 MB; rows larger
            # than ``fold_max_bytes`` assumed (large metadata) can overflow it: fold less at a time.
            self._fold_bytes = max(1, min(self._fold_bytes, size) // 2)
            log.warning(
                "index %s: fold of %d bytes over Lance's memory pool; folding at most %d",
                self.index.id,
                size,
                self._fold_bytes,
            )
            raise
        failpoints.hit("materializer.after_lance_commit")
        generation = await self._fence()
        await self._commit_checkpoint(Checkpoint(tail.seq, self.dataset.version, generation=generation))
        self.folds += 1
        if self.maintain_index:  # the index's own folds, not replays into scratch datasets
            metrics.FOLDS.inc()
            metrics.FOLDED_OBJECTS.inc(folded)
            metrics.FOLD_SECONDS.observe(metrics.stopwatch() - started)
            # Writers still at it (more to fold already): defer the index work that can wait.
            capped = self._capped(folded, len(tail), size)
            busy = capped or await exists(self.store, keys.log_entry(self._log_prefix, tail.seq + 1))
            maintained = metrics.stopwatch()
            await self._maintain(settled=not busy)
            if self.points is not None:
                self.points.unpruned = True
                if self.points.due():
                    await self.points.upkeep(self.index)
            log.info(
                "index %s: folded %d objects (%d rows) to seq %d: read %.2fs, apply %.2fs; index %s %.2fs",
                self.index.id,
                folded,
                len(tail),
                tail.seq,
                applied - started,
                maintained - applied,
                ",".join(self.last_maintenance) or "-",
                metrics.stopwatch() - maintained,
            )
        await anyio.to_thread.run_sync(memory.release)
        return folded

    async def prune(self) -> restore_points.Pruned | None:
        """Thin the restore points now (tools, tests); None for a replay's materializer."""
        return None if self.points is None else await self.points.prune(self.index)

    async def _fold_restored(self, seq: int, marker: dict[str, Any]) -> None:
        """A restored index's log starts with a marker: "the state of index X at seq N". Folding it
        replays X's log up to N into this dataset, so a restored index rebuilds from logs alone."""
        source = replace(self.index, bucket_id=marker["bucket_id"], id=marker["index_id"])
        nested = Materializer(
            self.store,
            source,
            self.settings,
            target=self.root,
            until=int(marker["upto_seq"]),
            checkpoint_key=keys.restore_checkpoint(self.root, seq),
        )
        await self._fence()
        await nested.run_to_end()
        await anyio.to_thread.run_sync(self.dataset.open)
        generation = await self._fence()
        await self._commit_checkpoint(Checkpoint(seq, self.dataset.version, generation=generation))
        await self._maintain(settled=True)

    async def _maintain(self, settled: bool, quiet: bool = False) -> None:
        """Keep the vector and text indexes (the index's own materializer; replays do not), after
        the fold's checkpoint: a long index build never holds back what the fold made visible.
        What it changes is committed as a checkpoint at the same seq, on the newer Lance version."""
        if not self.maintain_index or self.checkpoint is None:
            return
        self.last_maintenance = await anyio.to_thread.run_sync(self.dataset.maintain, settled, quiet)
        self.maintenance_due = not settled
        if quiet:
            self.leftovers_due = False
        for action in self.last_maintenance:
            metrics.INDEX_MAINTENANCE.labels(action).inc()
        if self.last_maintenance:
            generation = await self._fence()
            await self._commit_checkpoint(Checkpoint(self.checkpoint.seq, self.dataset.version, generation=generation))

    async def _commit_checkpoint(self, new: Checkpoint) -> None:
        """Write the checkpoint by compare-and-swap, so that it never moves backwards."""
        key = self.checkpoint_key
        data = checkpoint_document(new)
        try:
            etag = await swap_checkpoint(self.store, key, data, (self.checkpoint or Checkpoint()).etag)
        except (PreconditionFailed, ObjectNotFound):
            # Another materializer moved it; adopt whichever is further along.
            theirs = await read_checkpoint(self.store, self.index, key)
            if (theirs.generation or 0) > (new.generation or 0) and new.generation is not None:
                raise LeaseLost(key, theirs.generation) from None  # a newer holder wrote it: fenced
            if theirs.seq >= new.seq:
                self.checkpoint = theirs
                await self._publish()
                return
            self.checkpoint = theirs
            return await self._commit_checkpoint(new)
        self.checkpoint = Checkpoint(new.seq, new.lance_version, etag, new.generation)
        if self.record_versions:
            now = self.store.clock.now()
            doc = restore_points.point_document(new.seq, new.lance_version, now)
            await self.store.put(keys.index_version(self.index.bucket_id, self.index.id, new.seq), doc)
            if self.points is not None:
                self.points.written(restore_points.Point(new.seq, new.lance_version, now))
        await self._publish()

    async def _publish(self) -> None:
        if self.publish is not None and self.checkpoint is not None:
            await self.publish(self.checkpoint, await self.fresh_reader())

    async def fresh_reader(self) -> Any:
        """A new read-only, warmed handle on the dataset's newest version: on the local copy when
        this process mirrors its Lance files (roots on S3: ``LanceMirror``), else on the store."""
        if self.mirror is not None:
            try:
                copied = await self.mirror.sync(keys.lance_under(self.root))
            except (ObjectNotFound, StoreUnavailable, OSError) as e:  # (a file cleaned up meanwhile)
                log.warning("index %s: could not copy its Lance files here, reading the store: %s", self.index.id, e)
                copied = None
            if copied is not None:
                return await anyio.to_thread.run_sync(self.fresh_snapshot, *copied)
        return await anyio.to_thread.run_sync(self.fresh_snapshot)

    def fresh_snapshot(self, location: LanceLocation | None = None, version: int | None = None) -> Any:
        """A new read-only, warmed handle on the dataset's newest version, or ``version`` at
        ``location`` (a local copy), blocking: run it in a thread."""
        fresh = LanceDataset(
            location or self.dataset.location,
            self.index.dimension,
            self.index.metric,
            self.settings.tuning,
            session=self.session,
        )
        fresh.open(version)
        if fresh.snapshot() is not None:
            warm(fresh.snapshot(), self.settings.tuning)  # here, not in a query
        return fresh.snapshot()

    async def run_to_end(self) -> int:
        """Fold until the log has nothing more; returns the number of event objects folded."""
        total = 0
        while folded := await self.run_once():
            total += folded
        return total

    def want_prefix_index(self) -> None:
        """A $startsWith query met a large version without the prefix index: build it on the next
        run, as upkeep (this process's materializer, if it leads; another's asks for itself)."""
        if not self.dataset.prefix_wanted:
            self.dataset.prefix_wanted = True
            self.maintenance_due = True
            self.wake()

    def wake(self) -> None:
        """Something was appended in this process: fold soon, without waiting for the idle poll."""
        self._wake.set()

    async def woken(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for ``wake``; True (and reset) if it came."""
        with anyio.move_on_after(timeout):
            await self._wake.wait()
        if not self._wake.is_set():
            return False
        self._wake = anyio.Event()
        return True
