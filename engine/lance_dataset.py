"""The only module that imports Lance: one index's materialized dataset.

Every method is synchronous and blocking; callers run them in worker threads
(``anyio.to_thread.run_sync``), never on the event loop. Facts and traps behind the choices here
are in research/lance.md: IVF-PQ is queried with a refine factor (recall without it is 0.4-0.6),
filters always prefilter, and new rows are added to the index as delta segments with
``optimize_indices(num_indices_to_merge=0)`` because the default re-partitions the index.

Full text: a ``text`` column holds each row's configured text fields as terms already analyzed by
``engine/text_analysis.py`` (`` <tag>_<term> ...``, a tag per metadata key and language), under an INVERTED
index with Lance's whitespace tokenizer; it only finds candidate rows, and BM25 is computed by the
caller (docs/notes/0002-hybrid-search.md). Which configuration the column reflects is recorded in
the dataset's table metadata, so a reader knows which keys it may use the index for.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("LANCE_LOG", "error")
os.environ.setdefault("LANCE_INCLUDE_VECTOR_CENTROIDS", "false")

import lance
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from lance.query import FullTextOperator, MatchQuery

from engine import failpoints
from engine.distance import distances
from engine.log.payload import parse_metadata, vector_matrix
from engine.settings import IndexTuning
from engine.store import LanceLocation
from engine.text_analysis import text_column

VECTOR_INDEX = "vector_idx"
TEXT_INDEX = "text_idx"
TEXT_CONFIG = "vecledger.text_search"  # table metadata: the [key, language] pairs ``text`` holds
Pairs = list[tuple[str, str | None]]
_LANCE_METRIC = {"euclidean": "l2", "cosine": "cosine"}


# One cache of opened indexes and file metadata for the whole process. The materializer publishes a
# fresh handle per fold; with a session each, every handle would load the IVF-PQ index (tens of MB
# at 1M rows) again on its first query and hold its own copy until collected.
INDEX_CACHE_BYTES = 512 * 1024 * 1024
METADATA_CACHE_BYTES = 128 * 1024 * 1024
_session: Any = None


def _open(location: LanceLocation, version: int | None) -> Any:
    global _session
    if _session is None:
        _session = lance.Session(  # type: ignore[attr-defined]
            index_cache_size_bytes=INDEX_CACHE_BYTES, metadata_cache_size_bytes=METADATA_CACHE_BYTES
        )
    return lance.dataset(
        location.uri, version=version, storage_options=location.storage_options or None, session=_session
    )


def _text_values(metadata: pa.Array | pa.ChunkedArray, pairs: Pairs) -> pa.Array:
    """The ``text`` column for rows with this metadata (all null without a text configuration, which
    is most indexes: their folds parse no metadata for it)."""
    if not pairs:
        return pa.nulls(len(metadata), pa.string())
    return pa.array([text_column(parse_metadata(m), pairs) for m in metadata.to_pylist()], pa.string())


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
            pa.field("text", pa.string()),
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
        # The index's text configuration as (key, language) pairs; the LiveIndex keeps it current.
        self.text_pairs: Pairs = []

    # --- lifecycle ----------------------------------------------------------------------------

    def open(self, version: int | None = None) -> bool:
        """Open the newest version (or ``version``); False if the dataset does not exist yet."""
        try:
            self._ds = _open(self.location, version)
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

    def _with_text(self, upserts: pa.Table) -> pa.Table:
        """The upserts with their ``text`` column under the current text configuration."""
        if "text" in upserts.column_names:
            upserts = upserts.drop_columns(["text"])
        return upserts.append_column("text", _text_values(upserts.column("metadata"), list(self.text_pairs)))

    def apply(self, upserts: pa.Table | None, deletes: list[str]) -> int:
        """Delete then upsert by key, in as few commits as possible; returns the new version."""
        if upserts is not None:
            upserts = self._with_text(upserts)
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
            self._record_text(self.text_pairs)
            return self.version
        if "text" not in self._ds.schema.names:  # a dataset from before full-text search
            self._ds.add_columns({"text": "CAST(NULL AS STRING)"})
        recorded = text_config(self._ds)
        if set(recorded) - set(self.text_pairs):
            # Rows written now lack the keys dropped from the configuration: stop claiming them.
            self._record_text([p for p in recorded if p in self.text_pairs])
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

    def maintain(self, settled: bool = False) -> list[str]:
        """Build, extend, retrain and compact the vector index as the data grows; returns what ran.

        ``settled``: no writer is waiting on the materializer. Delta segments are then merged into
        one (each query searches every segment) and the index is re-trained once the rows outgrow
        its partitioning 4x. While writers keep it busy, both wait (they would take the cores
        the writes need) until ``max_index_segments`` or 64x: a backlog folds and indexes new
        rows as delta segments, and the first quiet moment settles the index.
        """
        done: list[str] = []
        if self._ds is None:
            return done
        t = self.tuning
        rows = self.count_rows()
        done += self._maintain_text(rows)
        # Each fold adds a fragment; a query's refine step reads its candidates' vectors across all
        # of them (1M rows in 27 fragments: +2-4 ms a query). Compacted first, so that an index
        # trained next covers the compacted files.
        if len(self._ds.get_fragments()) >= (t.settled_fragments if settled else t.compact_fragments):
            target = max(1024, t.fragment_bytes // (4 * self.dimension))
            self._ds.optimize.compact_files(target_rows_per_fragment=target)
            self.open()
            done.append("compact")
        if not self.has_vector_index():
            if rows >= t.build_threshold:
                self._build(rows)
                done.append("build")
        elif ivf_pq_params(rows, self.dimension)[0] >= (2 if settled else 8) * self._partitions():
            # The data outgrew the partitioning (~4x the rows it was trained on; 64x while busy).
            self._build(rows)
            done.append("retrain")
        # Busy, each delta build's fixed cost is paid less often: up to an eighth of the rows may
        # wait unindexed (queries scan them exactly).
        unindexed_limit = t.optimize_unindexed_rows if settled else max(t.optimize_unindexed_rows, rows // 8)
        if self.has_vector_index() and self._unindexed_rows() >= unindexed_limit:
            # New rows join as a delta segment with the same centroids; each query searches every
            # segment, so past a few segments they are merged into one (still no re-partitioning:
            # only num_indices_to_merge=None runs the SPFresh pass that collapses partitions).
            self._ds.optimize.optimize_indices(num_indices_to_merge=0)
            self.open()
            done.append("optimize")
        if self.has_vector_index() and (settled or "optimize" in done):
            segments = int(self._index_stats().get("num_segments", 1))
            if segments > (1 if settled else t.max_index_segments):
                self._ds.optimize.optimize_indices(num_indices_to_merge=segments)
                self.open()
                done.append("merge")
        return done

    def _record_text(self, pairs: Iterable[tuple[str, str | None]]) -> None:
        self._ds.update_metadata({TEXT_CONFIG: json.dumps(sorted([list(p) for p in pairs], key=str))})
        self.open()

    def _maintain_text(self, rows: int) -> list[str]:
        """Backfill ``text`` when the configuration gained a key or language, and keep its index."""
        done: list[str] = []
        want = sorted(set(self.text_pairs), key=str)
        if sorted(set(text_config(self._ds)), key=str) != want:
            if want and rows:
                failpoints.hit("materializer.text_backfill")
                pairs = list(want)

                def fill(batch: pa.RecordBatch) -> pa.RecordBatch:
                    return pa.RecordBatch.from_arrays([_text_values(batch.column("metadata"), pairs)], ["text"])

                if "text" in self._ds.schema.names:
                    self._ds.drop_columns(["text"])
                self._ds.add_columns(fill, read_columns=["metadata"])
                self.open()
                done.append("text_backfill")
            self._record_text(want)
        has_index = any(i["name"] == TEXT_INDEX for i in self._ds.list_indices())
        if want and rows and (not has_index or "text_backfill" in done):
            self._ds.create_scalar_index(
                "text",
                "INVERTED",
                name=TEXT_INDEX,
                replace=True,
                base_tokenizer="whitespace",
                lower_case=False,
                stem=False,
                remove_stop_words=False,
                ascii_folding=False,
                max_token_length=None,
                with_position=False,
            )
            self.open()
            done.append("text_index")
        elif has_index:
            unindexed = int(self._ds.stats.index_stats(TEXT_INDEX).get("num_unindexed_rows", 0))
            if unindexed >= self.tuning.optimize_unindexed_rows:
                self._ds.optimize.optimize_indices(index_names=[TEXT_INDEX])
                self.open()
                done.append("text_optimize")
        return done

    def _partitions(self) -> int:
        segments = self._index_stats().get("segments") or [{}]
        return int(segments[0].get("num_partitions") or 1)

    def _build(self, rows: int) -> None:
        failpoints.hit("materializer.index_build")
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


_per_version: dict[tuple[str, str, int, str], Any] = {}


def _cached(what: str, ds: Any, arg: str, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per (what, dataset version, arg): a version never changes, so what reads
    derive from it (filter match counts, index shape, text statistics) is computed once."""
    key = (what, str(ds.uri), int(ds.version), arg)
    if key not in _per_version:
        if len(_per_version) > 4096:
            _per_version.clear()
        _per_version[key] = compute()
    return _per_version[key]


