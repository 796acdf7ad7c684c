"""GetVectors reads rows by address from the in-memory key map (``row_keys``), not through a
filter: exact across folds that overwrite, delete and re-add keys, across compaction, and for keys
whose hashes collide."""

from __future__ import annotations

import zlib

import numpy as np

from engine.dataset import row_keys
from tests.backends import Backend
from tests.helpers import CTX, INDEX, make_index


async def test_lookups_by_key_stay_exact_across_overwrites_deletes_and_collisions(backend: Backend) -> None:
    assert zlib.crc32(b"plumless") == zlib.crc32(b"buckeroo")  # the two keys share a key_hash
    tuned = backend.with_tuning(compact_fragments=4, settled_fragments=4)
    async with tuned.with_settings(run_materializers=False).engine() as eng:
        await make_index(eng, dimension=4)
        rng = np.random.default_rng(3)
        keys = [f"k{i}" for i in range(300)] + ["plumless"]
        first = rng.standard_normal((len(keys), 4)).astype(np.float32)
        await eng.put_vectors(CTX, INDEX, keys, first, [{"n": i} for i in range(len(keys))])
        await eng.materialize(INDEX)
        live = await eng.live(INDEX)
        row_keys.load(live.reader)  # the map holds the first fragment, with k5 and k6 live

        # Later folds: an overwrite (the row moves to a new fragment), deletes, a re-added key, and
        # the colliding key; each leaves deleted rows behind in the map of the first fragment.
        await eng.put_vectors(CTX, INDEX, ["k5", "buckeroo"], np.ones((2, 4), np.float32), [{"n": -5}, {"n": -1}])
        await eng.delete_vectors(CTX, INDEX, ["k6", "k7"])
        await eng.materialize(INDEX)
        await eng.put_vectors(CTX, INDEX, ["k7"], np.full((1, 4), 7, np.float32), [{"n": -7}])
        await eng.materialize(INDEX)
        assert len(live.tail) == 0  # everything below is read from Lance

        wanted = ["k5", "k6", "k7", "k8", "plumless", "buckeroo", "absent", "k5"]
        expected = ["k5", "k7", "k8", "plumless", "buckeroo"]

        async def check() -> None:
            assert len(row_keys.addresses_of(live.reader, wanted)) >= len(expected)  # the map finds them...
            got = await eng.get_vectors(INDEX, wanted, return_data=True, return_metadata=True)
            assert [r.key for r in got] == expected  # ...and the take drops the rows deleted since
            by_key = {r.key: r for r in got}
            assert by_key["k5"].metadata == {"n": -5} and by_key["k7"].metadata == {"n": -7}
            assert by_key["plumless"].metadata == {"n": 300} and by_key["buckeroo"].metadata == {"n": -1}
            assert np.array_equal(np.asarray(by_key["k8"].vector, np.float32), first[8])
            assert np.array_equal(np.asarray(by_key["k7"].vector, np.float32), np.full(4, 7, np.float32))

        before = {f.fragment_id for f in live.reader.get_fragments()}
        assert len(before) == 3
        await check()

        # A fourth fragment: compaction rewrites them all, and the map follows the new ones.
        await eng.put_vectors(CTX, INDEX, ["late"], np.zeros((1, 4), np.float32), [{"n": 0}])
        await eng.materialize(INDEX)
        after = {f.fragment_id for f in live.reader.get_fragments()}
        assert after.isdisjoint(before), (before, after)
        await check()
        got = await eng.get_vectors(INDEX, ["late", "k299"], return_metadata=True)
        assert [(r.key, r.metadata) for r in got] == [("late", {"n": 0}), ("k299", {"n": 299})]
