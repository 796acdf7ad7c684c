"""The control plane as a fold of the catalog log: buckets, indexes, policies, tags.

``CatalogState.apply`` is deterministic and total: an event that the state cannot accept (a bucket
name that a racing writer took first, say) is folded as a no-op and its rejection returned, so every
process that folds the same log reaches the same state and tells the losing writer the same thing.
Handlers validate fully before they mutate, which lets ``check`` run them as a dry run: invalid
requests are refused before they reach the log.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from engine.errors import (
    BucketAlreadyExists,
    BucketNotEmpty,
    BucketNotFound,
    IndexAlreadyExists,
    IndexNotFound,
    PolicyNotFound,
    QuotaExceeded,
    VecledgerError,
)
from engine.log.event import (
    BUCKET_CREATED,
    BUCKET_DEFAULT_INDEX_MODE,
    BUCKET_DELETED,
    BUCKET_POLICY_DELETED,
    BUCKET_POLICY_PUT,
    INDEX_CREATED,
    INDEX_DELETED,
    INDEX_METADATA_CONFIGURATION,
    INDEX_MODE_CHANGED,
    INDEX_QUOTA,
    INDEX_RETENTION,
    TAGS_CHANGED,
    Event,
)

MAX_BUCKETS_PER_ACCOUNT = 10_000
MAX_INDEXES_PER_BUCKET = 10_000


# S3 Vectors' rule since 2026-09-30: buckets created from then on default to ENHANCED indexes and
# cannot hold CLASSIC ones; older buckets default to CLASSIC and may hold either.
ENHANCED_ONLY_SINCE = 1790726400.0  # 2026-09-30T00:00:00Z


@dataclass(frozen=True)
class Bucket:
    id: str
    name: str
    account: str
    creation_time: float
    encryption: dict[str, Any] | None = None
    default_index_mode: str = "CLASSIC"
    policy: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def classic_allowed(self) -> bool:
        return self.creation_time < ENHANCED_ONLY_SINCE


@dataclass(frozen=True)
class Index:
    id: str
    bucket_id: str
    bucket_name: str
    account: str
    name: str
    creation_time: float
    dimension: int
    metric: str
    data_type: str = "float32"
    non_filterable_keys: tuple[str, ...] = ()
    encryption: dict[str, Any] | None = None
    mode: str = "CLASSIC"
    text_search: tuple[dict[str, Any], ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    restored_from: dict[str, Any] | None = None
    # An OSS fusion-mode index's schemaConfiguration, as created (None for every other index).
    schema: dict[str, Any] | None = None
    quota: dict[str, float] | None = None  # {"requests_per_second", "vectors_per_second"}
    # {"pitr_window", "log_retention"}: seconds, over the server's defaults (a log retention of 0:
    # keep the log forever); "log_retention_set_by": who set the log retention.
    retention: dict[str, Any] | None = None


Handler = Callable[["CatalogState", dict[str, Any], Event, bool], None]


@dataclass
class CatalogState:
    seq: int = -1
    buckets: dict[str, Bucket] = field(default_factory=dict)
    indexes: dict[str, Index] = field(default_factory=dict)
    bucket_names: dict[tuple[str, str], str] = field(default_factory=dict)
    index_names: dict[tuple[str, str], str] = field(default_factory=dict)
    # Deleted resources stay known by id: their logs remain for audit and recovery.
    deleted_buckets: dict[str, Bucket] = field(default_factory=dict)
    deleted_indexes: dict[str, Index] = field(default_factory=dict)
    deleted_at: dict[str, float] = field(default_factory=dict)  # index id -> deletion time

    def __post_init__(self) -> None:
        # Live buckets per account and indexes per bucket: the limits are checked at every create,
        # and a count by scan would make folding a catalog of 10,000 indexes quadratic.
        self._buckets_per_account = Counter(b.account for b in self.buckets.values())
        self._indexes_per_bucket = Counter(i.bucket_id for i in self.indexes.values())

    def apply(self, event: Event) -> VecledgerError | None:
        """Fold one event; returns why it was rejected (and left no trace), or None."""
        return self._run(event, dry=False)

    def check(self, event: Event) -> None:
        """Raise the error ``apply`` would report, without changing anything."""
        error = self._run(event, dry=True)
        if error is not None:
            raise error

    def _run(self, event: Event, dry: bool) -> VecledgerError | None:
        handler = _HANDLERS.get(event.type)
        if handler is None:
            return None  # an event type this version does not know changes nothing it tracks
        try:
            handler(self, event.json(), event, dry)
        except VecledgerError as e:
            return e
        return None

    # --- lookups --------------------------------------------------------------------------------

    def bucket(self, account: str, name: str) -> Bucket:
        bucket_id = self.bucket_names.get((account, name))
        if bucket_id is None:
            raise BucketNotFound(name)
        return self.buckets[bucket_id]

    def index(self, bucket: Bucket, name: str) -> Index:
        index_id = self.index_names.get((bucket.id, name))
        if index_id is None:
            raise IndexNotFound(name)
        return self.indexes[index_id]

    def find_index(self, account: str, bucket_name: str, index_name: str) -> Index:
        """The live index of that name, else the one most recently created and since deleted (its
        log is still there to restore from)."""
        try:
            return self.index(self.bucket(account, bucket_name), index_name)
        except (BucketNotFound, IndexNotFound):
            pass
        gone = [
            i
            for i in self.deleted_indexes.values()
            if (i.account, i.bucket_name, i.name) == (account, bucket_name, index_name)
        ]
        if not gone:
            raise IndexNotFound(f"{bucket_name}/{index_name}")
        return max(gone, key=lambda i: i.creation_time)

    def find_index_at(self, account: str, bucket_name: str, index_name: str, when: float) -> Index:
        """The index that bore that name at time ``when`` (live or deleted since)."""
        candidates = [
            i
            for i in (*self.indexes.values(), *self.deleted_indexes.values())
            if (i.account, i.bucket_name, i.name) == (account, bucket_name, index_name)
            and i.creation_time <= when < self.deleted_at.get(i.id, float("inf"))
        ]
        if not candidates:
            raise IndexNotFound(f"{bucket_name}/{index_name} (at that time)")
        return max(candidates, key=lambda i: i.creation_time)

    def indexes_of(self, bucket_id: str) -> list[Index]:
        return sorted((i for i in self.indexes.values() if i.bucket_id == bucket_id), key=lambda i: i.name)

    def buckets_of(self, account: str) -> list[Bucket]:
        return sorted((b for b in self.buckets.values() if b.account == account), key=lambda b: b.name)

    def _bucket_by_id(self, bucket_id: str) -> Bucket:
        if bucket_id not in self.buckets:
            raise BucketNotFound(bucket_id)
        return self.buckets[bucket_id]

    def _index_by_id(self, index_id: str) -> Index:
        if index_id not in self.indexes:
            raise IndexNotFound(index_id)
        return self.indexes[index_id]

    # --- handlers: validate, then (unless dry) mutate -----------------------------------------

    def _bucket_created(self, p: dict[str, Any], ev: Event, dry: bool) -> None:
        if (p["account"], p["name"]) in self.bucket_names:
            raise BucketAlreadyExists(f"vector bucket {p['name']!r} already exists")
        if self._buckets_per_account[p["account"]] >= MAX_BUCKETS_PER_ACCOUNT:
            raise QuotaExceeded(f"an account may have at most {MAX_BUCKETS_PER_ACCOUNT} vector buckets")
        if dry:
            return
        b = Bucket(
            id=p["bucket_id"],
            name=p["name"],
            account=p["account"],
            creation_time=ev.time,
            encryption=p.get("encryption"),
            default_index_mode=p.get("default_index_mode") or "CLASSIC",
            tags=dict(p.get("tags") or {}),
        )
        self.buckets[b.id] = b
        self.bucket_names[(b.account, b.name)] = b.id
        self._buckets_per_account[b.account] += 1

    def _bucket_deleted(self, p: dict[str, Any], ev: Event, dry: bool) -> None:
        b = self._bucket_by_id(p["bucket_id"])
        if self._indexes_per_bucket[b.id]:
            raise BucketNotEmpty(f"vector bucket {b.name!r} still has indexes; delete them first")
        if dry:
            return
        del self.buckets[b.id]
        del self.bucket_names[(b.account, b.name)]
        self._buckets_per_account[b.account] -= 1
        self.deleted_buckets[b.id] = b

    def _policy_put(self, p: dict[str, Any], ev: Event, dry: bool) -> None:
        b = self._bucket_by_id(p["bucket_id"])
        if not dry:
            self.buckets[b.id] = replace(b, policy=p["policy"])

    def _policy_deleted(self, p: dict[str, Any], ev: Event, dry: bool) -> None:
        b = self._bucket_by_id(p["bucket_id"])
        if b.policy is None:
            raise PolicyNotFound(b.name)
        if not dry:
            self.buckets[b.id] = replace(b, policy=None)

    def _default_mode(self, p: dict[str, Any], ev: Event, dry: bool) -> None:
        b = self._bucket_by_id(p["bucket_id"])
        if not dry:
            self.buckets[b.id] = replace(b, default_index_mode=p["mode"])

    def _index_created(self, p: dict[str, Any], ev: Event, dry: bool) -> None:
        b = self._bucket_by_id(p["bucket_id"])
        if (b.id, p["name"]) in self.index_names:
            raise IndexAlreadyExists(f"index {p['name']!r} already exists in {b.name!r}")
        if self._indexes_per_bucket[b.id] >= MAX_INDEXES_PER_BUCKET:
            raise QuotaExceeded(f"a vector bucket may hold at most {MAX_INDEXES_PER_BUCKET} indexes")
        if dry:
            return
        idx = Index(
            id=p["index_id"],
            bucket_id=b.id,
            bucket_name=b.name,
            account=b.account,
            name=p["name"],
            creation_time=ev.time,
            dimension=int(p["dimension"]),
            metric=p["metric"],
            data_type=p.get("data_type") or "float32",
            non_filterable_keys=tuple(p.get("non_filterable_keys") or ()),
            encryption=p.get("encryption"),
            mode=p.get("mode") or b.default_index_mode,
            text_search=tuple(p.get("text_search") or ()),
            tags=dict(p.get("tags") or {}),
            restored_from=p.get("restored_from"),
            schema=p.get("schema"),
        )
        self.indexes[idx.id] = idx
        self.index_names[(b.id, idx.name)] = idx.id
        self._indexes_per_bucket[b.id] += 1

    def _index_deleted(self, p: dict[str, Any], ev: Event, dry: bool) -> None:
        idx = self._index_by_id(p["index_id"])
        if dry:
            return
        del self.indexes[idx.id]
        del self.index_names[(idx.bucket_id, idx.name)]
        self._indexes_per_bucket[idx.bucket_id] -= 1
        self.deleted_indexes[idx.id] = idx
        self.deleted_at[idx.id] = ev.time

    def _index_mode(self, p: dict[str, Any], ev: Event, dry: bool) -> None:
        idx = self._index_by_id(p["index_id"])
        if not dry:
            self.indexes[idx.id] = replace(idx, mode=p["mode"])

    def _index_quota(self, p: dict[str, Any], ev: Event, dry: bool) -> None:
        idx = self._index_by_id(p["index_id"])
        if not dry:
            quota = {k: float(p[k]) for k in ("requests_per_second", "vectors_per_second") if p.get(k)}
            self.indexes[idx.id] = replace(idx, quota=quota or None)

    def _index_retention(self, p: dict[str, Any], ev: Event, dry: bool) -> None:
        idx = self._index_by_id(p["index_id"])
        if not dry:
            retention: dict[str, Any] = {
                k: float(p[k]) for k in ("pitr_window", "log_retention") if p.get(k) is not None
            }
            if "log_retention" in retention:
                retention["log_retention_set_by"] = ev.principal
            self.indexes[idx.id] = replace(idx, retention=retention or None)

    def _index_metadata(self, p: dict[str, Any], ev: Event, dry: bool) -> None:
        idx = self._index_by_id(p["index_id"])
        if not dry:
            self.indexes[idx.id] = replace(idx, text_search=tuple(p["text_search"]))

    def _tags(self, p: dict[str, Any], ev: Event, dry: bool) -> None:
        target: Bucket | Index
        target = self._bucket_by_id(p["id"]) if p["resource"] == "bucket" else self._index_by_id(p["id"])
        if dry:
            return
        tags = {k: v for k, v in target.tags.items() if k not in set(p.get("remove") or ())}
        tags.update(p.get("set") or {})
        if isinstance(target, Bucket):
            self.buckets[target.id] = replace(target, tags=tags)
        else:
            self.indexes[target.id] = replace(target, tags=tags)


_HANDLERS: dict[str, Handler] = {
    BUCKET_CREATED: CatalogState._bucket_created,
    BUCKET_DELETED: CatalogState._bucket_deleted,
    BUCKET_POLICY_PUT: CatalogState._policy_put,
    BUCKET_POLICY_DELETED: CatalogState._policy_deleted,
    BUCKET_DEFAULT_INDEX_MODE: CatalogState._default_mode,
    INDEX_CREATED: CatalogState._index_created,
    INDEX_DELETED: CatalogState._index_deleted,
    INDEX_MODE_CHANGED: CatalogState._index_mode,
    INDEX_METADATA_CONFIGURATION: CatalogState._index_metadata,
    INDEX_QUOTA: CatalogState._index_quota,
    INDEX_RETENTION: CatalogState._index_retention,
    TAGS_CHANGED: CatalogState._tags,
}
