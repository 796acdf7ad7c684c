"""A store wrapper that fails chosen or random calls, for tests and fault tools.

Three kinds of fault: an error before the call reaches the store, a delay, and the nastiest one,
"the write happened but the reply was lost" (the call runs, then ``StoreUnavailable`` is raised).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from engine.errors import StoreUnavailable
from engine.store.base import Blob, LanceLocation, ObjectInfo, ObjectStore

ERROR = "error"
DELAY = "delay"
LOST_REPLY = "lost_reply"


@dataclass
class Fault:
    kind: str
    delay: float = 0.0


# A rule sees (verb, key) and returns the fault to inject, or None.
Rule = Callable[[str, str], Fault | None]


def random_faults(rate: float, kinds: tuple[str, ...] = (ERROR, LOST_REPLY), seed: int = 0) -> Rule:
    rng = random.Random(seed)

    def rule(verb: str, key: str) -> Fault | None:
        if rng.random() < rate:
            kind = rng.choice(kinds)
            return Fault(kind, delay=rng.uniform(0, 0.05) if kind == DELAY else 0.0)
        return None

    return rule


class FaultyStore:
    def __init__(self, inner: ObjectStore, rule: Rule | None = None) -> None:
        self.inner = inner
        self.clock = inner.clock
        self.rule: Rule = rule or (lambda verb, key: None)
        self.injected: list[tuple[str, str, str]] = []

    async def _before(self, verb: str, key: str) -> Fault | None:
        fault = self.rule(verb, key)
        if fault is None:
            return None
        self.injected.append((verb, key, fault.kind))
        if fault.kind == DELAY:
            await self.clock.sleep(fault.delay)
            return None
        if fault.kind == ERROR:
            raise StoreUnavailable(f"injected fault: {verb} {key}")
        return fault

    @staticmethod
    def _after(fault: Fault | None, verb: str, key: str) -> None:
        if fault is not None and fault.kind == LOST_REPLY:
            raise StoreUnavailable(f"injected lost reply: {verb} {key}")

    async def put_if_absent(self, key: str, data: bytes) -> str:
        fault = await self._before("put_if_absent", key)
        etag = await self.inner.put_if_absent(key, data)
        self._after(fault, "put_if_absent", key)
        return etag

    async def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        fault = await self._before("put_if_match", key)
        new = await self.inner.put_if_match(key, data, etag)
        self._after(fault, "put_if_match", key)
        return new

    async def put(self, key: str, data: bytes) -> str:
        fault = await self._before("put", key)
        etag = await self.inner.put(key, data)
        self._after(fault, "put", key)
        return etag

    async def get(self, key: str) -> Blob:
        fault = await self._before("get", key)
        blob = await self.inner.get(key)
        self._after(fault, "get", key)
        return blob

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        fault = await self._before("get_range", key)
        data = await self.inner.get_range(key, start, end)
        self._after(fault, "get_range", key)
        return data

    async def head(self, key: str) -> ObjectInfo:
        fault = await self._before("head", key)
        info = await self.inner.head(key)
        self._after(fault, "head", key)
        return info

    async def list(self, prefix: str, start_after: str | None = None) -> AsyncIterator[ObjectInfo]:
        fault = await self._before("list", prefix)
        self._after(fault, "list", prefix)
        async for info in self.inner.list(prefix, start_after):
            yield info

    async def delete(self, key: str) -> None:
        fault = await self._before("delete", key)
        await self.inner.delete(key)
        self._after(fault, "delete", key)

    def lance_location(self, prefix: str) -> LanceLocation:
        return self.inner.lance_location(prefix)

    async def close(self) -> None:
        await self.inner.close()
