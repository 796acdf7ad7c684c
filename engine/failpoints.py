"""Named points where a crash test can kill this process on purpose.

``VECLEDGER_FAILPOINTS="name"`` kills the process (SIGKILL, no cleanup) when it reaches ``name``;
``"name=0.5"`` kills it 0.5 s later, while the work after the point is under way (an index build).
Several points are separated by commas. Unset, ``hit`` is a dictionary lookup: nothing else.
The crash harness (``tools/crash/``) uses them to stop a materializer between its Lance commit
and its checkpoint, or in the middle of an index build: instants a random kill rarely finds.
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "VECLEDGER_FAILPOINTS"


def _parse(spec: str) -> dict[str, float]:
    points: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, delay = part.partition("=")
        points[name] = float(delay) if delay else 0.0
    return points


_ACTIVE = _parse(os.environ.get(ENV, ""))


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def hit(name: str) -> None:
    delay = _ACTIVE.get(name)
    if delay is None:
        return
    if delay <= 0:
        _kill()
    timer = threading.Timer(delay, _kill)
    timer.daemon = True
    timer.start()
