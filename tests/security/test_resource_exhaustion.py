"""Work and memory one client can make the server spend: bodies held before anyone is
authenticated, a tail a stalled materializer lets grow, and filters too large to compile.

Before: any number of anonymous 20 MiB bodies were read at once, the tail grew without bound
while nothing folded, and a 2-million-term ``$in`` was walked term by term before being refused.
"""

from __future__ import annotations

import socket
import time

import pytest
from botocore.exceptions import ClientError

from engine import keys
from engine.log import read_log
from tests.backends import Backend
from tests.server import running_server

D = 8


def test_bodies_held_at_once_are_bounded_across_all_clients(backend: Backend) -> None:
    with running_server(backend, max_inflight_body_bytes=1024 * 1024) as srv:
        slow = socket.create_connection(("127.0.0.1", srv.port))
        head = f"POST /ListVectorBuckets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {1000_000}\r\n\r\n"
        slow.sendall(head.encode() + b"x" * 900_000)  # an anonymous body, held unfinished
        time.sleep(0.5)
        client = srv.s3vectors(retries={"max_attempts": 1})
        big = [{"key": f"k{i}", "data": {"float32": [0.5] * 64}} for i in range(500)]  # ~0.17 MB of JSON
        client.create_vector_bucket(vectorBucketName="bkt")
        client.create_index(
            vectorBucketName="bkt", indexName="idx", dataType="float32", dimension=64, distanceMetric="cosine"
        )
        with pytest.raises(ClientError) as e:
            client.put_vectors(vectorBucketName="bkt", indexName="idx", vectors=big)
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert e.value.response["Error"]["Code"] == "ServiceUnavailableException"
        slow.close()  # its bytes are given back; the same request now passes
        deadline = time.monotonic() + 10
        while True:
            try:
                client.put_vectors(vectorBucketName="bkt", indexName="idx", vectors=big)
                break
            except ClientError:
                assert time.monotonic() < deadline, "the held bytes were never given back"
                time.sleep(0.1)


async def test_a_tail_nothing_folds_stops_growing(backend: Backend) -> None:
    settings = backend.with_settings(run_materializers=False, max_tail_bytes=200 * (4 * D + 64))
    with running_server(settings) as srv:
        client = srv.s3vectors(retries={"max_attempts": 1})
        client.create_vector_bucket(vectorBucketName="bkt")
        client.create_index(
            vectorBucketName="bkt", indexName="idx", dataType="float32", dimension=D, distanceMetric="cosine"
        )
        batch = [{"key": f"k{i}", "data": {"float32": [0.5] * D}} for i in range(150)]
        client.put_vectors(vectorBucketName="bkt", indexName="idx", vectors=batch)  # into an empty tail: passes
        with pytest.raises(ClientError) as e:
            client.put_vectors(vectorBucketName="bkt", indexName="idx", vectors=batch)
        assert e.value.response["Error"]["Code"] == "TooManyRequestsException"
        assert "not yet folded" in e.value.response["Error"]["Message"]
    async with backend.engine() as eng:
        index = next(i for i in eng.catalog.state.indexes.values() if i.name == "idx")
    store = await backend.store()
    try:
        objects = [o async for o in read_log(store, keys.index_log(index.bucket_id, index.id))]
    finally:
        await store.close()
    assert len(objects) == 1  # the refused put never reached the log


def test_a_huge_in_list_is_refused_before_it_is_walked(backend: Backend) -> None:
    with running_server(backend) as srv:
        client = srv.s3vectors(retries={"max_attempts": 1})
        client.create_vector_bucket(vectorBucketName="bkt")
        client.create_index(
            vectorBucketName="bkt", indexName="idx", dataType="float32", dimension=D, distanceMetric="cosine"
        )
        with pytest.raises(ClientError) as e:
            client.query_vectors(
                vectorBucketName="bkt",
                indexName="idx",
                topK=1,
                queryVector={"float32": [0.5] * D},
                filter={"k": {"$in": list(range(1_000_000))}},
            )
        assert e.value.response["Error"]["Code"] == "ValidationException"
        assert "at most 1000 conditions" in e.value.response["Error"]["Message"]
        assert srv.s3vectors().list_indexes(vectorBucketName="bkt")["indexes"]  # and the server is fine
