"""Time and identity, injected so that tests are deterministic.

Every timestamp the engine writes, every pause it takes and every id it mints comes from a
``Clock`` and an ``IdSource`` handed to ``Engine.open``; nothing in ``engine/`` calls
``time.time()``, ``time.sleep()``, ``anyio.sleep()``, the global ``random`` or ``uuid4()`` directly
(ruff's banned-api rule enforces it; this module is the one exception). Retries back off by one
``Backoff`` rule, so that every retry loop waits the same way and a test can see how long.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

import anyio


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock time in epoch seconds (event times, creation times)."""
        ...

    def monotonic(self) -> float:
        """Monotonic seconds, for timeouts and group-commit windows."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait (polls, group-commit windows, retry back-offs)."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class ManualClock:
    """A clock whose readings move only when told to; for tests. Its sleeps take real time (a
    background loop that polls must still yield), without moving the readings."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self._now = start
        self._mono = 0.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._mono += seconds


class IdSource(Protocol):
    def new_id(self) -> str:
        """A fresh 32-hex-digit id, unique across processes."""
        ...


class RandomIds:
    """Ids from the OS's randomness, or from a seeded generator in tests."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed) if seed is not None else None

    def new_id(self) -> str:
        if self._rng is None:
            return uuid.uuid4().hex
        return f"{self._rng.getrandbits(128):032x}"


@dataclass(frozen=True)
class Backoff:
    """How long retry ``attempt`` (0, 1, ...) waits: ``first * factor**attempt``, at most ``cap``.

    With ``jitter``, a share of that (``1 - jitter`` to all of it) drawn from ``rng``, so that
    writers that lost the same race do not retry in step."""

    first: float
    factor: float = 2.0
    cap: float = 1.0
    jitter: float = 0.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        d = min(self.cap, self.first * self.factor**attempt)
        if self.jitter and rng is not None:
            d *= 1.0 - self.jitter * rng.random()
        return d
