"""Shared fixtures: both storage backends (``tests/backends.py``), and a running server on either.

Every storage-touching test takes the ``backend`` fixture (or ``srv``) and so runs twice.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import tests.moto_atomic  # noqa: F401  (before the server starts)
from engine.store import ObjectStore
from tests.backends import Backend, make_backend
from tests.server import RunningServer, running_server

logging.getLogger("werkzeug").setLevel(logging.ERROR)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return make_backend(request.param, tmp_path, lambda: request.getfixturevalue("moto_endpoint"))


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[ObjectStore]:
    s = await backend.store()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def srv(backend: Backend) -> Iterator[RunningServer]:
    """A server with the default configuration (tests/server.py's accounts) on ``backend``."""
    with running_server(backend) as s:
        yield s
