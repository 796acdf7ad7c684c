"""The only module that imports Lance: one index's materialized dataset.

Every method is synchronous and blocking; callers run them in worker threads
(``anyio.to_thread.run_sync``), never on the event loop. Facts and traps behind the choices here
are in research/lance.md: IVF-PQ is queried with a refine factor (recall without it is 0.4-0.6),
filters always prefilter, and new rows are added to the index as delta segments with
``optimize_indices(num_indices_to_merge=0)`` because the default re-partitions the index.
"""

from __future__ import annotations

import math
import os
import zlib
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("LANCE_LOG", "error")
os.environ.setdefault("LANCE_INCLUDE_VECTOR_CENTROIDS", "false")

import lance
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.distance import distances
from engine.settings import IndexTuning
from engine.store import LanceLocation

VECTOR_INDEX = "vector_idx"
_LANCE_METRIC = {"euclidean": "l2", "cosine": "cosine"}


def key_hash(key: str) -> int:
    """Stable hash of a key; ``key_hash % segmentCount`` assigns ListVectors segments."""
    return zlib.crc32(key.encode())


def schema(dimension: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("key", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), dimension)),
            pa.field("metadata", pa.string()),
            pa.field("tokens", pa.list_(pa.string())),
            pa.field("numbers", pa.json_()),
            pa.field("key_hash", pa.uint32()),
        ]
    )


