"""The filter language: Lance SQL and the in-memory predicate must agree on every operator.

The same filters run against a real Lance dataset (through the materializer's row layout) and
against the Python predicate used for the tail; both must give the expected keys.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from engine.dataset import LanceDataset
from engine.errors import ValidationError
from engine.log.payload import VectorBatch
from engine.materialize.rows import rows_table
from engine.query.filters import compile_filter
from engine.settings import IndexTuning
from tests.backends import Backend

CORPUS: dict[str, dict[str, Any] | None] = {
    "a": {"genre": "doc", "year": 2020, "tags": ["x", "y"], "ok": True, "score": 1.5},
    "b": {"genre": "drama", "year": 2021.0, "tags": ["y"], "ok": False},
    "c": {"genre": ["doc", "news"], "year": "2022", "score": -3},
    "d": {"year": 2019, "note": "private", "n": None},
    "e": None,
    "f": {"genre": "it's", "tags": [], "score": 1e300, "nested": {"a": 1}},
    "g": {"genre": "Doc", "year": 2020.5, "ok": 1, "tags": ["x", 3, True]},
}

CASES: list[tuple[Any, set[str]]] = [
    ({"genre": "doc"}, {"a", "c"}),
    ({"genre": {"$eq": "doc"}}, {"a", "c"}),
    ({"genre": {"$ne": "doc"}}, {"b", "d", "e", "f", "g"}),
    ({"year": 2020}, {"a"}),
    ({"year": 2021}, {"b"}),
    ({"year": "2022"}, {"c"}),
    ({"year": {"$gt": 2020}}, {"b", "g"}),
    ({"year": {"$gte": 2020}}, {"a", "b", "g"}),
    ({"year": {"$lt": 2020}}, {"d"}),
    ({"year": {"$lte": 2020.5}}, {"a", "d", "g"}),
    ({"year": {"$gte": 2020, "$lt": 2021}}, {"a", "g"}),
    ({"score": {"$gt": 1e299}}, {"f"}),
    ({"score": {"$lt": 0}}, {"c"}),
    ({"tags": "y"}, {"a", "b"}),
    ({"tags": {"$in": ["x", "zzz"]}}, {"a", "g"}),
    ({"tags": {"$nin": ["x"]}}, {"b", "c", "d", "e", "f"}),
    ({"tags": 3}, {"g"}),
    ({"tags": True}, {"g"}),
    ({"ok": True}, {"a"}),
    ({"ok": False}, {"b"}),
    ({"ok": 1}, {"g"}),
    ({"genre": {"$in": ["drama", "it's"]}}, {"b", "f"}),
    ({"genre": "it's"}, {"f"}),
    ({"genre": {"$exists": True}}, {"a", "b", "c", "f", "g"}),
    ({"genre": {"$exists": False}}, {"d", "e"}),
    ({"n": {"$exists": True}}, {"d"}),
    ({"nested": {"$exists": True}}, {"f"}),
    # $startsWith (ENHANCED indexes): scalar strings only, case-sensitive, quotes and LIKE
    # wildcards taken literally; a list's elements and non-strings never match.
    ({"genre": {"$startsWith": "d"}}, {"a", "b"}),
    ({"genre": {"$startsWith": "dra"}}, {"b"}),
    ({"genre": {"$startsWith": "D"}}, {"g"}),
    ({"genre": {"$startsWith": "it'"}}, {"f"}),
    ({"genre": {"$startsWith": "%"}}, set()),
    ({"genre": {"$startsWith": ""}}, {"a", "b", "f", "g"}),
    ({"year": {"$startsWith": "20"}}, {"c"}),
    ({"$and": [{"genre": "doc"}, {"year": {"$gte": 2020}}]}, {"a"}),
    ({"$or": [{"genre": "drama"}, {"score": {"$lt": 0}}]}, {"b", "c"}),
    ({"$or": [{"$and": [{"ok": True}, {"tags": "x"}]}, {"year": 2019}]}, {"a", "d"}),
    ({"genre": "doc", "tags": "x"}, {"a"}),
    ({"year": {"$gt": 3000}}, set()),
    ({"missing": {"$ne": 1}}, set(CORPUS)),
]

INVALID: list[Any] = [
    {},
    [],
    "genre",
    {"genre": ["doc"]},
    {"genre": {"$gt": "a"}},
    {"year": {"$gte": True}},
    {"genre": {"$in": []}},
    {"genre": {"$in": "doc"}},
    {"genre": {"$in": [["x"]]}},
    {"genre": {"$exists": 1}},
    {"genre": {"$regex": "d.*"}},
    {"genre": {}},
    {"$and": []},
    {"$or": {"genre": "doc"}},
    {"$not": {"genre": "doc"}},
    {"genre": {"$eq": None}},
    {"genre": {"$eq": {"a": 1}}},
    {"note": "private"},  # non-filterable
    {"note": {"$startsWith": "p"}},  # non-filterable
    {"genre": {"$startsWith": 1}},
    {"score": {"$gt": float("nan")}},
    {"score": {"$lt": float("inf")}},
]


def _deep(n: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"genre": "doc"}
    for _ in range(n):
        doc = {"$and": [doc]}
    return doc


@pytest.fixture
def dataset(backend: Backend) -> Any:
    rows = VectorBatch(
        list(CORPUS),
        np.array([np.full(4, i, np.float32) for i in range(len(CORPUS))]),
        [json.dumps(m) if m is not None else None for m in CORPUS.values()],
    )
    location = backend.lance_location("filters/lance")
    ds = LanceDataset(location, 4, "euclidean", IndexTuning())
    ds.apply(rows_table(rows, ("note",)), [])
    return ds.snapshot()


@pytest.mark.parametrize(("doc", "expected"), CASES, ids=[json.dumps(c[0]) for c in CASES])
def test_lance_and_predicate_agree(dataset: Any, doc: Any, expected: set[str]) -> None:
    flt = compile_filter(doc, ("note",))
    in_memory = {k for k, m in CORPUS.items() if flt.predicate(m or {})}
    in_lance = set(dataset.to_table(columns=["key"], filter=flt.sql).column("key").to_pylist())
    assert in_memory == expected
    assert in_lance == expected


@pytest.mark.parametrize("doc", INVALID, ids=[repr(d) for d in INVALID])
def test_invalid_filters_are_rejected(doc: Any) -> None:
    with pytest.raises(ValidationError) as err:
        compile_filter(doc, ("note",))
    assert err.value.message.startswith("Invalid query filter")


def test_nesting_and_size_are_bounded() -> None:
    compile_filter(_deep(8))
    with pytest.raises(ValidationError):
        compile_filter(_deep(12))
    compile_filter({"$or": [{"k": i} for i in range(999)]}, enhanced=False)
    with pytest.raises(ValidationError, match="at most 1000 conditions"):
        compile_filter({"$or": [{"k": i} for i in range(2000)]}, enhanced=False)
    # $in and $nin terms count as conditions: a filter of 60,000 terms once crashed the server.
    compile_filter({"k": {"$in": list(range(900))}})
    for op in ("$in", "$nin"):
        with pytest.raises(ValidationError, match="counting each"):
            compile_filter({"k": {op: [str(i) for i in range(60_000)]}})


def test_an_enhanced_index_allows_100_filter_constraints() -> None:
    """As AWS documents for ENHANCED indexes; one operator on one key is one constraint, however
    many terms its ``$in`` holds. CLASSIC keeps the larger bound."""
    compile_filter({"$or": [{"k": i} for i in range(99)] + [{"n": {"$gte": 1}}]})
    compile_filter({"$and": [{f"k{i}": {"$in": list(range(5))}} for i in range(100)]})
    over = {"$and": [{"k": {"$ne": i}} for i in range(100)] + [{"n": {"$gte": 1}}]}
    with pytest.raises(ValidationError, match="at most 100 filter constraints"):
        compile_filter(over)
    with pytest.raises(ValidationError, match="at most 100 filter constraints"):
        compile_filter({"$or": [{"n": {"$gte": i, "$lt": i + 1}} for i in range(51)]})
    compile_filter(over, enhanced=False)


@pytest.mark.parametrize(
    "doc",
    [{"n": 10**400}, {"n": {"$gt": 10**400}}, {"n": {"$lte": -(10**309)}}, {"n": {"$in": [1, 10**400]}}],
    ids=["eq", "gt", "lte", "in"],
)
def test_integers_past_a_doubles_range_are_a_validation_error(doc: Any) -> None:
    """Not a 500 (Python's float() of them raises OverflowError)."""
    with pytest.raises(ValidationError, match="Invalid query filter"):
        compile_filter(doc)
    compile_filter({"n": 2**1000})  # large, but a double holds it: a valid filter


def test_a_dataset_from_before_starts_with_gains_the_column_at_its_next_fold(backend: Backend) -> None:
    """An index folded before the ``strings`` and ``prefixes`` columns existed: until its next fold
    ``$startsWith`` reads it without the ``prefixes`` guard; that fold derives both columns for
    every old row from the stored metadata (non-filterable keys left out), so ``$startsWith``
    finds them too."""
    import lance  # here only to write the old layout, as an older vecledger did

    from engine.materialize.rows import strings_of

    location = backend.lance_location("filters/lance")
    old = rows_table(
        VectorBatch(["old", "hidden"], np.ones((2, 4), np.float32), ['{"p": "docs/a"}', '{"note": "docs/b"}']),
        ("note",),
    ).drop_columns(["strings", "prefixes"])
    old = old.append_column("text", pa.array([None, None], pa.string()))
    lance.write_dataset(old, location.uri, storage_options=location.storage_options or None)
    ds = LanceDataset(location, 4, "euclidean", IndexTuning(), strings_of(("note",)))
    ds.open()
    flt = compile_filter({"p": {"$startsWith": "docs/"}}, ("note",))
    names = ds.snapshot().schema.names
    assert "strings" not in names and "prefixes" not in names
    assert flt.sql_for(names) == flt.unguarded_sql != flt.sql
    new = VectorBatch(["new"], np.ones((1, 4), np.float32), ['{"p": "docs/c"}'])
    ds.apply(rows_table(new, ("note",)), [])
    assert {"strings", "prefixes"} <= set(ds.snapshot().schema.names)
    assert set(ds.snapshot().to_table(columns=["key"], filter=flt.sql).column("key").to_pylist()) == {"old", "new"}


def test_large_filters_compile_off_the_event_loop_to_the_same_result() -> None:
    """Up to 64 members a filter compiles inline (microseconds); a larger one, up to the 1,000
    conditions a CLASSIC index allows (~4 ms), in a worker thread. Counting never walks a huge list."""
    import threading

    import anyio

    from engine.catalog.state import Index
    from engine.facade import vector_ops

    index = Index("i", "b", "bucket", "111122223333", "idx", 0.0, 4, "cosine", mode="CLASSIC")
    small, large = {"genre": "doc"}, {"$or": [{f"k{i}": i} for i in range(999)]}
    assert vector_ops._items(small, 64) <= 64 < vector_ops._items(large, 64)
    assert vector_ops._items({"k": {"$in": list(range(2_000_000))}}, 64) > 64
    threads: list[str] = []
    real = vector_ops.compile_filter

    def spy(*args: Any, **kw: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(*args, **kw)

    vector_ops.compile_filter = spy  # type: ignore[assignment]
    try:
        for doc in (small, large):
            got = anyio.run(vector_ops._compiled, doc, index)
            assert got is not None and got.sql == real(doc, enhanced=False).sql
    finally:
        vector_ops.compile_filter = real  # type: ignore[assignment]
    assert threads[0] == threading.main_thread().name and threads[1] != threading.main_thread().name
