"""Tampering with the logs behind the service's back: a deleted, an edited (checksums fixed up) and
a reordered object in each of the catalog, data and audit logs, all reported by key by
``vecledger audit --verify``; a restore refuses to replay an edited stretch unless told otherwise.

Before: objects carried only CRC32s, so an edit that recomputed them was invisible, and readers
stopped at a deleted object, hiding every record after it without a word.
"""

from __future__ import annotations

import anyio

from api.config import Credential
from engine import keys
from engine.log.event import decode, decode_header, encode
from engine.store import ObjectStore
from tests.api.test_admin import admin, cli
from tests.backends import Backend
from tests.server import ALICE, RunningServer, running_server


def populate(srv: RunningServer) -> None:
    c = srv.s3vectors()
    c.create_vector_bucket(vectorBucketName="ledger")
    for name in ("docs", "spare"):
        c.create_index(
            vectorBucketName="ledger", indexName=name, dataType="float32", dimension=2, distanceMetric="cosine"
        )
    for i in range(8):  # eight data objects, and eight more catalog events
        c.put_vectors(
            vectorBucketName="ledger", indexName="docs", vectors=[{"key": f"k{i}", "data": {"float32": [1, i]}}]
        )
        arn = f"arn:aws:s3vectors:us-east-1:{ALICE.account}:bucket/ledger"
        c.tag_resource(resourceArn=arn, tags={"round": str(i)})
    wrong = srv.s3vectors(Credential(ALICE.access_key_id, "wrong", ALICE.account), retries={"max_attempts": 1})
    for _ in range(8):  # eight audit records: a known key, a bad signature
        try:
            wrong.list_vector_buckets()
        except Exception as e:
            assert "AccessDenied" in str(e)


async def edit(store: ObjectStore, key: str, seq: int) -> None:
    """Change one event's principal, then re-encode with valid checksums and the same link."""
    data = (await store.get(key)).data
    header, _ = decode_header(key, data)
    obj = decode(key, seq, data)
    forged = [e.__class__(**(vars(e) | {"principal": "arn:aws:iam::999999999999:root"})) for e in obj.events]
    await store.put(key, encode(seq, obj.time, forged, header.get("prev")))


async def tamper(backend: Backend) -> dict[str, str]:
    """Delete seq 1, edit seq 3, swap seqs 5 and 6 in every log; the prefix of each, by name."""
    async with backend.engine() as eng:
        docs = next(i for i in eng.catalog.state.indexes.values() if i.name == "docs")
    logs = {"catalog": keys.CATALOG_LOG, "audit": keys.AUDIT_LOG, "data": keys.index_log(docs.bucket_id, docs.id)}
    store = await backend.store()
    try:
        for prefix in logs.values():
            await store.delete(keys.log_entry(prefix, 1))
            await edit(store, keys.log_entry(prefix, 3), 3)
            five, six = keys.log_entry(prefix, 5), keys.log_entry(prefix, 6)
            a, b = (await store.get(five)).data, (await store.get(six)).data
            await store.put(five, b)
            await store.put(six, a)
    finally:
        await store.close()
    return logs


def test_verify_reports_every_kind_of_tampering_in_every_log_by_key(backend: Backend) -> None:
    settings = backend.with_settings(catalog_snapshot_every=1_000_000)  # keep the catalog log whole
    with running_server(settings) as srv:
        populate(srv)
    clean = cli(backend, "audit", "--verify")
    assert clean.returncode == 0 and "0 broken" in clean.stdout, clean.stdout + clean.stderr
    logs = anyio.run(tamper, backend)
    out = cli(backend, "audit", "--verify")
    assert out.returncode == 1, out.stdout + out.stderr
    for prefix in logs.values():
        assert f"DELETED {keys.log_entry(prefix, 1)}" in out.stdout, out.stdout
        assert f"EDITED {keys.log_entry(prefix, 3)}" in out.stdout, out.stdout
        assert f"REORDERED {keys.log_entry(prefix, 5)}" in out.stdout, out.stdout
        assert f"REORDERED {keys.log_entry(prefix, 6)}" in out.stdout, out.stdout
    assert "3 broken" in out.stdout


def test_a_restore_refuses_an_edited_log_unless_told(backend: Backend) -> None:
    with running_server(backend) as srv:
        populate(srv)

    async def edit_data() -> None:
        async with backend.engine() as eng:
            docs = next(i for i in eng.catalog.state.indexes.values() if i.name == "docs")
        store = await backend.store()
        try:
            await edit(store, keys.log_entry(keys.index_log(docs.bucket_id, docs.id), 2), 2)
        finally:
            await store.close()

    anyio.run(edit_data)
    with running_server(backend) as srv:
        body = {"vectorBucketName": "ledger", "indexName": "docs", "intoIndexName": "back", "toSeq": 7}
        status, reply = admin(srv, "restore", body)
        assert (status, reply["code"]) == (400, "ValidationException"), reply
        assert "hash chain" in reply["message"] and "seq 2" in reply["message"], reply
        assert [i["indexName"] for i in srv.s3vectors().list_indexes(vectorBucketName="ledger")["indexes"]] == [
            "docs",
            "spare",
        ]
        status, reply = admin(srv, "restore", body | {"allowBrokenChain": True})
        assert status == 200, reply
        got = srv.s3vectors().get_vectors(vectorBucketName="ledger", indexName="back", keys=["k7"])
        assert [v["key"] for v in got["vectors"]] == ["k7"]
