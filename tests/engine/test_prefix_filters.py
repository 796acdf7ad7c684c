"""``$startsWith`` through the ``prefixes`` column and its NGRAM index: exact for any key and
value (the column's delimiters escaped), the same with and without the index, and the index built
only once a query asks for it on a large enough dataset."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from engine.dataset import PREFIX_INDEX, LanceDataset, wants_prefix_index
from engine.log.payload import VectorBatch
from engine.materialize.rows import rows_table
from engine.query.filters import compile_filter
from engine.settings import IndexTuning
from tests.backends import Backend
from tests.helpers import CTX, INDEX, make_index

# Keys and values holding the column's own delimiters and escape character.
CORPUS: dict[str, dict[str, Any]] = {
    "h": {"path": "a\x03b\x02c", "p\x03x": "q", "n": 1},
    "i": {"path": "a", "x": "\x02path\x03a"},
    "j": {"path": "\x01a", "pa": "th"},
    "k": {"path": ["a"], "other": "a"},
    "l": {"pat": "h\x03a", "path": "b"},
}
CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({"path": {"$startsWith": "a"}}, {"h", "i"}),
    ({"path": {"$startsWith": "a\x03b"}}, {"h"}),
    ({"path": {"$startsWith": "a\x03b\x02c"}}, {"h"}),
    ({"path": {"$startsWith": "\x01"}}, {"j"}),
    ({"path": {"$startsWith": "\x01a"}}, {"j"}),
    ({"p": {"$startsWith": "x"}}, set()),
    ({"p\x03x": {"$startsWith": "q"}}, {"h"}),
    ({"x": {"$startsWith": "\x02path"}}, {"i"}),
    ({"pat": {"$startsWith": "h"}}, {"l"}),
    ({"$or": [{"path": {"$startsWith": "b"}}, {"pa": {"$startsWith": "t"}}]}, {"j", "l"}),
    ({"path": {"$startsWith": ""}}, {"h", "i", "j", "l"}),
    ({"$and": [{"path": {"$startsWith": "a"}}, {"n": 1}]}, {"h"}),
]


def _dataset(backend: Backend, tuning: IndexTuning) -> LanceDataset:
    rows = VectorBatch(list(CORPUS), np.ones((len(CORPUS), 4), np.float32), [json.dumps(m) for m in CORPUS.values()])
    ds = LanceDataset(backend.lance_location("prefixes/lance"), 4, "euclidean", tuning)
    ds.apply(rows_table(rows, ()), [])
    return ds


def _keys(snapshot: Any, sql: str) -> set[str]:
    return set(snapshot.to_table(columns=["key"], filter=sql).column("key").to_pylist())


@pytest.mark.parametrize(("doc", "expected"), CASES, ids=[repr(c[0]) for c in CASES])
def test_starts_with_is_exact_with_and_without_the_guard_and_the_index(
    backend: Backend, doc: dict[str, Any], expected: set[str]
) -> None:
    ds = _dataset(backend, replace(IndexTuning(), prefix_index_rows=1))
    flt = compile_filter(doc)
    assert flt.unguarded_sql is not None and "contains(prefixes" in flt.sql
    assert {k for k, m in CORPUS.items() if flt.predicate(m)} == expected
    assert _keys(ds.snapshot(), flt.sql) == expected
    assert _keys(ds.snapshot(), flt.unguarded_sql) == expected

    assert ds.maintain() == []  # no query asked for the index
    ds.prefix_wanted = True
    assert "prefix_index" in ds.maintain()
    assert not ds.prefix_wanted and not wants_prefix_index(ds.snapshot(), ds.tuning)
    assert _keys(ds.snapshot(), flt.sql) == expected
    if "$or" not in doc:  # (Lance answers an OR from an index only if every branch is indexed)
        plan = ds.snapshot().scanner(filter=flt.sql, columns=["key"]).explain_plan()
        assert PREFIX_INDEX in plan, plan  # the index, not a scan of the column, finds the candidates


async def test_a_starts_with_query_on_a_large_index_builds_the_prefix_index(backend: Backend) -> None:
    tuned = backend.with_tuning(build_threshold=10_000, prefix_index_rows=300)
    async with tuned.with_settings(run_materializers=False).engine() as eng:
        await make_index(eng, dimension=4)
        rng = np.random.default_rng(4)
        metas = [{"path": f"docs/{i % 7}/{i}"} for i in range(400)]
        await eng.put_vectors(CTX, INDEX, [f"k{i}" for i in range(400)], rng.standard_normal((400, 4)), metas)
        await eng.materialize(INDEX)
        live = await eng.live(INDEX)
        assert wants_prefix_index(live.reader, eng.settings.tuning)
        flt = {"path": {"$startsWith": "docs/3/"}}
        want = {f"k{i}" for i in range(400) if i % 7 == 3}
        got = await eng.query_vectors(INDEX, np.zeros(4), 100, filter=flt)
        assert {h.key for h in got} == want
        assert live.materializer.dataset.prefix_wanted  # asked, not built in the query
        await live.materializer.run_once()
        assert "prefix_index" in live.materializer.last_maintenance
        assert not wants_prefix_index(live.reader, eng.settings.tuning)
        got = await eng.query_vectors(INDEX, np.zeros(4), 100, filter=flt)
        assert {h.key for h in got} == want
