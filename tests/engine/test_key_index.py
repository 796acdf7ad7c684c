"""Lookups by key read the BTREE on ``key`` once an index is large enough: GetVectors, and the
deletes and overwrites of each fold, stay exact across rows the index does not cover yet."""

from __future__ import annotations

import numpy as np

from engine.dataset import KEY_INDEX
from tests.backends import Backend
from tests.helpers import CTX, INDEX, make_index


async def test_the_key_index_is_built_past_its_threshold_and_serves_lookups(backend: Backend) -> None:
    tuned = backend.with_tuning(build_threshold=10_000, key_index_rows=300, optimize_unindexed_rows=100)
    async with tuned.with_settings(run_materializers=False).engine() as eng:
        await make_index(eng, dimension=4)
        rng = np.random.default_rng(8)
        first = rng.standard_normal((200, 4)).astype(np.float32)
        await eng.put_vectors(CTX, INDEX, [f"k{i}" for i in range(200)], first, [{"n": i} for i in range(200)])
        await eng.materialize(INDEX)
        live = await eng.live(INDEX)
        assert KEY_INDEX not in {i["name"] for i in live.reader.list_indices()}  # 200 rows: a scan

        more = rng.standard_normal((200, 4)).astype(np.float32)
        await eng.put_vectors(CTX, INDEX, [f"k{i}" for i in range(200, 400)], more, [{"n": i} for i in range(200, 400)])
        await eng.materialize(INDEX)
        assert KEY_INDEX in {i["name"] for i in live.reader.list_indices()}
        plan = live.reader.scanner(filter="key IN ('k7')", columns=["key"]).explain_plan()
        assert KEY_INDEX in plan, plan

        # Overwrites, deletes and new rows (50: outside the index until 100 pile up), all folded.
        await eng.put_vectors(CTX, INDEX, ["k7", "new0"], np.ones((2, 4), np.float32), [{"n": -1}, {"n": -2}])
        await eng.delete_vectors(CTX, INDEX, ["k8", "k300"])
        await eng.materialize(INDEX)
        wanted = ["k7", "k8", "k9", "k300", "k399", "new0", "nope"]
        got = await eng.get_vectors(INDEX, wanted, return_data=True, return_metadata=True)
        assert [r.key for r in got] == ["k7", "k9", "k399", "new0"]
        by_key = {r.key: r for r in got}
        assert by_key["k7"].metadata == {"n": -1} and by_key["k9"].metadata == {"n": 9}
        assert np.array_equal(np.asarray(by_key["k399"].vector, np.float32), more[199])
