"""Log retention: the head of an index's log is dropped only behind a pinned restore point; what
is left restores exactly, what is gone is refused with the oldest restorable time, the audit says
what was dropped under whose setting, and a restart appends after the truncated log."""

from __future__ import annotations

import time

import anyio
import numpy as np
import pytest

from engine import Engine, IndexRef, keys
from engine.audit.query import AuditQuery
from engine.clock import ManualClock
from engine.dataset import POINT, tags
from engine.errors import LogTruncated, ValidationError
from engine.log.start import read_start
from engine.materialize.log_retention import base_for
from engine.materialize.restore_points import Point
from tests.backends import Backend
from tests.engine.test_restore_points import HOUR, churn, state
from tests.helpers import ACCOUNT, BUCKET, CTX, INDEX, make_index


async def log_seqs(eng: Engine, ref: IndexRef) -> list[int]:
    live = await eng.live(ref)
    prefix = keys.index_log(live.index.bucket_id, live.index.id)
    return [keys.seq_of(i.key) async for i in eng.store.list(prefix)]


def test_the_base_is_the_newest_point_older_than_the_retention() -> None:
    points = {s: Point(s, s + 1, 1000.0 + 100 * s) for s in range(10)}
    assert base_for(points, now=1500.0, retention=1000.0, current=None) is None  # none is that old
    assert base_for(points, now=2450.0, retention=1000.0, current=None) == points[4]


async def test_log_retention_drops_only_what_a_point_covers(backend: Backend) -> None:
    clock = ManualClock(start=time.time())
    settings = backend.with_settings(run_materializers=False, version_grace=1.0, prune_interval=1e9)
    rng = np.random.default_rng(9)
    async with settings.engine(clock=clock) as eng:
        await make_index(eng, dimension=4)
        with pytest.raises(ValidationError, match="logRetentionSeconds"):
            await eng.set_index_retention(CTX, INDEX, {"log_retention": -1.0})
        await eng.set_index_retention(CTX, INDEX, {"log_retention": 2 * HOUR})
        live = await eng.live(INDEX)

        # Writes three hours old, but folded only now: no point is older than the retention, so
        # no log object may go, however old it is.
        vectors = rng.standard_normal((5, 4)).astype(np.float32)
        await eng.put_vectors(CTX, INDEX, [f"k{i}" for i in range(5)], vectors, [None] * 5)
        clock.advance(3 * HOUR)
        await eng.materialize(INDEX)
        await anyio.sleep(1.2)
        await live.materializer.prune()
        assert (await log_seqs(eng, INDEX))[0] == 0
        assert await read_start(eng.store, live.prefix) is None

        history = await churn(eng, clock, 12, rng)  # four hours of points, 20 minutes apart
        await anyio.sleep(1.2)
        await live.materializer.prune()
        start = await read_start(eng.store, live.prefix)
        assert start is not None and start.base_seq > 0
        assert start.set_by == CTX.principal and start.retention == 2 * HOUR
        assert start.base_time <= clock.now() - 2 * HOUR
        seqs = await log_seqs(eng, INDEX)
        assert seqs[0] == start.seq and seqs == list(range(start.seq, seqs[-1] + 1))
        pinned = await anyio.to_thread.run_sync(tags, live.materializer.dataset.location, POINT)
        assert f"{POINT}{keys.seq_name(start.base_seq)}" in pinned  # the base stays pinned

        # Before the base: refused, naming the oldest restorable time; from it on: exact.
        too_early = [(seq, want) for seq, want in history if seq < start.base_seq]
        later = [(seq, want) for seq, want in history if seq >= start.base_seq]
        assert too_early and later
        with pytest.raises(LogTruncated, match="oldest restorable point"):
            await eng.restore_index(CTX, INDEX, IndexRef(ACCOUNT, BUCKET.name, "early"), to_seq=too_early[0][0])
        with pytest.raises(LogTruncated, match="oldest restorable point"):
            await eng.restore_index(CTX, INDEX, IndexRef(ACCOUNT, BUCKET.name, "then"), to_time=start.base_time - 1)
        for n, (seq, want) in enumerate([later[0], later[-1]]):
            ref = IndexRef(ACCOUNT, BUCKET.name, f"back-{n}")
            await eng.restore_index(CTX, INDEX, ref, to_seq=seq)
            assert await state(eng, ref) == want, f"restore to seq {seq}"
        report = await eng.replay_check(INDEX)
        assert report.ok and report.from_seq == start.seq, report.mismatches

        records = await eng.audit_records(AuditQuery(account=ACCOUNT, index=INDEX.name))
        dropped = [r for r in records if r.operation == "DropIndexLogHead"]
        assert len(dropped) == 1 and dropped[0].principal == CTX.principal
        assert dropped[0].detail["dropped_before_seq"] == start.seq
        puts = [r for r in records if r.operation == "PutVectors"]
        assert puts and min(r.seq for r in puts) == start.seq  # what is left is still audited
        last = history[-1][0]

    # A restart finds the end of the truncated log and appends after it.
    async with settings.engine(clock=clock) as eng:
        await eng.put_vectors(CTX, INDEX, ["after"], np.ones((1, 4), np.float32), [None])
        status = await eng.index_status(INDEX)
        assert status.log_seq == last + 1
        assert [r.key for r in await eng.get_vectors(INDEX, ["after"])] == ["after"]
