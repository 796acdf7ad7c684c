"""Reads on immutable snapshot handles, from any thread: vector search, the text index's candidates
and statistics, key scans. What a read derives from a version is cached per version."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from lance.query import FullTextOperator, MatchQuery

from engine.dataset import row_keys
from engine.dataset.schema import (
    LANCE_METRIC,
    PREFIX_INDEX,
    PROBES,
    TEXT_CONFIG,
    VECTOR_INDEX,
    Hit,
    Pairs,
    ivf_partitions,
    per_version,
    sql_list,
    stats_partitions,
)
from engine.log.payload import vector_matrix
from engine.query.distance import distances
from engine.settings import IndexTuning

log = logging.getLogger("vecledger.lance")


def _matches(ds: Any, sql_filter: str) -> int:
    """How many rows a filter keeps, cached per dataset version (a scan of the filter columns)."""
    return int(per_version("matches", ds, sql_filter, lambda: int(ds.count_rows(filter=sql_filter))))


@dataclass(frozen=True)
class _Shape:
    rows: int
    partitions: int  # 0: no vector index (flat search)
    nprobes: int
    index_type: str = "flat"  # or the vector index's ("IVF_SQ", "IVF_PQ")
    unindexed: int = 0  # rows the vector index does not cover yet
    prefix_index: bool = False  # $startsWith has its NGRAM index


def shape(ds: Any, tuning: IndexTuning) -> _Shape:
    """Rows, partitions, and the partitions an unfiltered query probes: the count its build
    calibrated for the recall target (``calibrate``), and at least enough to scan the share of the
    rows ``tuning.nprobes`` scans in an index trained on all of them. Cached per version (the
    materializer warms it when it publishes, so no query pays for the index statistics).

    The materializer re-trains only when the rows outgrow the partitioning 4x, so its index often
    has fewer, larger partitions than a fresh one; probing the same count would scan up to twice
    the rows for no gain in recall.
    """

    def compute() -> _Shape:
        rows, names = int(ds.count_rows()), {i["name"] for i in ds.list_indices()}
        prefixed = PREFIX_INDEX in names
        if VECTOR_INDEX not in names:
            return _Shape(rows, 0, tuning.nprobes, prefix_index=prefixed)
        stats = ds.stats.index_stats(VECTOR_INDEX)
        partitions = stats_partitions(stats)
        count = tuning.nprobes
        if partitions:
            calibrated = min(partitions, calibrated_probes(ds, partitions) or 0)
            count = max(default_probes(tuning, rows, partitions), calibrated)
        unindexed = int(stats.get("num_unindexed_rows", 0))
        return _Shape(rows, partitions, count, str(stats.get("index_type", "IVF")), unindexed, prefixed)

    shaped: _Shape = per_version("shape", ds, str(tuning.nprobes), compute)
    return shaped


def default_probes(tuning: IndexTuning, rows: int, partitions: int) -> int:
    """``tuning.nprobes``, scaled to an index of ``partitions`` over ``rows``: the least an
    unfiltered query probes, whatever the calibration says."""
    return max(min(4, partitions), min(partitions, round(tuning.nprobes * partitions / ivf_partitions(rows))))


def calibrated_probes(ds: Any, partitions: int) -> int | None:
    """The probe count calibrated for this dataset's vector index (``calibrate``), if it was
    measured on an index of ``partitions``: a re-trained index waits for its own."""
    raw = ds.metadata.get(PROBES)
    if not raw:
        return None
    found = json.loads(raw)
    return int(found["nprobes"]) if int(found.get("partitions", -1)) == partitions else None


def wants_prefix_index(ds: Any, tuning: IndexTuning) -> bool:
    """Whether a $startsWith query on ``ds`` would be served faster with the prefix index
    (``LanceDataset.prefix_wanted``): a large enough version that has none."""
    if ds is None or "prefixes" not in ds.schema.names:
        return False
    dims = shape(ds, tuning)
    return not dims.prefix_index and dims.rows >= tuning.prefix_index_rows


def refine_for(k: int, tuning: IndexTuning) -> int:
    """The refine factor for a query of ``k``: ``tuning.refine_factor``, raised so that at least
    ``tuning.refine_candidates`` rows are re-ranked exactly. Each candidate's vector is one more
    random read (50 rather than 20 cost ~0.65 ms at 1M x 128), while a small ``k`` with few
    candidates can miss even the stored vector a query was made from (quantization ranks
    structured data coarsely, PQ more so)."""
    if tuning.refine_factor < 1:
        return tuning.refine_factor
    return max(tuning.refine_factor, math.ceil(tuning.refine_candidates / max(1, k)))


def warm(ds: Any, tuning: IndexTuning) -> None:
    """Make a new version's first queries as fast as its later ones: read the index statistics
    (``shape``) and load the vector index into the session's cache. Lance otherwise loads each IVF
    partition the first time a query probes it, so after a restart or an index rebuild the first
    pass over 1,000 partitions is ~0.6 ms a query slower (1M x 128; the load takes ~0.2 s and
    ~175 MB of the index cache, and ~2 ms once cached: most versions reuse their index)."""
    dims = shape(ds, tuning)
    row_keys.load(ds)
    if dims.partitions:
        try:
            ds.prewarm_index(VECTOR_INDEX)
        except (OSError, ValueError) as e:  # queries load what they need as before, a little slower
            log.warning("could not load the vector index of %s v%s into the cache: %s", ds.uri, ds.version, e)


def search(
    ds: Any,
    query: np.ndarray,
    k: int,
    metric: str,
    sql_filter: str | None,
    tuning: IndexTuning,
    *,
    metadata: bool = True,
    exact: bool = True,
    probes: int | None = None,
) -> list[Hit]:
    """Top-``k`` rows by exact distance (refined), with the filter applied before the search.

    IVF probes only some partitions; a prefilter that keeps few rows leaves few candidates there
    (measured: recall collapses under selective prefilters), so a filter that keeps at most
    ``tuning.exact_filter_rows`` rows is answered by exact search over those rows (so is a ``k``
    whose refined candidates would cover every row), and a broader one probes more partitions: the
    nearest rows that pass a filter keeping a share ``s`` of the data lie ~1/sqrt(s) further out, so
    it probes ``nprobes / sqrt(s)`` (the prefilter keeps the extra partitions cheap: only rows that
    pass are scored), and more still while fewer than ``k`` rows have been found.

    Each column fetched is one more random read per hit (the vectors of 10 hits and their metadata
    cost ~0.5 ms of a ~5 ms query), so a caller that shows no metadata passes ``metadata=False``
    (hits carry None), and one that reports no distances ``exact=False``: hits then rank by
    Lance's refined float32 distance instead of the float64 one ``engine.distance`` reports.
    ``probes`` replaces the calibrated unfiltered probe count (``calibrate`` measures with it).
    """
    if ds is None or k <= 0:
        return []
    dims = shape(ds, tuning)
    nprobes = dims.nprobes if probes is None else max(1, min(probes, dims.partitions or probes))
    # A k whose refined candidates would cover the whole dataset gains nothing from IVF, which
    # stops probing once it has k rows and so may miss some of the true k nearest: scan exactly.
    refine = refine_for(k, tuning)
    use_index = k * refine < dims.rows
    if sql_filter is not None and use_index:
        matches = _matches(ds, sql_filter)
        if matches <= tuning.exact_filter_rows:
            use_index = False
        elif dims.partitions:
            nprobes = min(dims.partitions, math.ceil(nprobes / math.sqrt(matches / max(1, dims.rows))))
    nearest: dict[str, Any] = {
        "column": "vector",
        "q": query,
        "k": k,
        "metric": LANCE_METRIC[metric],
        "minimum_nprobes": nprobes,
        "maximum_nprobes": max(nprobes, 4096),
        "refine_factor": refine,
    }
    extra = ["metadata"] if metadata else []
    # Refined distances are exact in float32; unrefined ones are quantized estimates.
    exact = exact or not use_index or refine < 1
    lean = use_index and not exact and not metadata
    # With every row indexed, the plan needs no flat-scan branch for unindexed ones (~0.2 ms).
    fast = dims.partitions > 0 and dims.unindexed == 0
    if lean:
        # Only keys: from row addresses (row_keys), without a read after the search.
        table = ds.to_table(
            nearest=nearest,
            columns=["_distance"],
            with_row_id=True,
            filter=sql_filter,
            prefilter=True,
            fast_search=fast,
        )
    elif use_index:
        table = ds.to_table(
            nearest=nearest,
            columns=["key", *(["vector"] if exact else []), *extra, "_distance"],
            filter=sql_filter,
            prefilter=True,
            disable_scoring_autoprojection=True,
            fast_search=fast,
        )
    else:
        # Lance's flat search reads every vector before it applies the filter (a 1M-row index
        # peaked at 800 MB for one query); a filtered scan reads the filter columns, then only the
        # matching rows' vectors, and numpy ranks them.
        table = ds.to_table(columns=["key", "vector", *extra], filter=sql_filter, late_materialization=True)
    if len(table) == 0:
        return []
    if exact:
        dist = distances(vector_matrix(table.column("vector")), query, metric)
    else:
        dist = table.column("_distance").to_numpy().astype(np.float64)
        if metric != "cosine":
            dist = np.sqrt(np.maximum(dist, 0.0))  # Lance's L2 is squared
    order = np.argsort(dist, kind="stable")[:k]
    keys = row_keys.keys_of(ds, table.column("_rowid")) if lean else table.column("key").to_pylist()
    metas = table.column("metadata").to_pylist() if metadata else [None] * len(keys)
    return [Hit(keys[i], float(dist[i]), metas[i]) for i in order]


def text_config(ds: Any) -> Pairs:
    """The (key, language) pairs the dataset's ``text`` column holds for every row."""
    if ds is None:
        return []
    raw = ds.metadata.get(TEXT_CONFIG)
    return [(str(k), lang) for k, lang in json.loads(raw)] if raw else []


