"""Admin endpoints, for bucket owners only: restore, audit, write quotas, retention, replay check,
index status.

``POST /_vecledger/<action>`` with a JSON body, signed like any S3 Vectors request (SigV4). Each
names a bucket; the caller's account must own it, or the request is refused and audited. The bucket
policy applies as to every call: the action is named ``s3vectors:Admin<Action>`` (``AdminRestore``,
``AdminAudit``, ``AdminQuota``, ``AdminRetention``, ``AdminReplayCheck``, ``AdminIndexStatus``), and
each implies the S3 Vectors actions whose effect it has, so that a user denied GetVectors on an
index cannot read it by restoring a copy, nor change an index it may not write. The restore, the
quota and the retention changes are catalog events, so they are audited like every mutation.
"""

from __future__ import annotations

from typing import Any

from api import limits
from api.bodies import parse_body
from api.call import Call
from api.errors import validation
from api.models import Req
from engine import BucketRef, IndexRef, Settings
from engine.audit.query import OUTCOMES, AuditQuery


class RestoreBody(Req):
    vectorBucketName: str
    indexName: str
    intoIndexName: str
    intoBucketName: str | None = None
    toSeq: int | None = None
    toTime: str | None = None
    indexId: str | None = None
    allowBrokenChain: bool = False


class AuditBody(Req):
    vectorBucketName: str | None = None  # None: the whole account (its root only)
    indexName: str | None = None
    key: str | None = None
    principal: str | None = None
    since: str | None = None
    until: str | None = None
    type: str | None = None
    outcome: str | None = None
    verbose: bool = False


class RetentionBody(Req):
    vectorBucketName: str
    indexName: str
    pitrWindowSeconds: float | None = None
    logRetentionSeconds: float | None = None


class QuotaBody(Req):
    vectorBucketName: str
    indexName: str
    requestsPerSecond: float | None = None
    vectorsPerSecond: float | None = None


class IndexBody(Req):
    vectorBucketName: str
    indexName: str


def _time(value: str | None, field: str) -> float | None:
    if value is None:
        return None
    try:
        return limits.iso_time(value)
    except ValueError as e:
        raise validation(f"{field}: {e}", field) from None


def operation_name(action: str) -> str:
    """``replay-check`` -> ``AdminReplayCheck``: the name policies, metrics and the audit use."""
    return "Admin" + "".join(part.capitalize() for part in action.split("-"))


async def _owner(call: Call, bucket: str, index: str | None = None, also: tuple[str, ...] = ()) -> BucketRef:
    """The caller's own bucket (else NotFound), once the bucket policy allows the call on it."""
    ref = BucketRef(call.account, bucket)
    await call.engine.get_bucket(ref)
    await call.authorize(ref, index, also)
    return ref


async def restore(call: Call, body: bytes) -> Any:
    req = parse_body(RestoreBody, body)
    name = limits.index_name(req.intoIndexName, "intoIndexName")
    ref = await _owner(call, req.vectorBucketName, req.indexName, ("GetIndex", "GetVectors"))
    into = await _owner(call, req.intoBucketName or req.vectorBucketName, name, ("CreateIndex", "PutVectors"))
    index = await call.engine.restore_index(
        call.ctx,
        IndexRef(ref.account, ref.name, req.indexName),
        IndexRef(into.account, into.name, name),
        to_seq=req.toSeq,
        to_time=_time(req.toTime, "toTime"),
        source_id=req.indexId,
        allow_broken_chain=req.allowBrokenChain,
    )
    src = index.restored_from or {}
    return {"indexArn": call.index_id(IndexRef(into.account, into.name, name)), "restoredFromSeq": src.get("seq")}


