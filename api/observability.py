"""Operating the server: ``GET /metrics`` (Prometheus), ``GET /healthz`` and ``GET /readyz``.

``/healthz`` and ``/readyz`` are unauthenticated, like any orchestrator probe, and say nothing of
any tenant: no ids, names or store error texts (those go to the server's log). ``/metrics`` is
unauthenticated too unless a metrics token is configured, and then shows process-wide series only:
the per-index gauges are summed (tail rows) or their worst taken (lag), without labels. With a
token (``--metrics-token``, sent as a Bearer token) it labels them by account, bucket and index,
for at most ``MAX_INDEX_SERIES`` indexes, the most lagging first.

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
import logging
from collections.abc import Iterable
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
from engine.log import tail_seq
from engine.log.reader import read_header
from engine.materialize.checkpoint import read_checkpoint
from engine.serving.live_index import LiveIndex
from engine.store import exists

__all__ = ["IndexGauges", "observe_request", "operation_of", "readiness"]

log = logging.getLogger("vecledger.api")

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
MAX_INDEX_SERIES = 500  # labelled per-index series in one scrape (the most lagging, failed first)

AUTH_FAILURES = Counter(
    "vecledger_auth_failures",
    "Requests refused by authentication: audited under the key's account, or not (unknown key, or past the rate).",
    ["outcome"],
)


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
        return admin.operation_name(action) if action in admin.ACTIONS else "unknown"
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

    async def families(self, per_index: bool) -> list[Metric]:
        samples = await self.samples()
        labels = ["account", "bucket", "index"] if per_index else []
        rows = GaugeMetricFamily(
            "vecledger_index_tail_rows",
            "Keys in this process's in-memory tail (written, not yet folded into Lance) of an index "
            "(unlabelled: of every open index).",
            labels=labels,
        )
        lag = GaugeMetricFamily(
            "vecledger_materializer_lag_objects",
            "Log objects of an index appended but not yet folded (unlabelled: the most of any index).",
            labels=labels,
        )
        age = GaugeMetricFamily(
            "vecledger_materializer_lag_seconds",
            "Seconds since the oldest unfolded append of an index was written (unlabelled: the most).",
            labels=labels,
        )
        leading = GaugeMetricFamily(
            "vecledger_materializer_leading",
            "1 if this process holds the index's lease and folds it (unlabelled: how many it folds).",
            labels=labels,
        )
        failed = GaugeMetricFamily(
            "vecledger_materializer_failed",
            "1 if the index's materializer stopped on a corrupt log object (unlabelled: how many).",
            labels=labels,
        )
        now = self.engine.clock.now()

        def ages(s: _Sample) -> float:
            return max(0.0, now - s.oldest_unfolded) if s.oldest_unfolded is not None else 0.0

        if per_index:
            worst = sorted(samples, key=lambda s: (s.failed, s.log_seq - s.folded_seq, s.tail_rows), reverse=True)
            for s in worst[:MAX_INDEX_SERIES]:
                values = [s.account, s.bucket, s.index]
                rows.add_metric(values, s.tail_rows)
                lag.add_metric(values, max(0, s.log_seq - s.folded_seq))
                age.add_metric(values, ages(s))
                leading.add_metric(values, 1 if s.leading else 0)
                failed.add_metric(values, 1 if s.failed else 0)
        else:
            rows.add_metric([], sum(s.tail_rows for s in samples))
            lag.add_metric([], max((max(0, s.log_seq - s.folded_seq) for s in samples), default=0))
            age.add_metric([], max((ages(s) for s in samples), default=0.0))
            leading.add_metric([], sum(1 for s in samples if s.leading))
            failed.add_metric([], sum(1 for s in samples if s.failed))
        count = GaugeMetricFamily("vecledger_indexes_open", "Indexes this process has open.", value=len(samples))
        return [rows, lag, age, leading, failed, count]

    async def render(self, accept: str, per_index: bool) -> tuple[bytes, str]:
        """(body, content type): the process-wide metrics and this engine's per-index gauges, in
        the format the scraper's Accept header asks for (Prometheus text, or OpenMetrics)."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Scrape(await self.families(per_index)))
        encode, content_type = choose_encoder(accept)
        return encode(registry), content_type


async def readiness(engine: Engine | None) -> tuple[int, str]:
    """(status, body) for ``/readyz``.

    Ready means this process can serve requests: the engine is open and the store answers a cheap
    probe (an existence check of the catalog's next log object, one HEAD on S3).

    A materializer stopped on a corrupt log object does NOT make the process unready. The damage
    is in the shared log, so every replica sees it: failing readiness would take all of them out
    of rotation and turn one damaged index into an outage of every index, while reads of that
    index, and everything of every other index, keep working. It is reported in the body as a
    count (``degraded: ...``), by name in the server's log (once, when it stops: ``schedule.py``),
    and as ``vecledger_materializer_failed`` for alerting. The probe is unauthenticated: it names no
    index and repeats no error text.
    """
    if engine is None:
        return 503, "not ready: the engine is not open\n"
    try:
        with anyio.fail_after(READY_DEADLINE):
            await exists(engine.store, keys.log_entry(keys.CATALOG_LOG, engine.catalog.state.seq + 1))
    except TimeoutError:
        return 503, f"not ready: the object store did not answer within {READY_DEADLINE:g} s\n"
    except Exception as e:  # any failure of the store means not ready; the log says which
        log.warning("readiness: the object store failed a probe: %s", e)
        return 503, f"not ready: the object store failed a probe ({type(e).__name__})\n"
    lines = ["ready"]
    if failed := len(engine.failed_materializers):
        lines.append(f"degraded: {failed} index materializer(s) stopped on a corrupt log object (see the server log)")
    return 200, "\n".join(lines) + "\n"