def text_stats(ds: Any, tag: str) -> tuple[int, int]:
    """(rows holding the tagged field, their total length in terms), cached per dataset version;
    counted on the ``text`` column with Arrow, never by parsing metadata."""

    def compute() -> tuple[int, int]:
        docs = total = 0
        for batch in ds.to_batches(columns=["text"]):
            counts = pc.count_substring(batch.column("text"), f" {tag}_").fill_null(0)
            docs += int(pc.sum(pc.greater(counts, 0)).as_py() or 0)
            total += int(pc.sum(counts).as_py() or 0)
        return docs, total

    stats: tuple[int, int] = per_version("text_stats", ds, tag, compute)
    return stats


def text_candidates(ds: Any, tagged_terms: list[str]) -> pa.Table:
    """Every row whose ``text`` holds any of the tagged terms (key, text, metadata), found with the
    inverted index (rows not indexed yet are scanned by Lance); unfiltered, since BM25's document
    frequencies count every row."""
    query = MatchQuery(" ".join(tagged_terms), "text", operator=FullTextOperator.OR)
    return ds.to_table(full_text_query=query, columns=["key", "text", "metadata"], disable_scoring_autoprojection=True)


def scan_metadata(ds: Any) -> pa.Table:
    """(key, metadata) of every row: the exact path for text keys the index does not hold yet."""
    return ds.to_table(columns=["key", "metadata"])