def ivf_pq_params(rows: int, dimension: int) -> tuple[int, int]:
    """(partitions, sub-vectors) for an IVF-PQ index over ``rows`` vectors.

    ~sqrt(n) partitions; sub-vectors of 4 dimensions where the dimension allows (PQ error, not
    nprobes, limits recall on 8-dimension sub-vectors: research/lance.md 4.2).
    """
    partitions = max(1, min(4096, int(math.sqrt(rows)), rows // 64))
    sub = next((m for m in range(max(1, dimension // 4), 0, -1) if dimension % m == 0), 1)
    return partitions, sub


@dataclass(frozen=True)
class Hit:
    key: str
    distance: float
    metadata: str | None


def _sql_list(keys: list[str]) -> str:
    return ", ".join("'" + k.replace("'", "''") + "'" for k in keys)


class LanceDataset:
    """A handle on one index's Lance dataset. Not thread-safe for writes: one writer (the
    materializer) at a time; readers use ``snapshot()`` handles, which are immutable."""

    def __init__(self, location: LanceLocation, dimension: int, metric: str, tuning: IndexTuning) -> None:
        self.location = location
        self.dimension = dimension
        self.metric = metric
        self.tuning = tuning
        self._ds: Any = None

    # --- lifecycle ----------------------------------------------------------------------------

    def open(self, version: int | None = None) -> bool:
        """Open the newest version (or ``version``); False if the dataset does not exist yet."""
        try:
            self._ds = lance.dataset(
                self.location.uri, version=version, storage_options=self.location.storage_options or None
            )
        except (FileNotFoundError, ValueError, OSError) as e:
            if "not found" in str(e).lower() or "does not exist" in str(e).lower() or isinstance(e, FileNotFoundError):
                self._ds = None
                return False
            raise
        return True

    @property
    def version(self) -> int:
        return 0 if self._ds is None else int(self._ds.version)

    def snapshot(self) -> Any:
        """An immutable handle for readers (None before the first fold)."""
        return self._ds

    def count_rows(self) -> int:
        return 0 if self._ds is None else int(self._ds.count_rows())

    # --- writes (materializer only) -------------------------------------------------------------

    def apply(self, upserts: pa.Table | None, deletes: list[str]) -> int:
        """Delete then upsert by key, in as few commits as possible; returns the new version."""
        if self._ds is None:
            if upserts is None or len(upserts) == 0:
                # Nothing to create the dataset with; deletes of unknown keys are no-ops.
                return 0
            self._ds = lance.write_dataset(
                upserts.cast(schema(self.dimension)),
                self.location.uri,
                mode="create",
                storage_options=self.location.storage_options or None,
            )
            return self.version
        for i in range(0, len(deletes), 1000):
            self._ds.delete(f"key IN ({_sql_list(deletes[i : i + 1000])})")
        if upserts is not None and len(upserts):
            (
                self._ds.merge_insert("key")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute(upserts.cast(schema(self.dimension)))
            )
        self.open()
        return self.version

    def maintain(self) -> list[str]:
        """Build, extend, retrain and compact the vector index as the data grows; returns what ran."""
        done: list[str] = []
        if self._ds is None:
            return done
        t = self.tuning
        rows = self.count_rows()
        if not self.has_vector_index():
            if rows >= t.build_threshold:
                self._build(rows)
                done.append("build")
        elif ivf_pq_params(rows, self.dimension)[0] >= 2 * self._partitions():
            # The data outgrew the partitioning (~4x the rows it was trained on): train anew.
            self._build(rows)
            done.append("retrain")
        if len(self._ds.get_fragments()) >= t.compact_fragments:
            self._ds.optimize.compact_files()
            self.open()
            done.append("compact")
        if self.has_vector_index() and self._unindexed_rows() >= t.optimize_unindexed_rows:
            # New rows join as a delta segment with the same centroids; each query searches every
            # segment, so past a few segments they are merged into one (still no re-partitioning:
            # only num_indices_to_merge=None runs the SPFresh pass that collapses partitions).
            self._ds.optimize.optimize_indices(num_indices_to_merge=0)
            self.open()
            done.append("optimize")
            segments = int(self._index_stats().get("num_segments", 1))
            if segments > t.max_index_segments:
                self._ds.optimize.optimize_indices(num_indices_to_merge=segments)
                self.open()
                done.append("merge")
        return done

    def _partitions(self) -> int:
        segments = self._index_stats().get("segments") or [{}]
        return int(segments[0].get("num_partitions") or 1)

    def _build(self, rows: int) -> None:
        partitions, sub = ivf_pq_params(rows, self.dimension)
        self._ds.create_index(
            "vector",
            index_type="IVF_PQ",
            metric=_LANCE_METRIC[self.metric],
            num_partitions=partitions,
            num_sub_vectors=sub,
            sample_rate=self.tuning.sample_rate,
            max_iters=self.tuning.max_iters,
            replace=True,
            name=VECTOR_INDEX,
        )
        self.open()

    def has_vector_index(self) -> bool:
        return self._ds is not None and any(i["name"] == VECTOR_INDEX for i in self._ds.list_indices())

    def _index_stats(self) -> dict[str, Any]:
        return dict(self._ds.stats.index_stats(VECTOR_INDEX))

    def _unindexed_rows(self) -> int:
        return int(self._index_stats().get("num_unindexed_rows", 0))

    def index_state(self) -> dict[str, Any]:
        if not self.has_vector_index():
            return {"type": "flat", "rows": self.count_rows()}
        s = self._index_stats()
        return {
            "type": "IVF_PQ",
            "rows": self.count_rows(),
            "indexed_rows": int(s.get("num_indexed_rows", 0)),
            "unindexed_rows": int(s.get("num_unindexed_rows", 0)),
            "segments": int(s.get("num_segments", 1)),
        }


# --- reads (on snapshot handles, from any thread) ---------------------------------------------


_match_counts: dict[tuple[str, int, str], int] = {}


def _matches(ds: Any, sql_filter: str) -> int:
    """How many rows a filter keeps, cached per dataset version (a scan of the filter columns)."""
    key = (str(ds.uri), int(ds.version), sql_filter)
    if key not in _match_counts:
        if len(_match_counts) > 4096:
            _match_counts.clear()
        _match_counts[key] = int(ds.count_rows(filter=sql_filter))
    return _match_counts[key]


def search(ds: Any, query: np.ndarray, k: int, metric: str, sql_filter: str | None, tuning: IndexTuning) -> list[Hit]:
    """Top-``k`` rows by exact distance (refined), with the filter applied before the search.

    IVF probes only some partitions; a prefilter that keeps few rows leaves few candidates there
    (research/lance.md), so a filter that keeps at most ``tuning.exact_filter_rows`` rows is
    answered by exact search over those rows, and a broader one probes more partitions while fewer
    than ``k`` rows have been found.
    """
    if ds is None or k <= 0:
        return []
    nearest: dict[str, Any] = {
        "column": "vector",
        "q": query,
        "k": k,
        "metric": _LANCE_METRIC[metric],
        "minimum_nprobes": tuning.nprobes,
        "maximum_nprobes": max(tuning.nprobes, 4096),
        "refine_factor": tuning.refine_factor,
    }
    if sql_filter is not None and _matches(ds, sql_filter) <= tuning.exact_filter_rows:
        nearest["use_index"] = False
    table = ds.to_table(
        nearest=nearest,
        columns=["key", "vector", "metadata", "_distance"],
        filter=sql_filter,
        prefilter=True,
        disable_scoring_autoprojection=True,
    )
    if len(table) == 0:
        return []
    vec = table.column("vector").combine_chunks()
    flat = vec.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(len(table), -1)
    dist = distances(flat, query, metric)
    order = np.argsort(dist, kind="stable")
    keys, metas = table.column("key").to_pylist(), table.column("metadata").to_pylist()
    return [Hit(keys[i], float(dist[i]), metas[i]) for i in order]


def take(ds: Any, keys: list[str], columns: list[str]) -> pa.Table:
    if ds is None or not keys:
        return pa.table({c: [] for c in columns})
    return ds.to_table(columns=columns, filter=f"key IN ({_sql_list(keys)})")


def scan_keys(
    ds: Any, after: str | None, segment_count: int, segment_index: int, limit: int, sql_filter: str | None = None
) -> list[str]:
    """The first ``limit`` keys in key order after ``after`` within one list segment (and filter)."""
    if ds is None:
        return []
    conds = [f"({sql_filter})"] if sql_filter else []
    if after is not None:
        conds.append(f"key > {_sql_list([after])}")
    if segment_count > 1:
        conds.append(f"key_hash % {segment_count} = {segment_index}")
    table = ds.to_table(columns=["key"], filter=" AND ".join(conds) or None)
    keys = table.column("key")
    if len(keys) > limit:
        keys = pc.take(keys, pc.select_k_unstable(table, limit, [("key", "ascending")]))
    return sorted(keys.to_pylist())


def copy_version(source: LanceLocation, version: int, target: LanceLocation) -> int:
    """Copy one version of a dataset into a new one, streaming batches; returns the new version."""
    src = lance.dataset(source.uri, version=version, storage_options=source.storage_options or None)
    reader = pa.RecordBatchReader.from_batches(src.schema, src.to_batches())
    ds = lance.write_dataset(reader, target.uri, mode="create", storage_options=target.storage_options or None)
    return int(ds.version)


def rows_by_key(ds: Any) -> dict[str, tuple[bytes, str | None]]:
    """Every row as key -> (vector bytes, metadata text), for consistency checks."""
    out: dict[str, tuple[bytes, str | None]] = {}
    if ds is None:
        return out
    for batch in ds.to_batches(columns=["key", "vector", "metadata"]):
        vec = batch.column("vector")
        flat = vec.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(len(batch), -1)
        for i, (key, meta) in enumerate(
            zip(batch.column("key").to_pylist(), batch.column("metadata").to_pylist(), strict=True)
        ):
            out[key] = (flat[i].tobytes(), meta)
    return out


def open_version(location: LanceLocation, version: int | None) -> Any:
    """A read-only handle on one version (None: the newest); None if the dataset does not exist."""
    try:
        return lance.dataset(location.uri, version=version, storage_options=location.storage_options or None)
    except (ValueError, OSError, FileNotFoundError) as e:
        if "not found" in str(e).lower() or isinstance(e, FileNotFoundError):
            return None
        raise