def _matches(ds: Any, sql_filter: str) -> int:
    """How many rows a filter keeps, cached per dataset version (a scan of the filter columns)."""
    return int(_cached("matches", ds, sql_filter, lambda: int(ds.count_rows(filter=sql_filter))))


@dataclass(frozen=True)
class _Shape:
    rows: int
    partitions: int  # 0: no vector index (flat search)
    nprobes: int


def shape(ds: Any, tuning: IndexTuning) -> _Shape:
    """Rows, partitions, and the partitions an unfiltered query probes: enough to scan the share of
    the rows ``tuning.nprobes`` scans in an index trained on all of them. Cached per version (the
    materializer warms it when it publishes, so no query pays for the index statistics).

    The materializer re-trains only when the rows outgrow the partitioning 4x, so its index often
    has fewer, larger partitions than a fresh one; probing the same count would scan up to twice
    the rows for no gain in recall.
    """

    def compute() -> _Shape:
        rows, partitions, count = int(ds.count_rows()), 0, tuning.nprobes
        if any(i["name"] == VECTOR_INDEX for i in ds.list_indices()):
            segments = ds.stats.index_stats(VECTOR_INDEX).get("segments") or [{}]
            partitions = int(segments[0].get("num_partitions") or 0)
            ideal = ivf_pq_params(rows, ds.schema.field("vector").type.list_size)[0]
            if partitions:
                count = max(min(4, partitions), min(partitions, round(tuning.nprobes * partitions / ideal)))
        return _Shape(rows, partitions, count)

    shaped: _Shape = _cached("shape", ds, str(tuning.nprobes), compute)
    return shaped


