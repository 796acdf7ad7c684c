"""Who changed what, and when: one query over every log (see docs/audit.md).

Accepted mutations are the catalog and data logs themselves; refused or failed requests are in the
audit log. The query reads the logs directly, no index of its own: the catalog log is re-folded to
learn which catalog events took effect, and chunked puts are grouped by request to tell a partial
batch from a whole one. Results are gathered in memory, then sorted by time.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from engine import keys
from engine.catalog.state import CatalogState, Index
from engine.log import Event, read_log
from engine.log import event as ev
from engine.log.payload import decode_vectors
from engine.log.start import LogStart, read_start
from engine.store import ObjectStore

LOG_TRUNCATED = "log.truncated"  # not an event: reported from a log's start object
OPERATIONS = {
    ev.BUCKET_CREATED: "CreateVectorBucket",
    ev.BUCKET_DELETED: "DeleteVectorBucket",
    ev.BUCKET_POLICY_PUT: "PutVectorBucketPolicy",
    ev.BUCKET_POLICY_DELETED: "DeleteVectorBucketPolicy",
    ev.BUCKET_DEFAULT_INDEX_MODE: "PutVectorBucketDefaultIndexMode",
    ev.INDEX_CREATED: "CreateIndex",
    ev.INDEX_DELETED: "DeleteIndex",
    ev.INDEX_MODE_CHANGED: "UpdateIndexMode",
    ev.INDEX_METADATA_CONFIGURATION: "UpdateMetadataConfiguration",
    ev.INDEX_QUOTA: "SetIndexQuota",
    ev.INDEX_RETENTION: "SetIndexRetention",
    ev.TAGS_CHANGED: "TagResource",
    ev.VECTORS_PUT: "PutVectors",
    ev.VECTORS_DELETED: "DeleteVectors",
    ev.VECTORS_RESTORED: "RestoreIndex",
    LOG_TRUNCATED: "DropIndexLogHead",
}
OUTCOMES = ("accepted", "denied", "failed", "partial")


@dataclass
class AuditQuery:
    account: str | None = None  # only this account's resources (the HTTP endpoint sets it)
    bucket: str | None = None
    index: str | None = None
    key: str | None = None
    principal: str | None = None
    since: float | None = None
    until: float | None = None
    type: str | None = None  # an event type or an operation name
    outcome: str | None = None
    verbose: bool = False  # list the keys each data event touched


@dataclass
class AuditRecord:
    time: float
    log: str
    seq: int
    type: str
    operation: str
    outcome: str
    principal: str
    account: str
    source: str
    request_id: str
    dialect: str
    resource: str
    count: int | None = None
    keys: list[str] | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != {}}


def _record(log: str, seq: int, e: Event, outcome: str, resource: str, **kw: Any) -> AuditRecord:
    return AuditRecord(
        time=e.time,
        log=log,
        seq=seq,
        type=e.type,
        operation=OPERATIONS.get(e.type, e.type),
        outcome=outcome,
        principal=e.principal,
        account=e.account,
        source=e.source,
        request_id=e.request_id,
        dialect=e.dialect,
        resource=resource,
        **kw,
    )


def _wanted(q: AuditQuery, r: AuditRecord) -> bool:
    return (
        (q.principal is None or r.principal == q.principal)
        and (q.since is None or r.time >= q.since)
        and (q.until is None or r.time <= q.until)
        and (q.type is None or q.type in (r.type, r.operation))
        and (q.outcome is None or r.outcome == q.outcome)
        and (q.key is None or (r.keys is not None and q.key in r.keys))
    )


def _in_scope(q: AuditQuery, account: str, bucket: str | None, index: str | None) -> bool:
    return (
        (q.account is None or account == q.account)
        and (q.bucket is None or bucket == q.bucket)
        and (q.index is None or index == q.index)
    )


def _names(state: CatalogState, type: str, p: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(account, bucket name, index name) a catalog event is about, live or deleted."""
    index_id = p.get("index_id") or (p.get("id") if p.get("resource") == "index" else None)
    idx = (state.indexes.get(index_id) or state.deleted_indexes.get(index_id)) if index_id else None
    bucket_id = p.get("bucket_id") or (p.get("id") if p.get("resource") == "bucket" else None)
    bucket_id = bucket_id or (idx.bucket_id if idx else None)
    b = (state.buckets.get(bucket_id) or state.deleted_buckets.get(bucket_id)) if bucket_id else None
    account = b.account if b else p.get("account")
    bucket = b.name if b else p.get("name") if type == ev.BUCKET_CREATED else None
    index = idx.name if idx else p.get("name") if type == ev.INDEX_CREATED else None
    return account, bucket, index


async def _catalog(store: ObjectStore, q: AuditQuery) -> list[AuditRecord]:
    """Re-fold the catalog log to learn each event's outcome and the names it touched."""
    fold, out = CatalogState(), []
    async for obj in read_log(store, keys.CATALOG_LOG):
        for e in obj.events:
            p = e.json()
            rejected = fold.apply(e)
            account, bucket, index = _names(fold, e.type, p)
            account = account or e.account
            if not _in_scope(q, account, bucket, index) or (q.index is not None and index is None):
                continue
            detail: dict[str, Any] = {"reason": str(rejected)} if rejected else {}
            if p.get("restored_from"):
                detail["restored_from"] = p["restored_from"]
            resource = f"{account}/{bucket}" + (f"/{index}" if index else "")
            out.append(_record("catalog", obj.seq, e, "failed" if rejected else "accepted", resource, detail=detail))
    return out


