"""Idle indexes cost nothing: parked materializers make no store requests, a process polls only
the catalog and the activity marks, and writes that another process logged (or that a crash left
unfolded) are found through their marks and folded without a request for the index; an idle index
is closed when cold and opened again, as fresh as ever, by the next request."""

from __future__ import annotations

from dataclasses import replace

import anyio
import numpy as np

from engine import Engine, IndexRef, keys
from engine.log import tail_seq
from engine.materialize import activity
from engine.materialize.checkpoint import read_checkpoint
from engine.store import FaultyStore
from engine.store.faulty import Fault
from tests.backends import Backend
from tests.helpers import ACCOUNT, BUCKET, CTX

INDEXES = 12
IDLE_EXIT, POLL = 0.5, 0.3


def ref(n: int) -> IndexRef:
    return IndexRef(ACCOUNT, BUCKET.name, f"tenant-{n:02d}")


async def folded(eng: Engine, r: IndexRef) -> bool:
    index = await eng.get_index(r)
    prefix = keys.index_log(index.bucket_id, index.id)
    return (await read_checkpoint(eng.store, index)).seq == await tail_seq(eng.store, prefix)


async def until(check: object, timeout: float = 30.0) -> None:
    with anyio.fail_after(timeout):
        while not await check():  # type: ignore[operator]
            await anyio.sleep(0.1)


async def test_idle_indexes_make_no_requests_and_marks_bring_writes_to_fold(backend: Backend) -> None:
    settings = backend.with_settings(materialize_idle_exit=IDLE_EXIT, materialize_idle_interval=POLL).settings
    calls: list[tuple[str, str]] = []

    def record(verb: str, key: str) -> Fault | None:
        calls.append((verb, key))
        return None

    store = FaultyStore(await backend.store(), record)
    rng = np.random.default_rng(3)
    async with Engine.open(backend.root, settings, store=store) as eng:
        await eng.create_bucket(CTX, BUCKET)
        for n in range(INDEXES):
            await eng.create_index(CTX, ref(n), dimension=4, metric="euclidean")
            await eng.put_vectors(CTX, ref(n), ["a", "b"], rng.standard_normal((2, 4)).astype(np.float32), [None] * 2)

        async def all_folded_and_unmarked() -> bool:
            done = [await folded(eng, ref(n)) for n in range(INDEXES)]
            return all(done) and not await activity.marked(eng.store)

        await until(all_folded_and_unmarked)
        await anyio.sleep(IDLE_EXIT + 4 * POLL)  # every materializer parks
        calls.clear()
        await anyio.sleep(10 * POLL)
        per_index = [c for c in calls if c[1].startswith(keys.DATA)]
        assert not per_index, per_index[:10]
        assert len(calls) <= 2 * 12, calls  # a catalog probe and a listing of the marks per poll

    # A process that does not materialize (an API node with --no-materialize) writes to one index...
    quiet = backend.with_settings(run_materializers=False).settings
    async with Engine.open(backend.root, quiet) as writer:
        await writer.put_vectors(CTX, ref(5), ["late"], np.ones((1, 4), np.float32), [None])
        assert await activity.marked(writer.store)
        assert not await folded(writer, ref(5))
    # ... and a materializing process started later folds it, though nobody asks for that index.
    closing = replace(settings, index_close_after=IDLE_EXIT)
    async with Engine.open(backend.root, closing) as eng:
        await until(lambda: folded(eng, ref(5)))
        index = await eng.get_index(ref(5))
        assert [i for i, live in eng.indexes.runtime.open_indexes().items()] == [index.id]

        async def unmarked_and_closed() -> bool:
            return not await activity.marked(eng.store) and not eng.indexes.runtime.open_indexes()

        await until(unmarked_and_closed)  # parked, then closed when cold
        # Another process writes to the closed index: the next read here sees it.
        async with Engine.open(backend.root, quiet) as writer:
            await writer.put_vectors(CTX, ref(5), ["fresh"], np.zeros((1, 4), np.float32), [None])
        assert [r.key for r in await eng.get_vectors(ref(5), ["fresh", "late", "a"])] == ["fresh", "late", "a"]