async def audit(call: Call, body: bytes) -> Any:
    req = parse_body(AuditBody, body)
    if req.vectorBucketName is not None:
        await _owner(call, req.vectorBucketName, req.indexName, ("GetVectors",) if req.verbose else ())
    elif call.credential.user is not None or req.indexName is not None:
        # No bucket policy governs an account-wide query: only the account's root may ask it.
        raise validation(
            "vectorBucketName is required (an account-wide audit is for the root only)", "vectorBucketName"
        )
    if req.outcome is not None and req.outcome not in OUTCOMES:
        raise validation(f"outcome must be one of {', '.join(OUTCOMES)}", "outcome")
    q = AuditQuery(
        account=call.account,
        bucket=req.vectorBucketName,
        index=req.indexName,
        key=req.key,
        principal=req.principal,
        since=_time(req.since, "since"),
        until=_time(req.until, "until"),
        type=req.type,
        outcome=req.outcome,
        verbose=req.verbose,
    )
    return {"records": [r.to_json() for r in await call.engine.audit_records(q)]}


async def quota(call: Call, body: bytes) -> Any:
    req = parse_body(QuotaBody, body)
    ref = await _owner(call, req.vectorBucketName, req.indexName)
    index = await call.engine.set_index_quota(
        call.ctx, IndexRef(ref.account, ref.name, req.indexName), req.requestsPerSecond, req.vectorsPerSecond
    )
    q = index.quota or {}
    return {"requestsPerSecond": q.get("requests_per_second"), "vectorsPerSecond": q.get("vectors_per_second")}


async def retention(call: Call, body: bytes) -> Any:
    """How long the index keeps restore points and its log. A field left out stays as it is, null
    returns to the server's default; ``logRetentionSeconds`` 0 keeps the log forever (and a null
    in the reply means forever)."""
    req = parse_body(RetentionBody, body)
    ref = await _owner(call, req.vectorBucketName, req.indexName)
    fields = {"pitrWindowSeconds": "pitr_window", "logRetentionSeconds": "log_retention"}
    changes = {fields[f]: getattr(req, f) for f in req.model_fields_set if f in fields}
    index = await call.engine.set_index_retention(call.ctx, IndexRef(ref.account, ref.name, req.indexName), changes)
    return retention_reply(index.retention or {}, call.engine.settings)


def retention_reply(own: dict[str, Any], settings: Settings) -> dict[str, Any]:
    log_retention = own.get("log_retention", settings.log_retention)
    return {
        "pitrWindowSeconds": own.get("pitr_window") or settings.pitr_window,
        "logRetentionSeconds": log_retention or None,
        "default": "pitr_window" not in own and "log_retention" not in own,
        "pitrWindowDefault": "pitr_window" not in own,
        "logRetentionDefault": "log_retention" not in own,
    }


async def replay_check(call: Call, body: bytes) -> Any:
    req = parse_body(IndexBody, body)
    ref = await _owner(call, req.vectorBucketName, req.indexName, ("GetVectors",))
    report = await call.engine.replay_check(IndexRef(ref.account, ref.name, req.indexName))
    return {
        "ok": report.ok,
        "seq": report.seq,
        "fromSeq": report.from_seq,
        "rows": report.rows,
        "mismatches": report.mismatches[:100],
    }


async def index_status(call: Call, body: bytes) -> Any:
    """What the S3 API does not say: vector count, folded and logged seqs, and the index type."""
    req = parse_body(IndexBody, body)
    ref = await _owner(call, req.vectorBucketName, req.indexName, ("GetIndex",))
    s = await call.engine.index_status(IndexRef(ref.account, ref.name, req.indexName))
    return {
        "vectors": s.vectors,
        "materializedSeq": s.materialized_seq,
        "logSeq": s.log_seq,
        "lag": s.lag,
        "indexType": s.index_type,
        "partitions": s.partitions,
        "datasetRows": s.dataset_rows,
        "tailKeys": s.tail_keys,
    }


ACTIONS = {
    "restore": restore,
    "audit": audit,
    "quota": quota,
    "retention": retention,
    "replay-check": replay_check,
    "index-status": index_status,
}
