"""Engine settings: plain values with defaults that were measured (see docs/architecture.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class S3Settings:
    """How to reach an S3-compatible store. ``endpoint_url`` is None for AWS itself."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    max_attempts: int = 5
    max_pool_connections: int = 32
    connect_timeout: float = 5.0
    read_timeout: float = 30.0


@dataclass(frozen=True)
class IndexTuning:
    """Vector index parameters. Rows below ``build_threshold`` are searched exactly (flat)."""

    # IVF with 8-bit scalar quantization: on 1M x 128 ~1 ms a query faster than IVF-PQ at better
    # recall, on 200k x 768 twice as fast, and built in a half to a quarter of the time; it keeps
    # 1 byte a dimension in memory (PQ: a quarter). "IVF_PQ" stays selectable (docs/notes/0004).
    index_type: str = "IVF_SQ"
    build_threshold: int = 5_000
    # Fold unindexed rows into the index (as a delta segment) once this many have piled up.
    optimize_unindexed_rows: int = 20_000
    # While writers keep the materializer busy, merge delta segments into one only past this many
    # (each query searches every segment; a merge rewrites the whole index). Once writes pause,
    # segments are merged and the index re-trained if the rows outgrew its partitioning.
    max_index_segments: int = 6
    # Compact fragments of less than ``fragment_bytes`` of vectors once this many fragments exist
    # (fewer once the writes pause: queries read their candidates across every fragment).
    compact_fragments: int = 32
    settled_fragments: int = 8
    fragment_bytes: int = 128 * 1024 * 1024
    # Measured on 1M x 128 and 200k x 768 (docs/notes/0004): 20 probes and 2x refinement of at
    # least 20 candidates give recall@10 0.99 and 1.0 on IVF_SQ, whose 8-bit distances already
    # rank well. PQ's coarse ones need more: ``for_index_type`` gives 5x and 50 for IVF_PQ.
    nprobes: int = 20
    # The least an unfiltered query probes: each vector index build raises it to reach this
    # recall@10 on a sample of its rows (engine/dataset/calibrate.py); 0 turns calibration off.
    recall_target: float = 0.95
    refine_factor: int = 2
    # ... and at least this many candidates are re-ranked whatever k (dataset.refine_for).
    refine_candidates: int = 20
    # Filters that keep at most this many rows are answered by exact search over those rows.
    exact_filter_rows: int = 20_000
    # A ``$startsWith`` query on a dataset of at least this many rows asks for an NGRAM index on
    # ``prefixes`` (built ~60 us a row, then kept like the other indexes): below it a scan of the
    # column costs a few ms; at 200k rows 29 ms, against 3 ms through the index.
    prefix_index_rows: int = 20_000
    # Lookups by key (GetVectors, each fold's deletes and merge) read a BTREE on ``key`` once an
    # index holds this many rows (engine/dataset/scalar_indexes.py).
    key_index_rows: int = 5_000
    sample_rate: int = 64
    max_iters: int = 20

    @classmethod
    def for_index_type(cls, index_type: str, **overrides: Any) -> IndexTuning:
        """The defaults for ``index_type`` ("IVF_SQ" or "IVF_PQ"), then ``overrides``."""
        if index_type not in INDEX_TYPES:
            raise ValueError(f"index type must be one of {', '.join(INDEX_TYPES)}, not {index_type!r}")
        refine = {"refine_factor": 5, "refine_candidates": 50} if index_type == "IVF_PQ" else {}
        return cls(index_type=index_type, **{**refine, **overrides})


INDEX_TYPES = ("IVF_SQ", "IVF_PQ")


