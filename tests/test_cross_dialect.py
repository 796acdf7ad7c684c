"""One engine, two dialects: what one SDK writes, the other reads, bit for bit."""

from __future__ import annotations

import numpy as np
from tos.models2 import Vector, VectorData

from tests.conftest import Backend
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
