"""Index modes as S3 Vectors ships them since 2026-09-30: a bucket created from then on makes
ENHANCED indexes and refuses CLASSIC; an older bucket makes CLASSIC ones by default and may switch
either way. The bucket's creation time decides (the engine's clock, injected to make old buckets).
"""

from __future__ import annotations

import anyio
import pytest
from botocore.exceptions import ClientError

from engine import BucketRef, IndexRef
from engine.clock import ManualClock
from engine.context import RequestContext
from tests.api.test_hybrid import client
from tests.backends import Backend
from tests.server import ALICE, running_server

BEFORE = 1_780_000_000.0  # 2026-05-28: before the change
TEXT = {"textSearchConfigurations": [{"metadataKey": "text"}]}


def create(client: object, bucket: str, name: str, **kw: object) -> None:
    client.create_index(  # type: ignore[attr-defined]
        vectorBucketName=bucket, indexName=name, dataType="float32", dimension=2, distanceMetric="cosine", **kw
    )


def code_and_message(fn: object, **kw: object) -> tuple[str, str]:
    with pytest.raises(ClientError) as e:
        fn(**kw)  # type: ignore[operator]
    return str(e.value.response["Error"]["Code"]), str(e.value.response["Error"]["Message"])


async def old_bucket(backend: Backend) -> None:
    """Bucket "vintage", created with the engine's clock before 2026-09-30."""
    async with backend.engine(clock=ManualClock(start=BEFORE)) as eng:
        await eng.create_bucket(RequestContext.system(ALICE.account), BucketRef(ALICE.account, "vintage"))


def test_a_new_bucket_makes_enhanced_indexes_and_refuses_classic(backend: Backend) -> None:
    with running_server(backend) as srv:
        c = client(srv)  # the s3vectors model that knows textSearchConfigurations
        c.create_vector_bucket(vectorBucketName="fresh")
        assert c.get_vector_bucket(vectorBucketName="fresh")["vectorBucket"]["defaultIndexMode"] == "ENHANCED"
        create(c, "fresh", "docs", metadataConfiguration=TEXT)  # full text with no other call, as on AWS
        assert c.get_index(vectorBucketName="fresh", indexName="docs")["index"]["indexMode"] == "ENHANCED"
        code, message = code_and_message(
            c.update_index_mode, vectorBucketName="fresh", indexName="docs", indexMode="CLASSIC"
        )
        assert code == "ValidationException" and "created before September 30, 2026" in message
        code, _ = code_and_message(
            c.put_vector_bucket_default_index_mode, vectorBucketName="fresh", defaultIndexMode="CLASSIC"
        )
        assert code == "ValidationException"
        assert c.get_index(vectorBucketName="fresh", indexName="docs")["index"]["indexMode"] == "ENHANCED"


def test_an_old_bucket_defaults_to_classic_and_may_switch_either_way(backend: Backend) -> None:
    anyio.run(old_bucket, backend)
    with running_server(backend) as srv:
        c = client(srv)  # the s3vectors model that knows textSearchConfigurations
        assert c.get_vector_bucket(vectorBucketName="vintage")["vectorBucket"]["defaultIndexMode"] == "CLASSIC"
        code, _ = code_and_message(
            c.create_index,
            vectorBucketName="vintage",
            indexName="docs",
            dataType="float32",
            dimension=2,
            distanceMetric="cosine",
            metadataConfiguration=TEXT,
        )
        assert code == "ValidationException"  # full text needs ENHANCED
        create(c, "vintage", "plain")
        assert c.get_index(vectorBucketName="vintage", indexName="plain")["index"]["indexMode"] == "CLASSIC"
        c.update_index_mode(vectorBucketName="vintage", indexName="plain", indexMode="ENHANCED")
        c.update_index_mode(vectorBucketName="vintage", indexName="plain", indexMode="CLASSIC")
        assert c.get_index(vectorBucketName="vintage", indexName="plain")["index"]["indexMode"] == "CLASSIC"
        c.put_vector_bucket_default_index_mode(vectorBucketName="vintage", defaultIndexMode="ENHANCED")
        create(c, "vintage", "docs", metadataConfiguration=TEXT)
        c.put_vector_bucket_default_index_mode(vectorBucketName="vintage", defaultIndexMode="CLASSIC")


def test_starts_with_on_enhanced_indexes_from_the_tail_and_the_dataset(backend: Backend) -> None:
    with running_server(backend.with_settings(run_materializers=False)) as srv:
        c = srv.s3vectors()
        c.create_vector_bucket(vectorBucketName="prefixes")
        create(c, "prefixes", "idx")
        vectors = [
            {"key": k, "data": {"float32": [1, i]}, "metadata": {"path": p}}
            for i, (k, p) in enumerate([("a", "docs/intro"), ("b", "docs/api"), ("c", "blog/docs"), ("d", "Docs/x")])
        ]
        c.put_vectors(vectorBucketName="prefixes", indexName="idx", vectors=vectors)
        query = {"vectorBucketName": "prefixes", "indexName": "idx", "topK": 10, "queryVector": {"float32": [1, 0]}}

        def matching() -> set[str]:
            got = c.query_vectors(**query, filter={"path": {"$startsWith": "docs/"}})["vectors"]
            return {v["key"] for v in got}

        assert matching() == {"a", "b"}  # the unfolded tail
        anyio.run(_fold_all, backend)
        assert matching() == {"a", "b"}  # the Lance dataset


async def _fold_all(backend: Backend) -> None:
    async with backend.engine() as eng:
        for index in list(eng.catalog.state.indexes.values()):
            await eng.materialize(IndexRef(index.account, index.bucket_name, index.name))


def test_starts_with_is_refused_on_a_classic_index(backend: Backend) -> None:
    anyio.run(old_bucket, backend)
    with running_server(backend) as srv:
        c = srv.s3vectors()
        create(c, "vintage", "plain")
        code, message = code_and_message(
            c.query_vectors,
            vectorBucketName="vintage",
            indexName="plain",
            topK=1,
            queryVector={"float32": [1, 0]},
            filter={"path": {"$startsWith": "x"}},
        )
        assert code == "ValidationException" and "ENHANCED" in message


def test_an_enhanced_index_takes_100_filter_constraints_and_a_classic_one_more(backend: Backend) -> None:
    anyio.run(old_bucket, backend)
    with running_server(backend) as srv:
        c = srv.s3vectors()
        create(c, "vintage", "classic")
        c.create_vector_bucket(vectorBucketName="fresh")
        create(c, "fresh", "enhanced")
        hundred = {"$or": [{"n": i} for i in range(100)]}
        over = {"$or": [{"n": i} for i in range(101)]}
        ask = {"topK": 1, "queryVector": {"float32": [1, 0]}}
        c.query_vectors(vectorBucketName="fresh", indexName="enhanced", filter=hundred, **ask)
        code, message = code_and_message(
            c.query_vectors, vectorBucketName="fresh", indexName="enhanced", filter=over, **ask
        )
        assert code == "ValidationException" and "at most 100 filter constraints" in message
        c.query_vectors(vectorBucketName="vintage", indexName="classic", filter=over, **ask)