def search(ds: Any, query: np.ndarray, k: int, metric: str, sql_filter: str | None, tuning: IndexTuning) -> list[Hit]:
    """Top-``k`` rows by exact distance (refined), with the filter applied before the search.

    IVF probes only some partitions; a prefilter that keeps few rows leaves few candidates there
    (research/lance.md), so a filter that keeps at most ``tuning.exact_filter_rows`` rows is
    answered by exact search over those rows (so is a ``k`` whose refined candidates would cover
    every row), and a broader one probes more partitions: the nearest rows that pass a filter
    keeping a share ``s`` of the data lie ~1/sqrt(s) further out, so it probes ``nprobes /
    sqrt(s)`` (the prefilter keeps the extra partitions cheap: only rows that pass are scored), and
    more still while fewer than ``k`` rows have been found.
    """
    if ds is None or k <= 0:
        return []
    dims = shape(ds, tuning)
    nprobes = dims.nprobes
    # A k whose refined candidates would cover the whole dataset gains nothing from IVF, which
    # stops probing once it has k rows and so may miss some of the true k nearest: scan exactly.
    use_index = k * tuning.refine_factor < dims.rows
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
        "metric": _LANCE_METRIC[metric],
        "minimum_nprobes": nprobes,
        "maximum_nprobes": max(nprobes, 4096),
        "refine_factor": tuning.refine_factor,
    }
    if use_index:
        table = ds.to_table(
            nearest=nearest,
            columns=["key", "vector", "metadata", "_distance"],
            filter=sql_filter,
            prefilter=True,
            disable_scoring_autoprojection=True,
        )
    else:
        # Lance's flat search reads every vector before it applies the filter (a 1M-row index
        # peaked at 800 MB for one query); a filtered scan reads the filter columns, then only the
        # matching rows' vectors, and numpy ranks them.
        table = ds.to_table(columns=["key", "vector", "metadata"], filter=sql_filter, late_materialization=True)
    if len(table) == 0:
        return []
    dist = distances(vector_matrix(table.column("vector")), query, metric)
    order = np.argsort(dist, kind="stable")[:k]
    keys, metas = table.column("key").to_pylist(), table.column("metadata").to_pylist()
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

    stats: tuple[int, int] = _cached("text_stats", ds, tag, compute)
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
    """Copy one version of a dataset, with its vector index, into a new one; returns the new version.

    A deep clone copies the files that version references (data, deletions, indexes), so a
    restore costs a file copy rather than a rewrite and an index build, and the copy does not
    depend on the source's files staying around.
    """
    src = _open(source, version)
    ds = src.deep_clone(target.uri, version, storage_options=target.storage_options or None)
    return int(ds.version)


