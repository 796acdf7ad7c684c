"""The scalar indexes kept beside the vector and text indexes, and when each is built.

* ``key_idx``, a BTREE on ``key``: point lookups (GetVectors, and the deletes and ``merge_insert``
  of every fold, which match rows by key) read the index instead of scanning the key column. Built
  once an index holds ``key_index_rows`` rows: below that a scan costs about what the index does.
* ``prefix_idx``, an NGRAM index on ``prefixes`` for ``$startsWith`` (engine/query/filters.py):
  built only once a query asked for it (``prefix_wanted``) on ``prefix_index_rows`` rows or more,
  since it costs ~60 us a row to build and most indexes never see a prefix filter.

Either is then kept over new rows: an optimize once ``optimize_unindexed_rows`` rows are outside
it (Lance scans the rows an index does not cover beside it, so answers are always complete).
"""

from __future__ import annotations

from typing import Any

from engine.dataset.schema import KEY_INDEX, PREFIX_INDEX
from engine.settings import IndexTuning


def upkeep(ds: Any, tuning: IndexTuning, rows: int, prefix_wanted: bool) -> list[str]:
    """Build or extend the scalar indexes ``ds`` is due; returns what ran (``ds`` moves on to the
    versions it commits)."""
    done: list[str] = []
    names = {i["name"] for i in ds.list_indices()}
    if KEY_INDEX in names:
        done += _extend(ds, tuning, KEY_INDEX, "key_optimize")
    elif rows >= tuning.key_index_rows:
        ds.create_scalar_index("key", "BTREE", name=KEY_INDEX, replace=True)
        done.append("key_index")
    if "prefixes" not in ds.schema.names:
        return done
    if PREFIX_INDEX in names:
        done += _extend(ds, tuning, PREFIX_INDEX, "prefix_optimize")
    elif prefix_wanted and rows >= tuning.prefix_index_rows:
        ds.create_scalar_index("prefixes", "NGRAM", name=PREFIX_INDEX, replace=True)
        done.append("prefix_index")
    return done


def _extend(ds: Any, tuning: IndexTuning, name: str, action: str) -> list[str]:
    if int(ds.stats.index_stats(name).get("num_unindexed_rows", 0)) < tuning.optimize_unindexed_rows:
        return []
    ds.optimize.optimize_indices(index_names=[name])
    return [action]
