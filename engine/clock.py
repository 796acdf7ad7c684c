"""Time and identity, injected so that tests are deterministic.

Every timestamp the engine writes and every id it mints comes from a ``Clock`` and an ``IdSource``
handed to ``Engine.open``; nothing calls ``time.time()`` or ``uuid4()`` directly.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock time in epoch seconds (event times, creation times)."""
        ...

    def monotonic(self) -> float:
        """Monotonic seconds, for timeouts and group-commit windows."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to; for tests."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self._now = start
        self._mono = 0.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

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
