"""The engine facade: every operation the API needs, over the catalog and the live indexes.

``async with Engine.open(root, settings) as engine:`` opens the store, folds the catalog log, and
starts one materializer per index (when ``settings.run_materializers``). Every mutation takes a
``RequestContext`` whose principal, account, source, request id and dialect land in the event.
The engine knows nothing of dialects: names arrive as (account, bucket name, index name).

The facade holds no logic of its own: each operation is one collaborator's (``catalog_ops``,
``vector_ops``, ``recovery_ops``, ``status``), and the table below says whose.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from engine import memory
from engine.audit.trail import AuditLog
from engine.catalog import Catalog
from engine.clock import Clock, IdSource, RandomIds, SystemClock
from engine.dataset import LanceMirror, configure_caches
from engine.facade.catalog_ops import CatalogOps
from engine.facade.recovery_ops import RecoveryOps
from engine.facade.runtime import IndexRuntime
from engine.facade.status import StatusOps
from engine.facade.vector_ops import VectorOps
from engine.ids import HOLDER_ID, short_id
from engine.settings import Settings
from engine.store import ObjectStore, open_store


class Engine:
    def __init__(self, store: ObjectStore, settings: Settings, clock: Clock, ids: IdSource) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.ids = ids
        self.catalog = Catalog(store, clock, ids)
        self.audit = AuditLog(store, clock, ids)
        # Names this process in materializer leases (and in logs when one takes over from another).
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{short_id(ids, HOLDER_ID)}"
        self.runtime = IndexRuntime(store, settings, clock, ids, self.holder, self.catalog.invalidate)
        self.indexes = CatalogOps(self.catalog, self.runtime, settings, ids)
        self.vectors = VectorOps(self.indexes, self.audit, settings)
        self.recovery = RecoveryOps(store, self.indexes, settings, clock, ids)
        self.status = StatusOps(self.indexes, settings)

        # Buckets, their policies and tags, and indexes.
        self.create_bucket = self.indexes.create_bucket
        self.get_bucket = self.indexes.get_bucket
        self.list_buckets = self.indexes.list_buckets
        self.delete_bucket = self.indexes.delete_bucket
        self.put_bucket_policy = self.indexes.put_bucket_policy
        self.get_bucket_policy = self.indexes.get_bucket_policy
        self.delete_bucket_policy = self.indexes.delete_bucket_policy
        self.put_default_index_mode = self.indexes.put_default_index_mode
        self.tag = self.indexes.tag
        self.tags = self.indexes.tags
        self.create_index = self.indexes.create_index
        self.get_index = self.indexes.get_index
        self.list_indexes = self.indexes.list_indexes
        self.delete_index = self.indexes.delete_index
        self.update_index_mode = self.indexes.update_index_mode
        self.update_text_search = self.indexes.update_text_search
        self.set_index_retention = self.indexes.set_index_retention
        self.text_search_status = self.indexes.text_search_status
        self.index_by_id = self.indexes.index_by_id
        self.live = self.indexes.live
        # Vectors.
        self.put_vectors = self.vectors.put_vectors
        self.delete_vectors = self.vectors.delete_vectors
        self.get_vectors = self.vectors.get_vectors
        self.list_vectors = self.vectors.list_vectors
        self.query_vectors = self.vectors.query_vectors
        self.search = self.vectors.search
        self.set_index_quota = self.vectors.set_index_quota
        self.materialize = self.vectors.materialize
        # Recovery and audit.
        self.find_index = self.recovery.find_index
        self.restore_index = self.recovery.restore_index
        self.replay_check = self.recovery.replay_check
        self.audit_records = self.recovery.audit_records
        self.verify_logs = self.recovery.verify_logs
        # Status.
        self.index_status = self.status.index_status

    @property
    def failed_materializers(self) -> dict[str, BaseException]:
        """Indexes whose materializer stopped for good (a corrupt event), with why."""
        return self.runtime.failed

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        root: str,
        settings: Settings | None = None,
        *,
        store: ObjectStore | None = None,
        clock: Clock | None = None,
        ids: IdSource | None = None,
    ) -> AsyncIterator[Engine]:
        memory.tune()  # before the first fold: the allocator returns what folds free
        settings = settings or Settings()
        configure_caches(settings.index_cache_bytes, settings.metadata_cache_bytes)
        clock = clock or SystemClock()
        store = store or await open_store(root, settings, clock)
        engine = cls(store, settings, clock, ids or RandomIds())
        scratch = None
        try:
            if settings.cache_bytes > 0 and store.lance_location("").uri.startswith("s3://"):
                if settings.cache_dir is None:
                    scratch = tempfile.mkdtemp(prefix="vecledger-cache-")
                folder = Path(settings.cache_dir or scratch or "")
                engine.runtime.mirror = await LanceMirror.open(store, folder, settings.cache_bytes)
            await engine.catalog.refresh()
            async with anyio.create_task_group() as tg:
                engine.runtime.start(tg)
                if settings.run_materializers:
                    await engine.runtime.poll(engine.catalog)  # the indexes left with writes to fold
                    tg.start_soon(engine.runtime.follow, engine.catalog)
                yield engine
                tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The background task group wraps whatever the caller's block raised; hand back the
            # caller's own exception rather than a group of one.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            engine.runtime.stop()
            await engine.runtime.release_all()
            await store.close()
            if scratch is not None:
                await anyio.to_thread.run_sync(shutil.rmtree, scratch, True)
