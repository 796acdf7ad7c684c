"""The dataset the materializer folds into: upserts and deletes by key, and the maintenance of its
vector and text indexes. Blocking; run in a worker thread."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

import lance
import pyarrow as pa

from engine import failpoints
from engine.dataset.calibrate import calibrate
from engine.dataset.reads import calibrated_probes, default_probes, text_config
from engine.dataset.scalar_indexes import upkeep
from engine.dataset.schema import (
    LANCE_METRIC,
    PROBES,
    TEXT_CONFIG,
    TEXT_INDEX,
    VECTOR_INDEX,
    DatasetNotFound,
    IndexSession,
    Pairs,
    index_params,
    ivf_partitions,
    open_dataset,
    schema,
    sql_list,
    stats_partitions,
    text_values,
)
from engine.settings import IndexTuning
from engine.store import LanceLocation

log = logging.getLogger("vecledger.lance")


class LanceDataset:
    """A handle on one index's Lance dataset. Not thread-safe for writes: one writer (the
    materializer) at a time; readers use ``snapshot()`` handles, which are immutable."""

    def __init__(
        self,
        location: LanceLocation,
        dimension: int,
        metric: str,
        tuning: IndexTuning,
        strings_of: Callable[[str | None], tuple[str, str]] | None = None,
        session: IndexSession | None = None,
    ) -> None:
        self.location = location
        self.dimension = dimension
        self.metric = metric
        self.tuning = tuning
        # A row's ``strings`` and ``prefixes`` from its metadata, for datasets from before them.
        self.strings_of = strings_of or (lambda meta: ("{}", ""))
        self.session = session
        self._ds: Any = None
        # The index's text configuration as (key, language) pairs; the LiveIndex keeps it current.
        self.text_pairs: Pairs = []
        # A $startsWith query found no prefix index on a large version (``maintain`` builds it).
        self.prefix_wanted = False

    # --- lifecycle ----------------------------------------------------------------------------

    def open(self, version: int | None = None) -> bool:
        """Open the newest version (or ``version``); False if the dataset does not exist yet."""
        try:
            if self.session is None:
                self._ds = open_dataset(self.location, version)
            else:
                self._ds = self.session.open(self.location, version)
        except DatasetNotFound:
            self._ds = None
            return False
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
        upserts = upserts.append_column("text", text_values(upserts.column("metadata"), list(self.text_pairs)))
        return upserts.select([f.name for f in schema(self.dimension)])  # in the dataset's column order

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
            if self.text_pairs:  # (none recorded reads as none: no second version for most indexes)
                self._record_text(self.text_pairs)
            else:
                self.open()
            return self.version
        if "text" not in self._ds.schema.names:  # a dataset from before full-text search
            self._ds.add_columns({"text": "CAST(NULL AS STRING)"})
        self._derive_string_columns()
        recorded = text_config(self._ds)
        if set(recorded) - set(self.text_pairs):
            # Rows written now lack the keys dropped from the configuration: stop claiming them.
            self._record_text([p for p in recorded if p in self.text_pairs])
        for i in range(0, len(deletes), 1000):
            self._ds.delete(f"key IN ({sql_list(deletes[i : i + 1000])})")
        if upserts is not None and len(upserts):
            (
                self._ds.merge_insert("key")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute(upserts.cast(schema(self.dimension)))
            )
        self.open()
        return self.version

    def _derive_string_columns(self) -> None:
        """Add ``strings`` and ``prefixes`` ($startsWith) to a dataset from before them, once."""
        missing = [c for c in ("strings", "prefixes") if c not in self._ds.schema.names]
        if not missing:
            return
        derive, types = self.strings_of, {"strings": pa.json_(), "prefixes": pa.string()}

        def fill(batch: pa.RecordBatch) -> pa.RecordBatch:
            values = [derive(m) for m in batch.column("metadata").to_pylist()]
            columns = {"strings": [v[0] for v in values], "prefixes": [v[1] for v in values]}
            return pa.RecordBatch.from_arrays([pa.array(columns[c], types[c]) for c in missing], missing)

        self._ds.add_columns(fill, read_columns=["metadata"])

    def maintain(self, settled: bool = False, quiet: bool = False) -> list[str]:
        """Build, extend, retrain and compact the vector index as the data grows; returns what ran.

        ``settled``: no writer is waiting on the materializer. Delta segments are then merged into
        one (each query searches every segment) and the index is re-trained once the rows outgrow
        its partitioning 4x. While writers keep it busy, both wait (they would take the cores
        the writes need) until ``max_index_segments`` or 256x: a backlog folds and indexes new
        rows as delta segments, and the first quiet moment settles the index.

        ``quiet``: the writes have stopped for a while. The last rows below
        ``optimize_unindexed_rows`` are indexed too: Lance answers any unindexed rows with a flat
        scan beside the index, 2-4 ms on every query (1M rows, 4,000 or 20,000 unindexed alike),
        while indexing and merging them costs ~1.2 s once (docs/performance.md).
        """
        done: list[str] = []
        if self._ds is None:
            return done
        t = self.tuning
        rows = self.count_rows()
        done += self._maintain_text(rows)
        scalar = upkeep(self._ds, t, rows, self.prefix_wanted)
        if scalar:
            self.open()
            self.prefix_wanted = self.prefix_wanted and "prefix_index" not in scalar
        done += scalar
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
        elif self._outdated(rows, settled):
            # The data outgrew the partitioning (~4x the rows it was trained on), or the index is
            # of another type than configured (built before an upgrade or a change of
            # VECLEDGER_INDEX_TYPE): rebuilt once the writes pause. While busy, only past 256x the
            # rows: a retrain takes both cores for seconds (7.5 s at 300k rows), and each delta
            # segment costs in proportion to the partitions its rows are assigned among (1.7 s
            # per 50k rows at 560 partitions, 0.35 s at 70), so a 1M ingest goes faster on the
            # first small index and is re-trained once, when it pauses.
            self._build(rows)
            done.append("retrain")
        if self._calibration_due():
            self._calibrate(rows)
            done.append("calibrate")
        # Busy, each delta build's fixed cost is paid less often: up to an eighth of the rows may
        # wait unindexed (queries scan them exactly).
        unindexed_limit = t.optimize_unindexed_rows if settled else max(t.optimize_unindexed_rows, rows // 8)
        if quiet:
            unindexed_limit = 1
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
                    return pa.RecordBatch.from_arrays([text_values(batch.column("metadata"), pairs)], ["text"])

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

    def _outdated(self, rows: int, settled: bool) -> bool:
        """Whether the vector index should be re-trained (``maintain`` says when and why)."""
        stats = self._index_stats()
        outgrown = ivf_partitions(rows) >= (2 if settled else 16) * (stats_partitions(stats) or 1)
        return outgrown or (settled and stats.get("index_type") != self.tuning.index_type)

    def _build(self, rows: int) -> None:
        failpoints.hit("materializer.index_build")
        self._ds.create_index(
            "vector",
            metric=LANCE_METRIC[self.metric],
            replace=True,
            name=VECTOR_INDEX,
            **index_params(self.tuning, rows, self.dimension),
        )
        self.open()

    def _calibrate(self, rows: int) -> None:
        """Store the probe count this vector index needs for the recall target (``calibrate``):
        after each build, and once for an index built before calibration (or before a crash
        between its build and this). A failure stores the default, so it is not retried at
        every fold: queries then probe as many partitions as before calibration existed."""
        partitions = stats_partitions(self._index_stats())
        floor = default_probes(self.tuning, rows, partitions)
        try:
            found = calibrate(self._ds, self.metric, self.tuning, partitions, floor, seed=rows)
        except (OSError, ValueError, RuntimeError) as e:
            log.warning("could not calibrate the probe count of %s: %s", self._ds.uri, e)
            found = {"nprobes": floor, "partitions": partitions, "failed": type(e).__name__}
        failpoints.hit("materializer.calibrate")
        self._ds.update_metadata({PROBES: json.dumps(found)})
        self.open()

    def _calibration_due(self) -> bool:
        if self.tuning.recall_target <= 0 or not self.has_vector_index():
            return False
        return calibrated_probes(self._ds, stats_partitions(self._index_stats())) is None

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
            "type": str(s.get("index_type", "IVF")),
            "rows": self.count_rows(),
            "indexed_rows": int(s.get("num_indexed_rows", 0)),
            "unindexed_rows": int(s.get("num_unindexed_rows", 0)),
            "segments": int(s.get("num_segments", 1)),
        }
