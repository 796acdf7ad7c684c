"""The only package that imports Lance: one index's materialized dataset.

Every method is synchronous and blocking; callers run them in worker threads
(``anyio.to_thread.run_sync``), never on the event loop. Facts and traps behind the choices here
are in docs/notes/0004-index-type.md: the IVF index (8-bit scalar quantization by default,
PQ selectable) is queried with a refine factor, filters always prefilter, and new rows are added
to the index as delta segments with ``optimize_indices(num_indices_to_merge=0)`` because the
default re-partitions the index.

Full text: a ``text`` column holds each row's configured text fields as terms already analyzed by
``engine/query/text.py`` (`` <tag>_<term> ...``, a tag per metadata key and language), under an INVERTED
index with Lance's whitespace tokenizer; it only finds candidate rows, and BM25 is computed by the
caller (docs/notes/0002-hybrid-search.md). Which configuration the column reflects is recorded in
the dataset's table metadata, so a reader knows which keys it may use the index for.

``common``: the schema, vector index parameters and Lance's sessions; ``writer``: the dataset the
materializer folds into and maintains (``LanceDataset``); ``reads``: searches and scans on immutable
snapshot handles, from any thread; ``scalar_indexes``: the BTREE on ``key`` and the NGRAM index for
prefix filters, and when each is built; ``row_keys``: row keys by row address, for queries that
read no column and point lookups; ``calibrate``: the probe count each vector index build
measures for the recall target; ``copies``: restores and consistency digests; ``versions``: restore points (tags)
and cleanup; ``mirror``: local copies of the Lance files served indexes read, for roots on
S3 (async: it fetches through the engine's store, and runs Lance's blocking calls in threads).
"""

import os

# Before Lance is first imported (by the modules below).
os.environ.setdefault("LANCE_LOG", "error")
os.environ.setdefault("LANCE_INCLUDE_VECTOR_CENTROIDS", "false")

from engine.dataset.copies import copy_version, open_version, row_digests
from engine.dataset.mirror import LanceMirror
from engine.dataset.reads import (
    calibrated_probes,
    refine_for,
    scan_keys,
    scan_metadata,
    search,
    shape,
    take,
    text_candidates,
    text_config,
    text_stats,
    wants_prefix_index,
    warm,
)
from engine.dataset.row_keys import forget as forget_row_keys
from engine.dataset.schema import (
    KEY_INDEX,
    PREFIX_INDEX,
    PROBES,
    TEXT_CONFIG,
    TEXT_INDEX,
    VECTOR_INDEX,
    Hit,
    IndexSession,
    Pairs,
    configure_caches,
    index_params,
    ivf_partitions,
    key_hash,
    schema,
    stats_partitions,
)
from engine.dataset.versions import HOLD, POINT, Cleanup, clean, pin, tags, unpin, version_times
from engine.dataset.writer import LanceDataset

__all__ = [
    "HOLD",
    "KEY_INDEX",
    "POINT",
    "PREFIX_INDEX",
    "PROBES",
    "TEXT_CONFIG",
    "TEXT_INDEX",
    "VECTOR_INDEX",
    "Cleanup",
    "Hit",
    "IndexSession",
    "LanceDataset",
    "LanceMirror",
    "Pairs",
    "calibrated_probes",
    "clean",
    "configure_caches",
    "copy_version",
    "forget_row_keys",
    "index_params",
    "ivf_partitions",
    "key_hash",
    "open_version",
    "pin",
    "refine_for",
    "row_digests",
    "scan_keys",
    "scan_metadata",
    "schema",
    "search",
    "shape",
    "stats_partitions",
    "tags",
    "take",
    "text_candidates",
    "text_config",
    "text_stats",
    "unpin",
    "version_times",
    "wants_prefix_index",
    "warm",
]
