"""On S3 a serving process copies the Lance files its indexes read to local disk (the cache tier,
``engine/dataset/mirror.py``): a warm query or GetVectors then costs the store only the freshness
probes of the catalog's log and the index's, counted at a proxy in front of moto (so Lance's own
requests count too). The copies stay within their budget, an index that does not fit is read from the store, and a
restart on the same cache folder fetches only what changed. On a local folder there is nothing to
copy: the same reads work without a mirror."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from tests.backends import Backend
from tests.helpers import CTX, INDEX, exact_top, make_index
from tools.bench.s3proxy import DelayProxy

N, D = 3_000, 16


@contextlib.contextmanager
def counted(backend: Backend) -> Iterator[tuple[Backend, DelayProxy | None]]:
    """The backend with its S3 requests going through a counting proxy (None on a folder)."""
    if backend.name != "s3":
        yield backend, None
        return
    upstream = backend.settings.s3.endpoint_url
    assert upstream is not None
    with DelayProxy(upstream) as proxy:
        yield backend.with_settings(s3=replace(backend.settings.s3, endpoint_url=proxy.url)), proxy


def _data() -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(9)
    return [f"k{i}" for i in range(N)], rng.standard_normal((N, D)).astype(np.float32)


async def test_warm_reads_cost_only_the_freshness_probes(backend: Backend, tmp_path: Path) -> None:
    names, vectors = _data()
    with counted(backend.with_tuning(build_threshold=1_000)) as (b, proxy):
        async with b.with_settings(run_materializers=False, cache_dir=str(tmp_path / "cache")).engine() as eng:
            await make_index(eng, dimension=D)
            await eng.put_vectors(CTX, INDEX, names, vectors, [{"n": i} for i in range(N)])
            await eng.materialize(INDEX)
            live = await eng.live(INDEX)
            if proxy is None:
                assert eng.runtime.mirror is None
            else:
                assert str(live.reader.uri).startswith(str(tmp_path / "cache")), live.reader.uri
            q = vectors[17] + 0.01
            for _ in range(2):  # warm: the second pass is counted
                before = proxy.count() if proxy else 0
                hits = await eng.query_vectors(INDEX, q, 10)
                got = await eng.get_vectors(INDEX, ["k5", "k2999"], return_data=True, return_metadata=True)
                spent = (proxy.count() if proxy else 0) - before
            assert hits[0].key == "k17"
            assert len({h.key for h in hits} & {names[i] for i in exact_top(vectors, q, 10)}) >= 8
            assert [(r.key, r.metadata) for r in got] == [("k5", {"n": 5}), ("k2999", {"n": 2999})]
            assert np.array_equal(np.asarray(got[1].vector, np.float32), vectors[2999])
            # Two reads, each probing the catalog's log and the index's once: nothing of Lance.
            assert spent <= 4, proxy.counts if proxy else spent

            # A write is read at once (from the tail), and after its fold from a renewed copy.
            await eng.put_vectors(CTX, INDEX, ["k5"], np.zeros((1, D), np.float32), [{"n": -5}])
            assert [r.metadata for r in await eng.get_vectors(INDEX, ["k5"], return_metadata=True)] == [{"n": -5}]
            await eng.materialize(INDEX)
            assert len(live.tail) == 0
            assert [r.metadata for r in await eng.get_vectors(INDEX, ["k5"], return_metadata=True)] == [{"n": -5}]
            fetched = eng.runtime.mirror.fetched_bytes if eng.runtime.mirror else 0

        if proxy is None:
            return
        # A restart on the same folder fetches only what is not there: the newest manifest at most.
        async with b.with_settings(run_materializers=False, cache_dir=str(tmp_path / "cache")).engine() as eng:
            got = await eng.get_vectors(INDEX, ["k5", "k6"], return_metadata=True)
            assert [(r.key, r.metadata) for r in got] == [("k5", {"n": -5}), ("k6", {"n": 6})]
            mirror = eng.runtime.mirror
            assert mirror is not None and mirror.used_bytes() > 0 and mirror.fetched_bytes < fetched / 10


async def test_an_index_over_the_budget_is_read_from_the_store(backend: Backend) -> None:
    names, vectors = _data()
    async with backend.with_settings(run_materializers=False, cache_bytes=50_000).engine() as eng:
        await make_index(eng, dimension=D)
        await eng.put_vectors(CTX, INDEX, names, vectors, [{"n": i} for i in range(N)])
        await eng.materialize(INDEX)
        live = await eng.live(INDEX)
        expected = "s3://" if backend.name == "s3" else str(Path(backend.root))
        assert str(live.reader.uri).startswith(expected), live.reader.uri
        assert eng.runtime.mirror is None or eng.runtime.mirror.used_bytes() == 0
        got = await eng.get_vectors(INDEX, ["k7"], return_data=True)
        assert np.array_equal(np.asarray(got[0].vector, np.float32), vectors[7])


async def test_closed_indexes_make_room_for_open_ones(backend: Backend) -> None:
    names, vectors = _data()
    async with backend.with_settings(run_materializers=False).engine() as eng:
        await make_index(eng, dimension=D)
        other = replace(INDEX, name="index-two")
        await eng.create_index(CTX, other, dimension=D, metric="euclidean")
        for ref in (INDEX, other):
            await eng.put_vectors(CTX, ref, names, vectors, [{} for _ in range(N)])
            await eng.materialize(ref)
        mirror = eng.runtime.mirror
        if mirror is None:
            assert backend.name == "local"
            return
        first = await eng.live(INDEX)
        both = mirror.used_bytes()  # two copies of about the same size
        mirror.budget = both * 3 // 4  # room for one, not two
        mirror.grace = 0.0  # (a closed index's copy waits 30 s for requests still reading it)
        first.close()  # closed: its copy may go
        # The next copy of the other index (after a fold) makes room by removing the first.
        await eng.put_vectors(CTX, other, ["new"], np.ones((1, D), np.float32), [{}])
        await eng.materialize(other)
        second = await eng.live(other)
        assert str(second.reader.uri).startswith(str(mirror.folder))
        assert mirror.used_bytes() <= mirror.budget
        assert not any(Path(first.reader.uri).rglob("*.manifest"))  # the first copy was removed
