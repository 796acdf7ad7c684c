"""A flaky store under the server: 10% of store calls fail, are slow or lose their reply.

The SDKs retry what the server answers with 503; the engine retries idempotent reads and recognises
its own appends after a lost reply. The state they converge on must be exactly the intended one,
with nothing corrupt: the log replays to the same dataset, and the materializer catches up.
"""

from __future__ import annotations

import random
import time
from typing import Any

import anyio
import numpy as np

from engine.store import FaultyStore, ObjectStore
from engine.store.faulty import DELAY, ERROR, LOST_REPLY, random_faults
from tests.backends import Backend
from tests.server import ALICE, running_server

D = 8
KEYS = 120


def _vector(key: int, version: int) -> list[float]:
    return [float(key), float(version)] + [0.5] * (D - 2)


def test_sdk_retries_converge_on_the_intended_state_through_ten_percent_faults(backend: Backend) -> None:
    faults = random_faults(0.10, kinds=(ERROR, DELAY, LOST_REPLY), seed=7)
    enabled = {"on": False}
    stores: list[FaultyStore] = []

    def wrap(store: ObjectStore) -> ObjectStore:
        faulty = FaultyStore(store, lambda verb, key: faults(verb, key) if enabled["on"] else None)
        stores.append(faulty)
        return faulty

    settings = backend.with_tuning(build_threshold=200, optimize_unindexed_rows=100)
    with running_server(settings, wrap_store=wrap) as srv:
        client = srv.s3vectors_with_retries(10)
        client.create_vector_bucket(vectorBucketName="flaky")
        client.create_index(
            vectorBucketName="flaky", indexName="idx", dataType="float32", dimension=D, distanceMetric="euclidean"
        )
        enabled["on"] = True
        rng = random.Random(11)
        intended: dict[str, int | None] = {}
        for version in range(1, 31):
            batch = rng.sample(range(KEYS), 40)
            client.put_vectors(
                vectorBucketName="flaky",
                indexName="idx",
                vectors=[
                    {"key": f"k{k}", "data": {"float32": _vector(k, version)}, "metadata": {"v": version}}
                    for k in batch
                ],
            )
            intended.update({f"k{k}": version for k in batch})
            gone = [f"k{k}" for k in rng.sample(range(KEYS), 5)]
            client.delete_vectors(vectorBucketName="flaky", indexName="idx", keys=gone)
            intended.update({k: None for k in gone})
        oss = srv.oss(attempts=10)
        import alibabacloud_oss_v2.vectors as oss_vectors

        oss.put_vectors(
            oss_vectors.models.PutVectorsRequest(
                bucket="flaky",
                index_name="idx",
                vectors=[{"key": "oss-1", "data": {"float32": _vector(1000, 99)}, "metadata": {"v": 99}}],
            )
        )
        intended["oss-1"] = 99
        injected = sum(len(s.injected) for s in stores)
        enabled["on"] = False

        # Exactly the intended state, read back through the API.
        found: dict[str, Any] = {}
        keys = sorted(intended)
        for i in range(0, len(keys), 100):
            got = client.get_vectors(
                vectorBucketName="flaky", indexName="idx", keys=keys[i : i + 100], returnData=True, returnMetadata=True
            )
            found.update({v["key"]: v for v in got["vectors"]})
        for key, version in intended.items():
            if version is None:
                assert key not in found, key
            else:
                assert found[key]["metadata"] == {"v": version}, key
                assert found[key]["data"]["float32"][1] == version, key

    assert injected >= 20, f"only {injected} faults were injected"
    print(f"{backend.name}: {injected} store faults injected")
    # Nothing corrupt: a fresh engine over the same root folds to the end and replays identically.

    async def check() -> None:
        from engine import IndexRef

        async with backend.engine() as eng:
            ref = IndexRef(ALICE.account, "flaky", "idx")
            live = await eng.live(ref)
            with anyio.fail_after(60):
                while live.checkpoint.seq < live.tail.seq:
                    await eng.materialize(ref)
            report = await eng.replay_check(ref)
            assert report.ok, report.mismatches
            assert report.rows == sum(1 for v in intended.values() if v is not None)
            hits = await eng.query_vectors(ref, np.array(_vector(3, 30), np.float32), 5)
            assert hits and all(intended.get(h.key) is not None for h in hits)

    started = time.monotonic()
    anyio.run(check)
    assert time.monotonic() - started < 60