async def _data(store: ObjectStore, q: AuditQuery, index: Index) -> list[AuditRecord]:
    log = f"{index.bucket_name}/{index.name}#{index.id}"
    resource = f"{index.account}/{index.bucket_name}/{index.name}"
    out: list[AuditRecord] = []
    chunks: dict[str, tuple[int, set[int]]] = {}
    prefix = keys.index_log(index.bucket_id, index.id)
    start = await read_start(store, prefix)
    if start is not None:
        out.append(_dropped(log, resource, index, start))
    async for obj in read_log(store, prefix, -1 if start is None else start.base_seq):
        for e in obj.events:
            touched: list[str] | None = None
            if q.verbose or q.key is not None:
                if e.type == ev.VECTORS_PUT:
                    touched = decode_vectors(log, e.payload).keys
                elif e.type == ev.VECTORS_DELETED:
                    touched = list(json.loads(e.payload)["keys"])
            count = e.attrs.get("count")
            detail = {"chunk": e.attrs["chunk"]} if "chunk" in e.attrs else {}
            if e.type == ev.VECTORS_RESTORED:
                detail = e.json()
            out.append(_record(log, obj.seq, e, "accepted", resource, count=count, keys=touched, detail=detail))
            if "chunk" in e.attrs:
                total, seen = chunks.setdefault(e.request_id or e.id, (e.attrs["chunk"][1], set()))
                seen.add(e.attrs["chunk"][0])
    for r in out:  # a chunk of a batch some of whose chunks never landed
        if "chunk" in r.detail:
            total, seen = chunks[r.request_id or ""] if r.request_id in chunks else (0, set())
            if len(seen) < total:
                r.outcome = "partial"
    return out


def _dropped(log: str, resource: str, index: Index, start: LogStart) -> AuditRecord:
    """The head of a data log that log retention dropped: what, when, under whose setting."""
    return AuditRecord(
        time=start.truncated_at,
        log=log,
        seq=start.base_seq,
        type=LOG_TRUNCATED,
        operation=OPERATIONS[LOG_TRUNCATED],
        outcome="accepted",
        principal=start.set_by,
        account=index.account,
        source="vecledger",
        request_id="",
        dialect="",
        resource=resource,
        detail={
            "dropped_before_seq": start.seq,
            "dropped_before_time": start.base_time,
            "log_retention_seconds": start.retention,
            "restorable_from_seq": start.base_seq,
        },
    )


MAX_RESOURCE = 1024  # longer resources (only a refused request's path can be) are not parsed


def parse_resource(resource: str) -> tuple[str | None, str | None, str | None]:
    """(account, bucket, index) from an ARN, a TRN, an acs: name or ``account/bucket/index``.

    Split by hand, in linear time: a regular expression with a lazy prefix was quadratic in a
    refused request's path, and ran for every record of every audit query."""
    if len(resource) > MAX_RESOURCE:
        return None, None, None
    if ":" in resource:
        head, _, tail = resource.rpartition(":")
        account = head.rpartition(":")[2]
    else:
        account, _, tail = resource.partition("/")
    parts = tail.split("/")
    if parts[0] == "bucket":
        parts = parts[1:]
    if len(parts) == 3 and parts[1] == "index":
        parts = [parts[0], parts[2]]
    if not account.isdigit() or not 1 <= len(parts) <= 2 or not all(parts):
        return None, None, None
    return account, parts[0], parts[1] if len(parts) == 2 else None


async def _refused(store: ObjectStore, q: AuditQuery) -> list[AuditRecord]:
    """Refused requests are an account's when it made them (the key it signed with is its own,
    whether or not the signature was right) or when they aimed at a resource it owns; the
    resource's account as the path spelled it is never enough (docs/audit.md)."""
    out = []
    async for obj in read_log(store, keys.AUDIT_LOG):
        for e in obj.events:
            p = e.json()
            resource = str(p.get("resource", ""))
            account, bucket, index = parse_resource(resource)
            if q.account is not None:
                if q.account not in (e.account, p.get("owner")):
                    continue
                if q.bucket is not None and account != q.account:
                    continue  # the caller's own refusal, on another account's bucket of that name
            if not _in_scope(replace(q, account=None), account or "", bucket, index):
                continue
            outcome = {ev.REQUEST_DENIED: "denied", ev.REQUEST_THROTTLED: "denied"}.get(e.type, "failed")
            if e.type == ev.REQUEST_FAILED and p.get("landed_seqs"):
                outcome = "partial"
            rec = _record("audit", obj.seq, e, outcome, resource, detail=p)
            rec.operation = str(p.get("operation") or rec.operation)
            out.append(rec)
    return out


async def query(store: ObjectStore, state: CatalogState, q: AuditQuery) -> list[AuditRecord]:
    """Every matching record from the catalog, data and audit logs, oldest first."""
    records = [] if q.key is not None else await _catalog(store, q)
    for index in [*state.indexes.values(), *state.deleted_indexes.values()]:
        if _in_scope(q, index.account, index.bucket_name, index.name):
            records += await _data(store, q, index)
    if q.key is None:
        records += await _refused(store, q)
    records = [r for r in records if _wanted(q, r)]
    return sorted(records, key=lambda r: (r.time, r.log, r.seq))
