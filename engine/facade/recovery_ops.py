"""Recovery and audit operations of the engine facade: point-in-time restore, replay checks,
audit queries."""

from __future__ import annotations

from dataclasses import replace

from engine import keys, recovery
from engine.audit import query as audit_query
from engine.catalog.state import Index
from engine.clock import Clock, IdSource
from engine.context import RequestContext
from engine.errors import IndexAlreadyExists, IndexNotFound, ValidationError
from engine.facade.catalog_ops import CatalogOps, index_created
from engine.ids import SCRATCH_ID, short_id
from engine.log import event as ev
from engine.log.chain import ChainReport, verify_chain
from engine.refs import IndexRef
from engine.settings import Settings
from engine.store import ObjectStore


class RecoveryOps:
    def __init__(
        self, store: ObjectStore, indexes: CatalogOps, settings: Settings, clock: Clock, ids: IdSource
    ) -> None:
        self.store = store
        self.indexes = indexes
        self.catalog = indexes.catalog
        self.settings = settings
        self.clock = clock
        self.ids = ids

    async def find_index(self, ref: IndexRef) -> Index:
        """A live index, or the most recent deleted one of that name (whose log remains)."""
        state = await self.catalog.refresh()
        return state.find_index(ref.account, ref.bucket, ref.name)

    async def restore_index(
        self,
        ctx: RequestContext,
        source: IndexRef,
        into: IndexRef,
        *,
        to_seq: int | None = None,
        to_time: float | None = None,
        source_id: str | None = None,
        progress: recovery.Progress | None = None,
        allow_broken_chain: bool = False,
    ) -> Index:
        """Rebuild ``source`` as it stood at a seq or a time into a new index ``into``.

        By time, the source is the index that bore the name then (it may since have been deleted,
        or deleted and re-created); by seq, the live index of that name, else the last deleted one,
        or exactly ``source_id``. The stretch of log it replays must pass its hash chain check
        unless ``allow_broken_chain`` (a damaged log can still be recovered from, knowingly).
        """
        if (to_seq is None) == (to_time is None):
            raise ValidationError("give exactly one of a seq and a time to restore to", field="to")
        state = await self.catalog.refresh()
        if source_id is not None:
            found = state.indexes.get(source_id) or state.deleted_indexes.get(source_id)
            # An id names an index of the source's own account and bucket, or none at all: never
            # a way into another account's data (ids are not secrets).
            if found is None or (found.account, found.bucket_name) != (source.account, source.bucket):
                raise IndexNotFound(source_id)
            src = found
        elif to_time is not None:
            src = state.find_index_at(source.account, source.bucket, source.name, to_time)
        else:
            src = state.find_index(source.account, source.bucket, source.name)
        prefix = keys.index_log(src.bucket_id, src.id)
        tail = await recovery.last_seq(self.store, src)
        if to_seq is not None:
            upto = recovery.check_upto(to_seq, tail, f"seq {to_seq}")
        else:
            assert to_time is not None
            upto = recovery.check_upto(await recovery.seq_at_time(self.store, prefix, to_time), tail, "that time")
        await recovery.check_restorable(self.store, src, upto)
        if not allow_broken_chain:
            await recovery.check_chain(self.store, src, upto)
        state = await self.catalog.refresh()
        bucket = state.bucket(into.account, into.bucket)
        if (bucket.id, into.name) in state.index_names:
            raise IndexAlreadyExists(f"index {into.name!r} already exists in {bucket.name!r}")
        target = replace(
            src,
            id=short_id(self.ids),
            bucket_id=bucket.id,
            bucket_name=bucket.name,
            account=bucket.account,
            name=into.name,
        )
        await recovery.build_restored(
            self.store, self.settings, ctx, src, upto, target, self.ids.new_id(), self.clock.now(), progress
        )
        restored_from = {
            "bucket": src.bucket_name,
            "index": src.name,
            "bucket_id": src.bucket_id,
            "index_id": src.id,
            "seq": upto,
        }
        payload = index_created(target.id, bucket, into.name, src, restored_from=restored_from)
        await self.catalog.submit(ctx, ev.INDEX_CREATED, payload)
        index = self.catalog.state.index(bucket, into.name)
        await self.indexes.runtime.open(index)
        return index

    async def verify_logs(self) -> list[ChainReport]:
        """The hash chain check of every log: the catalog's, the audit log, and every index's
        (deleted ones too, whose logs remain): those of the catalog's state and every data log the
        store holds, since a tampered catalog log must not hide an index whose creation it lost."""
        state = await self.catalog.refresh()
        logs = {keys.index_log(i.bucket_id, i.id) for i in [*state.indexes.values(), *state.deleted_indexes.values()]}
        async for info in self.store.list(keys.DATA):  # every object: an offline check, linear in the root
            if (log := keys.index_log_of(info.key)) is not None:
                logs.add(log)
        prefixes = [keys.CATALOG_LOG, keys.AUDIT_LOG, *sorted(logs)]
        return [await verify_chain(self.store, p) for p in prefixes]

    async def audit_records(self, q: audit_query.AuditQuery) -> list[audit_query.AuditRecord]:
        """Every mutation and refused request matching ``q``, oldest first (see docs/audit.md)."""
        return await audit_query.query(self.store, await self.catalog.refresh(), q)

    async def replay_check(self, ref: IndexRef) -> recovery.CheckReport:
        """Fold the index again from seq 0 into a scratch dataset and compare with the live one."""
        live = await self.indexes.live(ref)
        await live.materializer.run_to_end()
        return await recovery.replay_check(self.store, self.settings, live.index, short_id(self.ids, SCRATCH_ID))
