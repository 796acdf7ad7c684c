"""When an index's materializer folds: its background loop.

Idle, it polls the log ever less often (up to ``materialize_idle_interval``: writes from other
processes are found that way; this process's own writes wake it at once); after a fold it lets
writes pile up for one ``materialize_interval`` (a Lance commit per append would leave thousands
of versions and fragments behind); a backlog is folded at once; failures back off; a corrupt event
stops this index's folding for good, and a lost lease hands it to the process that took it.
After ``materialize_idle_exit`` seconds without a fold it parks: no polling, its lease released
and its activity mark removed, until a write or a mark wakes it (``activity.py``).
"""

from __future__ import annotations

import logging
import math

from engine import metrics
from engine.errors import CorruptEvent, LeaseLost
from engine.materialize import activity
from engine.materialize.materializer import Materializer

log = logging.getLogger("vecledger.materializer")


async def keep_folding(m: Materializer) -> None:
    """Fold ``m``'s index forever (until cancelled, or a corrupt event, which it raises)."""
    settings = m.settings
    clock = m.store.clock
    base = settings.materialize_interval
    delay = base
    busy_at = clock.monotonic()  # when the last fold that found work started
    while True:
        try:
            started = clock.monotonic()
            folded = await m.run_once()
            if folded >= settings.fold_max_events:
                busy_at = started
                continue  # a backlog: keep folding
            if folded:
                busy_at = started
                delay = base
                await clock.sleep(base)
                continue
            if clock.monotonic() - busy_at >= settings.materialize_idle_exit and await _park(m):
                busy_at, delay = clock.monotonic(), base
                continue
            delay = min(settings.materialize_idle_interval, delay * 2)
            if m.lease is not None:
                # Leading: renew the lease (each run does) before it lapses, or the index would hop
                # between processes without ever settling and parking. Not leading: check back
                # often enough to take over within the lease time if the holder dies.
                delay = min(delay, m.lease.duration / (3 if m.leading else 4))
        except CorruptEvent:
            metrics.FOLD_FAILURES.labels("corrupt").inc()
            idx = m.index
            log.exception(
                "index %s/%s/%s (%s): corrupt event; materializer stopped",
                *(idx.account, idx.bucket_name, idx.name, idx.id),
            )
            raise
        except LeaseLost as e:
            metrics.FOLD_FAILURES.labels("lease_lost").inc()
            log.warning("index %s: materializer lease lost (%s); another process folds it now", m.index.id, e)
            delay = base
        except Exception:  # any other failure of one fold: log it, back off, fold again
            metrics.FOLD_FAILURES.labels("error").inc()
            log.exception("index %s: fold failed; retrying in %.1fs", m.index.id, delay)
            delay = min(settings.materialize_idle_interval, delay * 2)
        if await m.woken(delay):
            delay = base


async def _park(m: Materializer) -> bool:
    """Stop polling until woken, if nothing is left to do; False if there is (fold on)."""
    if m.leading and m.checkpoint is not None:
        if not m.settled:
            return False  # index upkeep the writes deferred is still to come
        if not await activity.settle(m.store, m.index, m.checkpoint.seq):
            return False
        await m.release()
    metrics.PARKED.inc()
    m.parked = True
    try:
        await m.woken(math.inf)
    finally:
        m.parked = False
        metrics.PARKED.dec()
    return True
