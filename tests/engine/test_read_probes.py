"""A data read of a warm index costs one store request: its log's freshness probe. The catalog's
probe is skipped within ``catalog_staleness``, and what skipping it could miss is still seen by the
very next read: another process's deletion or re-creation of the index (marked in the index's own
log), and a bucket or index created elsewhere a moment ago (a miss on the recent state probes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import numpy as np
import pytest

from engine import Engine, IndexRef, keys
from engine.errors import IndexNotFound
from engine.store import FaultyStore
from engine.store.faulty import Fault
from tests.backends import Backend
from tests.helpers import ACCOUNT, BUCKET, CTX, INDEX

T = TypeVar("T")
OTHER = IndexRef(ACCOUNT, BUCKET.name, "index-two")
Q = np.zeros(4, dtype=np.float32)


def vectors(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 4)).astype(np.float32)


async def as_request(eng: Engine, staleness: float, read: Callable[[], Awaitable[T]]) -> T:
    """``read`` as the API runs a data read: one request scope, tolerating ``staleness``."""
    with eng.catalog.one_probe():
        eng.catalog.tolerate(staleness)
        return await read()


async def keys_of(eng: Engine, ref: IndexRef, staleness: float = 30.0) -> set[str]:
    hits = await as_request(eng, staleness, lambda: eng.query_vectors(ref, Q, 10))
    return {h.key for h in hits}


async def test_warm_reads_make_one_request_and_see_other_processes_changes_at_once(backend: Backend) -> None:
    calls: list[tuple[str, str]] = []

    def record(verb: str, key: str) -> Fault | None:
        calls.append((verb, key))
        return None

    quiet = backend.with_settings(materialize_idle_interval=600.0, run_materializers=False)
    async with backend.engine() as writer, quiet.engine(store=FaultyStore(await backend.store(), record)) as reader:
        await writer.create_bucket(CTX, BUCKET)
        await writer.create_index(CTX, INDEX, dimension=4, metric="euclidean")
        await writer.put_vectors(CTX, INDEX, ["a", "b", "c"], vectors(3, 1), [None] * 3)
        await writer.materialize(INDEX)

        assert await keys_of(reader, INDEX) == {"a", "b", "c"}  # opens the index: many requests
        index = await writer.get_index(INDEX)
        log = keys.index_log(index.bucket_id, index.id)

        def probes() -> list[str]:
            """The freshness probes made since the last look (leaving out what runs on a timer
            whatever the reads: lease renewals, the checkpoint poll of an index folded elsewhere)."""
            made = [key for _, key in calls if key.startswith((log, keys.CATALOG_LOG))]
            calls.clear()
            return made

        for _ in range(3):
            probes()
            assert await keys_of(reader, INDEX) == {"a", "b", "c"}
            assert [p.startswith(log) for p in probes()] == [True]
            found = await as_request(reader, 30.0, lambda: reader.get_vectors(INDEX, ["b"]))
            assert [r.key for r in found] == ["b"]
            assert [p.startswith(log) for p in probes()] == [True]

        # Strict reads (0 s) probe the catalog as well.
        assert await keys_of(reader, INDEX, staleness=0.0) == {"a", "b", "c"}
        assert [p.startswith(log) for p in probes()] == [False, True]

        # Another process's writes, and its deletion of the index, reach the next read.
        await writer.put_vectors(CTX, INDEX, ["d"], vectors(1, 2), [None])
        assert await keys_of(reader, INDEX) == {"a", "b", "c", "d"}
        await writer.delete_index(CTX, INDEX)
        with pytest.raises(IndexNotFound):
            await keys_of(reader, INDEX)

        # Re-created under the same name: the next read answers from the new index.
        await writer.create_index(CTX, INDEX, dimension=4, metric="euclidean")
        await writer.put_vectors(CTX, INDEX, ["fresh"], vectors(1, 3), [None])
        assert await keys_of(reader, INDEX) == {"fresh"}

        # Created elsewhere a moment ago: the recent state misses it, a probe finds it.
        await writer.create_index(CTX, OTHER, dimension=4, metric="euclidean")
        await writer.put_vectors(CTX, OTHER, ["x"], vectors(1, 4), [None])
        assert await keys_of(reader, OTHER) == {"x"}


async def test_a_deletion_by_a_process_that_never_opened_the_index_is_marked_too(backend: Backend) -> None:
    async with backend.engine() as writer, backend.engine() as reader:
        await writer.create_bucket(CTX, BUCKET)
        await writer.create_index(CTX, INDEX, dimension=4, metric="euclidean")
        await writer.put_vectors(CTX, INDEX, ["a"], vectors(1, 1), [None])
        assert await keys_of(reader, INDEX) == {"a"}
        index_id = (await writer.get_index(INDEX)).id
        async with backend.engine() as third:
            await third.delete_index(CTX, INDEX)  # not open there: marked through a bare appender
            assert third.runtime.get(index_id) is None
        with pytest.raises(IndexNotFound):
            await keys_of(reader, INDEX)
