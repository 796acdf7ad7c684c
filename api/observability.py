"""Operating the server: ``GET /metrics`` (Prometheus), ``GET /healthz`` and ``GET /readyz``.

The three routes are unauthenticated, like any Prometheus scrape or orchestrator probe, so they
show nothing but counts, timings and index names: no keys, vectors or metadata.

Request metrics are labelled by dialect, operation and status. The operation label comes from
:func:`operation_of`, which only ever returns a known operation name or ``unknown``, so a client
sending random paths cannot create unbounded label values.

Per-index gauges (tail rows, materializer lag) are computed at scrape time from the indexes this
process has open, not kept as gauges updated on every write: they cost nothing between scrapes and
disappear with the index. The lag is measured against the log itself, not the process's view of
it: a standalone materializer or an API process that takes no writes would otherwise report
whatever it last saw. That costs per open index and scrape one existence probe of the next log
object (a HEAD on S3), one checkpoint GET when another process folds the index, and, while the
index lags, one ranged GET of the oldest unfolded object's header (cached per seq). Probes run a few
at a time within a deadline; an index whose probes fail or time out reports what the process knows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl

import anyio
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from api.operations import OPERATIONS, admin, oss
from engine import Engine, keys
from engine.errors import VecledgerError
from engine.log import tail_seq
from engine.log.reader import read_header
from engine.materialize.checkpoint import read_checkpoint
from engine.serving.live_index import LiveIndex
from engine.store import exists

__all__ = ["IndexGauges", "observe_request", "operation_of", "readiness"]

REQUESTS = Counter(
    "vecledger_requests",
    "API requests answered, by dialect, operation and HTTP status.",
    ["dialect", "operation", "status"],
)
REQUEST_SECONDS = Histogram(
    "vecledger_request_seconds",
    "Time to answer an API request (body read, authentication, the engine call, the reply).",
    ["dialect", "operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

PROBE_CONCURRENCY = 8  # per-index store probes in flight during one scrape
SCRAPE_DEADLINE = 5.0  # seconds for all of a scrape's probes; Prometheus' default timeout is 10 s
READY_DEADLINE = 2.0  # seconds for the readiness probe of the store


def operation_of(dialect: str, method: str, path: str, query: str) -> str:
    """The operation a request names, as the router would see it; ``unknown`` for anything else."""
    if dialect == "oss":  # the operation is a sub-resource of "/" (api/operations/oss.py routes)
        known = set(oss.VECTOR_OPS) | {sub for _, sub in oss.ROUTES}
        sub = next((k for k, _ in parse_qsl(query, keep_blank_values=True) if k in known), "")
        if sub in oss.VECTOR_OPS:
            return oss.VECTOR_OPS[sub] if method == "POST" else "unknown"
        if (method, sub) in oss.ROUTES:
            return oss.ROUTES[(method, sub)][0]
        return "ListVectorBuckets" if method == "GET" and not sub else "unknown"
    if dialect == "s3" and path.startswith("/_vecledger/") and method == "POST":
        action = path[len("/_vecledger/") :]
        return f"Admin{action}" if action in admin.ACTIONS else "unknown"
    if dialect == "s3" and path.startswith("/tags/"):
        return {"GET": "ListTagsForResource", "DELETE": "UntagResource", "POST": "TagResource"}.get(method, "unknown")
    name = path.strip("/")
    return name if name in OPERATIONS and method == "POST" else "unknown"


def observe_request(dialect: str, operation: str, status: int, seconds: float) -> None:
    REQUESTS.labels(dialect, operation, str(status)).inc()
    REQUEST_SECONDS.labels(dialect, operation).observe(seconds)


@dataclass
class _Sample:
    account: str
    bucket: str
    index: str
    tail_rows: int
    log_seq: int
    folded_seq: int
    oldest_unfolded: float | None  # event time of the first object past the checkpoint
    leading: bool
    failed: bool


class _Scrape(Collector):
    """One scrape: the process-wide metrics and the families computed for it, as one exposition
    (OpenMetrics ends with ``# EOF``: two renderings cannot be concatenated)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        yield from REGISTRY.collect()
        yield from self.families


class IndexGauges:
    """Computes the per-index gauges of one engine at scrape time (one per app)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._times: dict[str, tuple[int, float]] = {}  # index id -> (seq, event time): one per index

    def _base(self, live: LiveIndex) -> _Sample:
        idx = live.index
        # The published checkpoint, not the materializer's own: the two differ only while a fold
        # publishes, and the published one moves together with the tail's trim (no half states).
        folded = live.checkpoint.seq
        return _Sample(
            account=idx.account,
            bucket=idx.bucket_name,
            index=idx.name,
            tail_rows=len(live.tail),
            log_seq=max(live.tail.seq, folded),
            folded_seq=folded,
            oldest_unfolded=None,
            leading=live.materializer.leading,
            failed=idx.id in self.engine.failed_materializers,
        )

    async def _probe(self, live: LiveIndex, sample: _Sample) -> None:
        store = self.engine.store
        sample.log_seq = await tail_seq(store, live.prefix, sample.log_seq)
        if not sample.leading:
            sample.folded_seq = max(sample.folded_seq, (await read_checkpoint(store, live.index)).seq)
        first = sample.folded_seq + 1
        if sample.log_seq < first:
            return
        cached = self._times.get(live.index.id)
        if cached is None or cached[0] != first:
            header = await read_header(store, keys.log_entry(live.prefix, first))
            cached = (first, float(header["time"]))
            self._times[live.index.id] = cached
        sample.oldest_unfolded = cached[1]

    async def samples(self) -> list[_Sample]:
        open_now = self.engine.runtime.open_indexes()  # scraping opens none
        for gone in set(self._times) - set(open_now):
            del self._times[gone]
        out = {index_id: self._base(live) for index_id, live in open_now.items()}
        limiter = anyio.CapacityLimiter(PROBE_CONCURRENCY)

        async def probe(live: LiveIndex, sample: _Sample) -> None:
            async with limiter:
                probed = _Sample(**vars(sample))
                # A scrape never fails for one index: a store error, or a header it cannot read,
                # leaves that index with what the process knows.
                with contextlib.suppress(Exception):
                    await self._probe(live, probed)
                    out[live.index.id] = probed  # all or nothing: never half-probed numbers

        with anyio.move_on_after(SCRAPE_DEADLINE):
            async with anyio.create_task_group() as tg:
                for index_id, live in open_now.items():
                    if not live.materializer.parked:  # parked: folded, and idle since (activity.py)
                        tg.start_soon(probe, live, out[index_id])
        return list(out.values())

    async def families(self) -> list[Metric]:
        labels = ["account", "bucket", "index"]
        rows = GaugeMetricFamily(
            "vecledger_index_tail_rows",
            "Keys in this process's in-memory tail (written, not yet folded into Lance) of an index.",
            labels=labels,
        )
        lag = GaugeMetricFamily(
            "vecledger_materializer_lag_objects",
            "Log objects of an index appended but not yet folded (past its checkpoint).",
            labels=labels,
        )
        age = GaugeMetricFamily(
            "vecledger_materializer_lag_seconds",
            "Seconds since the oldest unfolded append of an index was written (0 when none).",
            labels=labels,
        )
        leading = GaugeMetricFamily(
            "vecledger_materializer_leading",
            "1 if this process holds the index's lease and folds it.",
            labels=labels,
        )
        failed = GaugeMetricFamily(
            "vecledger_materializer_failed",
            "1 if the index's materializer stopped on a corrupt log object (see /readyz).",
            labels=labels,
        )
        now = self.engine.clock.now()
        samples = await self.samples()
        for s in samples:
            values = [s.account, s.bucket, s.index]
            rows.add_metric(values, s.tail_rows)
            lag.add_metric(values, max(0, s.log_seq - s.folded_seq))
            age.add_metric(values, max(0.0, now - s.oldest_unfolded) if s.oldest_unfolded is not None else 0.0)
            leading.add_metric(values, 1 if s.leading else 0)
            failed.add_metric(values, 1 if s.failed else 0)
        count = GaugeMetricFamily("vecledger_indexes_open", "Indexes this process has open.", value=len(samples))
        return [rows, lag, age, leading, failed, count]

    async def render(self, accept: str) -> tuple[bytes, str]:
        """(body, content type): the process-wide metrics and this engine's per-index gauges, in
        the format the scraper's Accept header asks for (Prometheus text, or OpenMetrics)."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Scrape(await self.families()))
        encode, content_type = choose_encoder(accept)
        return encode(registry), content_type


def _failed_lines(engine: Engine) -> Iterator[str]:
    for index_id, error in sorted(engine.failed_materializers.items()):
        try:
            name = engine.index_by_id(index_id)
            label = f"{name.bucket_name}/{name.name}"
        except VecledgerError:
            label = index_id
        yield f"degraded: the materializer of index {label} stopped: {error}"


async def readiness(engine: Engine | None) -> tuple[int, str]:
    """(status, body) for ``/readyz``.

    Ready means this process can serve requests: the engine is open and the store answers a cheap
    probe (an existence check of the catalog's next log object, one HEAD on S3).

    A materializer stopped on a corrupt log object does NOT make the process unready. The damage
    is in the shared log, so every replica sees it: failing readiness would take all of them out
    of rotation and turn one damaged index into an outage of every index, while reads of that
    index, and everything of every other index, keep working. It is reported in the body
    (``degraded: ...``) and as ``vecledger_materializer_failed`` for alerting instead.
    """
    if engine is None:
        return 503, "not ready: the engine is not open\n"
    try:
        with anyio.fail_after(READY_DEADLINE):
            await exists(engine.store, keys.log_entry(keys.CATALOG_LOG, engine.catalog.state.seq + 1))
    except TimeoutError:
        return 503, f"not ready: the object store did not answer within {READY_DEADLINE:g} s\n"
    except Exception as e:  # any failure of the store means not ready; say which
        return 503, f"not ready: the object store failed a probe: {e}\n"
    lines = ["ready", *_failed_lines(engine)]
    return 200, "\n".join(lines) + "\n"
