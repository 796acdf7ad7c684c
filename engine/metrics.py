"""The engine's own Prometheus metrics: log appends and materializer folds.

These are counted where they happen (the appender, the materializer), so they live in the engine;
but the engine serves no HTTP: ``api/observability.py`` exposes them on ``GET /metrics`` together with
the request metrics and the per-index gauges it computes from the live indexes at scrape time.

The module is layer 0 (it imports nothing of the engine), so that every layer that records a
metric, the appender in ``log/`` as much as the materializer, may import it. The objects are
process-wide (Prometheus' default registry): one process serves one engine.
Labels are bounded: the kind of log (``catalog``, ``data``, ``audit``), never an index name or id;
per-index numbers are gauges computed at scrape time, which disappear with the index.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

# Durations for metrics only: they never feed a decision, so they need not go through the injected
# ``Clock`` (a test's ManualClock would report every append as taking no time).
stopwatch = time.perf_counter

# Object-store PUTs take from under a millisecond (a local folder) to a second (a slow S3).
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

LOG_APPENDS = Counter(
    "vecledger_log_appends",
    "Event objects written to a log (one per group commit).",
    ["log"],
)
LOG_APPEND_EVENTS = Counter(
    "vecledger_log_append_events",
    "Events written to a log (a group-commit object holds one or more).",
    ["log"],
)
LOG_APPEND_SECONDS = Histogram(
    "vecledger_log_append_seconds",
    "Time to write one event object, from the first PUT attempt to the acknowledgement, retries included.",
    ["log"],
    buckets=_LATENCY_BUCKETS,
)
LOG_APPEND_FAILURES = Counter(
    "vecledger_log_append_failures",
    "Appends that failed after their retries (the requests waiting on them were refused).",
    ["log"],
)
LOG_LOST_RACES = Counter(
    "vecledger_log_lost_races",
    "Create-only PUTs that found the seq taken by another writer (412) and retried at the next seq.",
    ["log"],
)

FOLDS = Counter("vecledger_materializer_folds", "Materializer folds committed (a Lance commit and a checkpoint).")
FOLDED_OBJECTS = Counter("vecledger_materializer_folded_objects", "Log objects folded into Lance datasets.")
FOLD_SECONDS = Histogram(
    "vecledger_materializer_fold_seconds",
    "Time of one fold: reading the log, the Lance commit, index maintenance and the checkpoint.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0),
)
FOLD_FAILURES = Counter(
    "vecledger_materializer_fold_failures",
    "Folds that failed: 'error' is retried with back-off, 'lease_lost' hands the index to another "
    "process, 'corrupt' stops the index's materializer until the log is repaired; 'prune': the "
    "restore-point upkeep after a fold failed (retried at the next interval).",
    ["reason"],
)
INDEX_MAINTENANCE = Counter(
    "vecledger_index_maintenance",
    "Vector index maintenance steps run after folds: build, retrain, optimize, merge, compact.",
    ["action"],
)


def log_kind(prefix: str) -> str:
    """The label of a log: the first part of its key prefix (``catalog``, ``audit``, ``data``)."""
    return prefix.split("/", 1)[0] or "log"


VERSIONS_REMOVED = Counter(
    "vecledger_materializer_versions_removed",
    "Lance versions removed by restore-point pruning (Lance's cleanup of versions no point pins).",
)

PARKED = Gauge(
    "vecledger_materializers_parked",
    "Materializers of open indexes parked for want of work (no polling until a write wakes them).",
)

STORE_REQUESTS = Counter(
    "vecledger_store_requests",
    "Requests to the object store (S3 calls, or file operations on a folder), by kind.",
    ["op"],
)
