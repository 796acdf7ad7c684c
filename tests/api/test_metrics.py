"""Operating the server: ``/metrics`` in Prometheus' format, ``/healthz`` and ``/readyz``.

The counters are process-wide and every test server in this process adds to them, so the tests
compare values before and after their own requests rather than expecting absolute numbers.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import anyio
import httpx
from prometheus_client.parser import text_string_to_metric_families

from engine import keys
from engine.store import FaultyStore, ObjectStore
from engine.store.faulty import ERROR, Fault
from tests.backends import Backend
from tests.server import ALICE, RunningServer, running_server

D = 4

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


TOKEN = "scrape-token"  # the servers here label series per index, which needs a metrics token


def scrape(srv: RunningServer) -> Samples:
    reply = httpx.get(f"{srv.url}/metrics", timeout=30, headers={"authorization": f"Bearer {TOKEN}"})
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain; version=")
    out: Samples = {}
    for family in text_string_to_metric_families(reply.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 for a labelled series that does not exist yet."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def index_labels(bucket: str, index: str) -> dict[str, str]:
    return {"account": ALICE.account, "bucket": bucket, "index": index}


def make_index(client: Any, bucket: str, index: str) -> None:
    client.create_vector_bucket(vectorBucketName=bucket)
    client.create_index(
        vectorBucketName=bucket, indexName=index, dataType="float32", dimension=D, distanceMetric="euclidean"
    )


def put(client: Any, bucket: str, index: str, key: str, x: float) -> None:
    client.put_vectors(
        vectorBucketName=bucket,
        indexName=index,
        vectors=[{"key": key, "data": {"float32": [x] * D}, "metadata": {"x": x}}],
    )


def query(client: Any, bucket: str, index: str) -> list[str]:
    reply = client.query_vectors(vectorBucketName=bucket, indexName=index, topK=3, queryVector={"float32": [1.0] * D})
    return [v["key"] for v in reply["vectors"]]


def test_metrics_count_requests_appends_and_the_unfolded_tail(backend: Backend) -> None:
    # No materializer: everything written stays in the tail, so the lag is exactly what was appended.
    with running_server(backend.with_settings(run_materializers=False), metrics_token=TOKEN) as srv:
        client = srv.s3vectors()
        make_index(client, "metrics", "idx")
        before = scrape(srv)
        for i in range(3):
            put(client, "metrics", "idx", f"k{i}", float(i))
        assert query(client, "metrics", "idx")[0] == "k1"
        with contextlib.suppress(client.exceptions.NotFoundException):
            client.get_index(vectorBucketName="metrics", indexName="nope")
        first = scrape(srv)
        put(client, "metrics", "idx", "k3", 3.0)
        query(client, "metrics", "idx")
        second = scrape(srv)

    ok_put = {"dialect": "s3", "operation": "PutVectors", "status": "200"}
    assert value(first, "vecledger_requests_total", **ok_put) - value(before, "vecledger_requests_total", **ok_put) == 3
    assert value(second, "vecledger_requests_total", **ok_put) - value(first, "vecledger_requests_total", **ok_put) == 1
    ok_query = {"dialect": "s3", "operation": "QueryVectors", "status": "200"}
    assert value(second, "vecledger_requests_total", **ok_query) > value(first, "vecledger_requests_total", **ok_query)
    missing = {"dialect": "s3", "operation": "GetIndex", "status": "404"}
    assert value(first, "vecledger_requests_total", **missing) > value(before, "vecledger_requests_total", **missing)
    timed = {"dialect": "s3", "operation": "PutVectors"}
    assert value(second, "vecledger_request_seconds_count", **timed) >= 4
    assert value(second, "vecledger_request_seconds_sum", **timed) > 0

    # The appender's own numbers: every put is one data-log object (sequential requests, no grouping).
    appends = value(second, "vecledger_log_appends_total", log="data") - value(
        before, "vecledger_log_appends_total", log="data"
    )
    assert appends == 4
    assert value(second, "vecledger_log_append_seconds_count", log="data") >= 4
    assert value(second, "vecledger_log_append_seconds_sum", log="data") > 0
    assert value(second, "vecledger_log_appends_total", log="catalog") >= 2  # the bucket and the index

    labels = index_labels("metrics", "idx")
    assert value(first, "vecledger_index_tail_rows", **labels) == 3
    assert value(second, "vecledger_index_tail_rows", **labels) == 4
    assert value(first, "vecledger_materializer_lag_objects", **labels) == 3
    assert value(second, "vecledger_materializer_lag_objects", **labels) == 4
    assert value(second, "vecledger_materializer_lag_seconds", **labels) > 0
    assert value(second, "vecledger_materializer_leading", **labels) == 0
    assert value(second, "vecledger_materializer_failed", **labels) == 0
    assert value(second, "vecledger_indexes_open") == 1
    assert ("process_cpu_seconds_total", frozenset()) in second  # the client's process metrics come along


def test_materializer_folds_and_index_builds_are_counted_and_the_lag_drains(backend: Backend) -> None:
    settings = backend.with_tuning(build_threshold=16, optimize_unindexed_rows=8)
    with running_server(settings, metrics_token=TOKEN) as srv:
        client = srv.s3vectors()
        make_index(client, "folds", "idx")
        before = scrape(srv)
        client.put_vectors(
            vectorBucketName="folds",
            indexName="idx",
            vectors=[{"key": f"k{i}", "data": {"float32": [float(i)] * D}} for i in range(40)],
        )
        labels = index_labels("folds", "idx")
        deadline = time.monotonic() + 60
        while True:
            now = scrape(srv)
            built = value(now, "vecledger_index_maintenance_total", action="build") > value(
                before, "vecledger_index_maintenance_total", action="build"
            )
            if built and value(now, "vecledger_materializer_lag_objects", **labels) == 0:
                break
            assert time.monotonic() < deadline, "the materializer did not fold and build the index"
            time.sleep(0.1)
    assert value(now, "vecledger_materializer_folds_total") > value(before, "vecledger_materializer_folds_total")
    assert value(now, "vecledger_materializer_folded_objects_total") >= 1
    assert value(now, "vecledger_materializer_fold_seconds_count") >= 1
    assert value(now, "vecledger_materializer_leading", **labels) == 1
    assert value(now, "vecledger_index_tail_rows", **labels) == 0
    assert value(now, "vecledger_materializer_lag_seconds", **labels) == 0


def test_health_and_readiness_follow_the_store(backend: Backend) -> None:
    broken = {"on": False}

    def wrap(store: ObjectStore) -> ObjectStore:
        return FaultyStore(store, lambda verb, key: Fault(ERROR) if broken["on"] else None)

    with running_server(backend, wrap_store=wrap) as srv:
        assert (r := httpx.get(f"{srv.url}/healthz")).status_code == 200 and r.text.strip() == "ok"
        assert (r := httpx.get(f"{srv.url}/readyz")).status_code == 200 and r.text.strip() == "ready"
        broken["on"] = True  # every store call fails from now on
        r = httpx.get(f"{srv.url}/readyz")
        assert r.status_code == 503 and "object store" in r.text, r.text
        assert httpx.get(f"{srv.url}/healthz").status_code == 200  # the process itself is fine
        assert httpx.get(f"{srv.url}/metrics").status_code == 200  # and can still be scraped
        broken["on"] = False
        assert httpx.get(f"{srv.url}/readyz").status_code == 200
        # Unauthenticated only for GET: any other method is still an (unsigned, refused) API call.
        assert httpx.post(f"{srv.url}/metrics").status_code == 403


def test_a_stopped_materializer_is_reported_but_leaves_the_process_ready(backend: Backend) -> None:
    with running_server(backend.with_settings(run_materializers=False), metrics_token=TOKEN) as srv:
        client = srv.s3vectors()
        make_index(client, "damaged", "idx")
        for i in range(3):
            put(client, "damaged", "idx", f"k{i}", float(i))

    ids: list[str] = []

    async def damage() -> None:  # flip a bit in the second put (seq 1) behind the service's back
        async with backend.engine() as eng:
            index = next(i for i in eng.catalog.state.indexes.values() if i.name == "idx")
        ids.append(index.id)
        store = await backend.store()
        key = keys.log_entry(keys.index_log(index.bucket_id, index.id), 1)
        data = bytearray((await store.get(key)).data)
        data[len(data) // 2] ^= 0x10
        await store.put(key, bytes(data))
        await store.close()

    anyio.run(damage)
    labels = index_labels("damaged", "idx")
    with running_server(backend.with_settings(materialize_interval=0.01), metrics_token=TOKEN) as srv:
        deadline = time.monotonic() + 30
        while value(scrape(srv), "vecledger_materializer_failed", **labels) != 1:
            assert time.monotonic() < deadline, "the materializer did not stop on the damaged object"
            time.sleep(0.05)
        r = httpx.get(f"{srv.url}/readyz")
        assert r.status_code == 200, r.text
        assert "degraded: 1 index materializer(s) stopped" in r.text
        assert "damaged" not in r.text and ids[0] not in r.text  # no names or ids to anonymous callers
        assert value(scrape(srv), "vecledger_materializer_fold_failures_total", reason="corrupt") >= 1


def test_every_dialect_and_unknown_paths_get_bounded_labels(backend: Backend) -> None:
    import alibabacloud_oss_v2.vectors as oss_vectors

    with running_server(backend, metrics_token=TOKEN) as srv:
        before = scrape(srv)
        srv.tos().create_vector_bucket("tos-bucket")
        oss = srv.oss()
        oss.put_vector_bucket(oss_vectors.models.PutVectorBucketRequest(bucket="oss-bucket"))
        oss.list_vector_buckets(oss_vectors.models.ListVectorBucketsRequest())
        for i in range(3):  # random paths must not mint label values
            httpx.post(f"{srv.url}/NoSuchOperation{i}")
        after = scrape(srv)

    def grew(**labels: str) -> bool:
        return value(after, "vecledger_requests_total", **labels) > value(before, "vecledger_requests_total", **labels)

    assert grew(dialect="tos", operation="CreateVectorBucket", status="200")
    assert grew(dialect="oss", operation="CreateVectorBucket", status="200")
    assert grew(dialect="oss", operation="ListVectorBuckets", status="200")
    assert grew(dialect="s3", operation="unknown", status="403")
    assert not [k for k in after if k[0] == "vecledger_requests_total" and "NoSuchOperation" in str(k[1])]