def take(ds: Any, keys: list[str], columns: list[str]) -> pa.Table:
    """The rows of ``ds`` holding ``keys`` (any order): a take by row address from the key map
    (``row_keys``), ~0.65 ms for one key at 1M rows where a filter plans a scan."""
    if ds is None or not keys:
        return pa.table({c: [] for c in columns})
    try:
        addresses = row_keys.addresses_of(ds, keys)
    except LookupError:
        return ds.to_table(columns=columns, filter=f"key IN ({sql_list(keys)})")
    if not addresses:
        return pa.table({c: pa.array([], ds.schema.field(c).type) for c in columns})
    return ds._take_rows(addresses, columns=columns)


def scan_keys(
    ds: Any, after: str | None, segment_count: int, segment_index: int, limit: int, sql_filter: str | None = None
) -> list[str]:
    """The first ``limit`` keys in key order after ``after`` within one list segment (and filter)."""
    if ds is None:
        return []
    conds = [f"({sql_filter})"] if sql_filter else []
    if after is not None:
        conds.append(f"key > {sql_list([after])}")
    if segment_count > 1:
        conds.append(f"key_hash % {segment_count} = {segment_index}")
    # Lance's sort with a limit is a streaming top-k: a page holds ``limit`` keys in memory, not
    # every key past the token (which it still reads: ~60 ms a page at 1M rows, measured).
    table = ds.to_table(columns=["key"], filter=" AND ".join(conds) or None, order_by=["key"], limit=limit)
    return [str(k) for k in table.column("key").to_pylist()]
