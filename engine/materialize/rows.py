"""What a fold hands Lance: rows in the dataset's schema.

The filter columns (``tokens``, ``numbers``, ``strings``, ``prefixes``) and ``key_hash`` are derived
here from each row's metadata and key, so that every fold, replay and restore derives them the same
way.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from engine.dataset import key_hash
from engine.log.payload import VectorBatch, parse_metadata, vectors_array
from engine.query.filters import index_terms


def rows_table(rows: VectorBatch, non_filterable: tuple[str, ...]) -> pa.Table:
    """Rows in the dataset's schema, with the filter columns derived from the metadata."""
    tokens, numbers, strings, prefixes = [], [], [], []
    for meta in rows.metadata:
        t, n, s, p = index_terms(parse_metadata(meta), non_filterable)
        tokens.append(t)
        numbers.append(n)
        strings.append(s)
        prefixes.append(p)
    return pa.table(
        {
            "key": pa.array(rows.keys, pa.string()),
            "vector": vectors_array(rows.vectors),
            "metadata": pa.array(rows.metadata, pa.string()),
            "tokens": pa.array(tokens, pa.list_(pa.string())),
            "numbers": pa.array(numbers, pa.json_()),
            "key_hash": pa.array([key_hash(k) for k in rows.keys], pa.uint32()),
            "strings": pa.array(strings, pa.json_()),
            "prefixes": pa.array(prefixes, pa.string()),
        }
    )


def strings_of(non_filterable: tuple[str, ...]) -> Callable[[str | None], tuple[str, str]]:
    """The ``strings`` and ``prefixes`` values of a row from its stored metadata: the backfill of
    datasets written before those columns existed (``LanceDataset.apply``)."""
    return lambda meta: index_terms(parse_metadata(meta), non_filterable)[2:]
