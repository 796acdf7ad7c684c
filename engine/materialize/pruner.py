"""The upkeep of one index's history after its folds: restore points thinned and, under a log
retention, the log's head dropped behind them.

Its materializer (the lease holder) runs it after a fold at most every ``prune_interval`` and once
when the writes stop; it never fails a fold: what a failed prune leaves is more versions or more
log on disk, and the next interval tries again.
"""

from __future__ import annotations

import logging

from engine import keys, metrics
from engine.catalog import Index
from engine.log.start import LogStart, read_start
from engine.materialize import log_retention
from engine.materialize.restore_points import Point, Pruned, load, prune
from engine.settings import Settings
from engine.store import LanceLocation, ObjectStore

log = logging.getLogger("vecledger.materializer")


class Pruner:
    """One index's restore points and log start as its materializer keeps them: loaded on the
    first prune, told of each new point."""

    def __init__(self, store: ObjectStore, settings: Settings, location: LanceLocation) -> None:
        self.store = store
        self.settings = settings
        self.location = location
        self.points: dict[int, Point] | None = None
        self.start: LogStart | None = None
        self.unpruned = True  # points were written since the last prune
        self.last: Pruned | None = None
        self._at = float("-inf")

    def forget(self) -> None:
        """Another holder wrote points meanwhile (a lease taken over): read them again."""
        self.points = None

    def written(self, point: Point) -> None:
        if self.points is not None:
            self.points[point.seq] = point

    def due(self) -> bool:
        return self.store.clock.monotonic() - self._at >= self.settings.prune_interval

    async def prune(self, index: Index) -> Pruned:
        self._at = self.store.clock.monotonic()
        self.unpruned = False
        if self.points is None:
            self.points = await load(self.store, index, self.location)
            self.start = await read_start(self.store, keys.index_log(index.bucket_id, index.id))
        base = -1 if self.start is None else self.start.base_seq
        self.last = await prune(self.store, index, self.location, self.points, self.settings, base)
        self.start = await log_retention.truncate(self.store, index, self.points, self.settings, self.start)
        metrics.VERSIONS_REMOVED.inc(self.last.cleanup.versions)
        return self.last

    async def upkeep(self, index: Index) -> None:
        """``prune``, never a reason for the fold to fail: a prune that fails leaves more versions
        on disk, and the next interval tries again."""
        try:
            await self.prune(index)
        except Exception:  # a store or Lance error of the prune alone; the fold is committed
            metrics.FOLD_FAILURES.labels("prune").inc()
            log.warning("index %s: pruning restore points failed; retried later", index.id, exc_info=True)