@dataclass(frozen=True)
class Settings:
    s3: S3Settings = field(default_factory=S3Settings)
    tuning: IndexTuning = field(default_factory=IndexTuning)
    # fsync every local append (file and directory). Off only for throwaway test roots.
    local_fsync: bool = True
    # Group commit: wait this long for more requests to share one event object.
    group_commit_window: float = 0.002
    # The largest payload one event object carries; bigger batches become several chunk events.
    max_event_bytes: int = 16 * 1024 * 1024
    # Materializer: fold at most this many events per Lance commit, and poll this often when idle.
    fold_max_events: int = 2_000
    fold_max_rows: int = 50_000
    materialize_interval: float = 0.2
    # A fold also stops at this many bytes of events (its rows' vectors and metadata): Lance's
    # merge holds a fold's rows in a hash join (~3x their bytes) in a pool of 300 MB.
    fold_max_bytes: int = 32 * 1024 * 1024
    # Data reads (GetVectors, ListVectors, QueryVectors) may use a catalog state probed at most this
    # many seconds ago instead of probing the catalog's log (engine/catalog/follower.py): an index's
    # own changes still reach them at once, through marks in its log; a bucket's policy may take
    # this long. 0: every read probes the catalog too (two store requests a read on S3, not one).
    catalog_staleness: float = 1.0
    # An idle materializer polls the log for other processes' writes at most this far apart.
    materialize_idle_interval: float = 5.0
    # After this many seconds without a fold, an index's materializer parks: its lease released,
    # its activity mark removed, no polling until a write in this process or a mark of another's
    # wakes it (engine/materialize/activity.py). A process checks the marks (one listing) every
    # ``materialize_idle_interval``, so idle indexes cost nothing, however many there are.
    materialize_idle_exit: float = 60.0
    # An idle open index (its materializer parked) is closed after this many seconds unused, and
    # the least recently used idle ones past this many open indexes, or while the Lance caches of
    # the open indexes hold more than ``open_cache_bytes`` (engine/facade/runtime.py).
    index_close_after: float = 900.0
    max_open_indexes: int = 2_000
    open_cache_bytes: int = 2 * 1024 * 1024 * 1024  # room for one index of 1M x 768 beside others
    # The last unindexed rows are indexed once this many polls in a row found nothing to fold
    # (~1.4 s of quiet at the intervals above): each query pays 2-4 ms for unindexed rows, and
    # indexing them costs ~1.2 s of CPU at 1M rows, too much to pay after every trickle of writes.
    quiet_runs: int = 3
    # Run materializers inside this engine (False for a pure API replica or a test that folds by hand).
    run_materializers: bool = True
    # One process folds an index at a time: it holds a lease this long, renewed every third of it.
    # A holder that dies hands over within this time.
    lease_seconds: float = 10.0
    max_dimension: int = 4096
    # Back-pressure: writes to an index are throttled (retryable) while the rows written and not
    # yet folded would hold more than this many bytes in this process's tail (an estimate of the
    # vectors' size), so a materializer that falls behind, or cannot fold, bounds memory instead
    # of exhausting it.
    max_tail_bytes: int = 1024 * 1024 * 1024
    # Roots on S3: the Lance files served indexes read are copied here (engine/dataset/mirror.py),
    # up to ``cache_bytes``; None: a temporary folder of the process's own, removed when it stops.
    # 0 bytes turns the copies off (every read goes to the store).
    cache_dir: str | None = None
    cache_bytes: int = 8 * 1024 * 1024 * 1024
    # Default write quotas per index (None: unlimited); an index's own quota overrides them.
    write_requests_per_second: float | None = None
    write_vectors_per_second: float | None = None
    # A materializing process writes a catalog snapshot once this many catalog events were folded
    # since the last one; a start reads the newest snapshot and the log after it.
    catalog_snapshot_every: int = 1_000
    # Restore points (engine/materialize/restore_points.py): every Lance version of the last
    # ``version_grace`` seconds is kept (readers and queries in flight use them), then one per
    # 5 minutes for an hour, one per hour for a day, one per day inside ``pitr_window`` seconds
    # (an index may set its own); every other version is removed with Lance's cleanup. A restore
    # to any seq replays the log from the nearest point before it, so it stays exact.
    version_grace: float = 10.0
    pitr_window: float = 7 * 24 * 3600.0
    prune_interval: float = 60.0  # seconds between prunes of one index (and when it goes quiet)
    # Log retention (engine/materialize/log_retention.py): None keeps every log object forever (the
    # log is the audit trail); seconds drop the objects older than that once a restore point covers
    # them (an index may set its own, 0 for forever).
    log_retention: float | None = None
    # Each open index's Lance caches (engine/dataset/schema.py): opened vector indexes, and file
    # metadata (manifests, deletion files), each an LRU of up to this many bytes. A fold that
    # changes the index files starts new caches, so past versions' indexes do not accumulate;
    # Lance counts ~60% of what they take (docs/performance.md, long life). An index larger than
    # its cache is read again on every query: 1M x 768 (a ~770 MB IVF_SQ index) answered in 17.4 ms
    # under a 128 MB cap against 9.1 ms under 1 GB (raw pylance, same data). It fills only as an
    # index needs: small indexes take what they took before.
    index_cache_bytes: int = 1024 * 1024 * 1024
    metadata_cache_bytes: int = 32 * 1024 * 1024
