"""Per-index write quotas: token buckets for requests and vectors per second, off by default.

Rates come from the index (set through the catalog, so they are audited and replayed) or from the
server's settings. Time is the injected clock's monotonic seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.clock import Clock
from engine.errors import Throttled


@dataclass
class TokenBucket:
    rate: float  # tokens per second; the bucket holds one second's worth
    tokens: float
    last: float

    def take(self, n: float, now: float) -> bool:
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < n and not (n > self.rate and self.tokens >= self.rate):
            return False
        self.tokens -= n
        return True


class WriteQuota:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def _bucket(self, name: str, rate: float) -> TokenBucket:
        b = self._buckets.get(name)
        if b is None or b.rate != rate:
            b = self._buckets[name] = TokenBucket(rate, rate, self.clock.monotonic())
        return b

    def admit(self, requests_per_second: float | None, vectors_per_second: float | None, vectors: int) -> None:
        """Take one request and ``vectors`` vectors, or raise ``Throttled`` and take nothing."""
        now = self.clock.monotonic()
        req = self._bucket("requests", requests_per_second) if requests_per_second else None
        vec = self._bucket("vectors", vectors_per_second) if vectors_per_second else None
        if req is not None and not req.take(1, now):
            raise Throttled(f"the index allows {requests_per_second:g} write requests per second")
        if vec is not None and not vec.take(vectors, now):
            if req is not None:
                req.tokens += 1  # give the request back: nothing was admitted
            raise Throttled(f"the index allows {vectors_per_second:g} vectors written per second")
