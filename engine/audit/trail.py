"""The audit log of refused requests: authentication failures, policy denials, throttled and
failed writes (with, for a batch split into chunks, which chunks landed).

Accepted mutations are audited by the catalog and data logs themselves. Refused requests change
nothing, so they go to a log of their own (``audit/log/``) that readers of the data path never
touch; a flood of denied requests cannot slow a query down.
"""

from __future__ import annotations

import logging
from typing import Any

from engine import keys
from engine.clock import Clock, IdSource
from engine.context import RequestContext
from engine.errors import VecledgerError
from engine.log import Appender, Event
from engine.log.event import REQUEST_DENIED, json_payload
from engine.store import ObjectStore

log = logging.getLogger("vecledger.audit")


class AuditLog:
    def __init__(self, store: ObjectStore, clock: Clock, ids: IdSource) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids
        self._appender = Appender(store, keys.AUDIT_LOG, clock)

    async def denied(self, ctx: RequestContext, operation: str, resource: str, reason: str, **details: Any) -> int:
        """Record a refused request; returns the seq of the audit entry. ``ctx.account`` is whose
        audit shows it (the caller's); an ``owner`` detail names the account owning the resource,
        whose audit shows it too (only given when that resource exists)."""
        return await self.record(ctx, REQUEST_DENIED, operation, resource, reason, **details)

    async def record(
        self, ctx: RequestContext, type: str, operation: str, resource: str, reason: str, **details: Any
    ) -> int:
        """Record a request that was refused or failed (denied, throttled, partial)."""
        payload = {"operation": operation, "resource": resource, "reason": reason} | details
        event = Event.new(ctx, id=self.ids.new_id(), type=type, time=self.clock.now(), payload=json_payload(payload))
        return await self._appender.append([event])

    async def try_record(
        self, ctx: RequestContext, type: str, operation: str, resource: str, reason: str, **details: Any
    ) -> None:
        """``record``, for paths that are already failing: the original error must win."""
        try:
            await self.record(ctx, type, operation, resource, reason, **details)
        except VecledgerError:
            log.exception("could not audit a %s %s", type, operation)