_DIGEST_WEIGHTS = np.random.default_rng(20261125).integers(1, 2**63, size=65536, dtype=np.uint64) | np.uint64(1)


def row_digests(ds: Any) -> pa.Table:
    """Every row as (key, vector digest, metadata digest), sorted by key: what a consistency check
    compares, streamed batch by batch so that a million rows cost ~30 MB rather than their vectors.

    The vector digest is a weighted sum of the float32 bit patterns (mod 2**64), so one flipped bit
    changes it; the metadata digest hashes the stored text. Both are only compared within one process.
    """
    keys, vec_digests, meta_digests = [], [], []
    if ds is not None:
        for batch in ds.to_batches(columns=["key", "vector", "metadata"]):
            if batch.num_rows == 0:
                continue
            bits = vector_matrix(batch.column("vector")).view(np.uint32).astype(np.uint64)
            with np.errstate(over="ignore"):
                vec_digests.append((bits * _DIGEST_WEIGHTS[: bits.shape[1]]).sum(axis=1, dtype=np.uint64))
            meta_digests.append(np.array([hash(m) for m in batch.column("metadata").to_pylist()], dtype=np.int64))
            keys.append(batch.column("key"))
    table = pa.table(
        {
            "key": pa.chunked_array(keys, pa.string()),
            "vector": pa.array(np.concatenate(vec_digests) if vec_digests else np.zeros(0, np.uint64)),
            "metadata": pa.array(np.concatenate(meta_digests) if meta_digests else np.zeros(0, np.int64)),
        }
    )
    return table.sort_by("key")


def open_version(location: LanceLocation, version: int | None) -> Any:
    """A read-only handle on one version (None: the newest); None if the dataset does not exist."""
    try:
        return _open(location, version)
    except (ValueError, OSError, FileNotFoundError) as e:
        if "not found" in str(e).lower() or isinstance(e, FileNotFoundError):
            return None
        raise
