"""One engine, two dialects: what one SDK writes, the other reads, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from tos.models2 import Vector, VectorData

from tests.backends import Backend
from tests.server import ALICE, running_server

ACCT = ALICE.account


def test_s3_writes_tos_reads_and_back(backend: Backend) -> None:
    with running_server(backend) as srv:
        s3, tos = srv.s3vectors(), srv.tos()
        s3.create_vector_bucket(vectorBucketName="both")
        s3.create_index(
            vectorBucketName="both", indexName="idx", dataType="float32", dimension=4, distanceMetric="cosine"
        )
        v = np.array([0.1, -0.2, 0.3, 1e-8], dtype=np.float32)
        s3.put_vectors(
            vectorBucketName="both",
            indexName="idx",
            vectors=[{"key": "from-s3", "data": {"float32": v.tolist()}, "metadata": {"by": "boto3"}}],
        )

        assert tos.get_index("both", ACCT, "idx").index.dimension == 4
        hits = tos.query_vectors(
            "both",
            ACCT,
            "idx",
            query_vector=VectorData(float32=v.tolist()),
            top_k=3,
            return_distance=True,
            return_metadata=True,
        ).vectors
        assert [(h.key, h.metadata) for h in hits] == [("from-s3", {"by": "boto3"})]
        assert abs(hits[0].distance) < 1e-6

        tos.put_vectors(
            "both",
            ACCT,
            "idx",
            [Vector(key="from-tos", data=VectorData(float32=[0.5, 0.5, 0.5, 0.5]), metadata={"by": "tos"})],
        )
        got = s3.get_vectors(
            vectorBucketName="both", indexName="idx", keys=["from-tos", "from-s3"], returnData=True, returnMetadata=True
        )["vectors"]
        assert [(g["key"], g["metadata"]) for g in got] == [("from-tos", {"by": "tos"}), ("from-s3", {"by": "boto3"})]
        assert np.array(got[1]["data"]["float32"], dtype=np.float32).tobytes() == v.tobytes()
        assert [b.vector_bucket_name for b in tos.list_vector_buckets().vector_buckets] == ["both"]


def test_oss_writes_boto3_and_tos_read_and_back(backend: Backend) -> None:
    import alibabacloud_oss_v2.vectors as ov

    m = ov.models
    with running_server(backend) as srv:
        s3, tos, oss = srv.s3vectors(), srv.tos(), srv.oss()
        oss.put_vector_bucket(m.PutVectorBucketRequest(bucket="tri"))
        oss.put_vector_index(
            m.PutVectorIndexRequest(
                bucket="tri", index_name="idx1", data_type="float32", dimension=2, distance_metric="euclidean"
            )
        )
        oss.put_vectors(
            m.PutVectorsRequest(
                bucket="tri",
                index_name="idx1",
                vectors=[{"key": "from-oss", "data": {"float32": [0.25, -4.5]}, "metadata": {"by": "oss"}}],
            )
        )
        got = s3.get_vectors(
            vectorBucketName="tri", indexName="idx1", keys=["from-oss"], returnData=True, returnMetadata=True
        )["vectors"]
        assert got == [{"key": "from-oss", "data": {"float32": [0.25, -4.5]}, "metadata": {"by": "oss"}}]
        hits = tos.query_vectors(
            "tri", ACCT, "idx1", query_vector=VectorData(float32=[0.25, -4.5]), top_k=1, return_metadata=True
        ).vectors
        assert [(h.key, h.metadata) for h in hits] == [("from-oss", {"by": "oss"})]

        s3.put_vectors(
            vectorBucketName="tri", indexName="idx1", vectors=[{"key": "from-s3", "data": {"float32": [1.0, 1.0]}}]
        )
        tos.put_vectors("tri", ACCT, "idx1", [Vector(key="from-tos", data=VectorData(float32=[2.0, 2.0]))])
        listed = oss.list_vectors(m.ListVectorsRequest(bucket="tri", index_name="idx1", return_data=True)).vectors
        assert [(v["key"], v["data"]["float32"]) for v in listed] == [
            ("from-oss", [0.25, -4.5]),
            ("from-s3", [1.0, 1.0]),
            ("from-tos", [2.0, 2.0]),
        ]
        info = oss.get_vector_bucket(m.GetVectorBucketRequest(bucket="tri")).bucket_info
        assert s3.get_vector_bucket(vectorBucketName="tri")["vectorBucket"]["creationTime"].timestamp() == (
            pytest.approx(info.creation_date.timestamp(), abs=1)
        )
