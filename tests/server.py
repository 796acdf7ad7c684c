"""A real uvicorn server on a free loopback port, in a thread of the test process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import uvicorn

from api.app import create_app
from api.config import Credential, ServerConfig
from engine.clock import Clock
from engine.store import ObjectStore
from tests.backends import Backend

ALICE = Credential("AKIAALICE0000000001", "alice-secret", "111122223333")
BOB = Credential("AKIABOB00000000000002", "bob-secret", "444455556666")
CAROL = Credential("AKIACAROL0000000003", "carol-secret", "444455556666", user="carol")


@dataclass(frozen=True)
class RunningServer:
    url: str
    port: int
    config: ServerConfig

    def s3vectors(self, cred: Credential = ALICE, session: Any = None, **kw: Any) -> Any:
        """A boto3 ``s3vectors`` client (from ``session`` if given: one with other service models)."""
        import boto3
        from botocore.config import Config

        return (session or boto3).client(
            "s3vectors",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=cred.access_key_id,
            aws_secret_access_key=cred.secret_access_key,
            config=Config(**({"retries": {"mode": "standard", "max_attempts": 2}} | kw)),
        )

    def s3vectors_with_retries(self, attempts: int, cred: Credential = ALICE) -> Any:
        return self.s3vectors(cred, retries={"mode": "standard", "max_attempts": attempts})

    def tos(self, cred: Credential = ALICE) -> Any:
        from tos.vector_client import VectorClient

        return VectorClient(
            ak=cred.access_key_id,
            sk=cred.secret_access_key,
            region="cn-beijing",
            endpoint=self.url,
            proxy_host="127.0.0.1",
            proxy_port=self.port,
        )

    def oss(self, cred: Credential = ALICE, account: str | None = None, attempts: int | None = None) -> Any:
        """An OSS client; ``account`` is the bucket owner's (it goes into the Host), the caller's by default."""
        import alibabacloud_oss_v2 as oss
        import alibabacloud_oss_v2.vectors as oss_vectors

        cfg = oss.config.load_default()
        cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(cred.access_key_id, cred.secret_access_key)
        cfg.region = "cn-hangzhou"
        cfg.account_id = account or cred.account
        cfg.endpoint = self.url
        # Bucket hosts (<bucket>-<account>.127.0.0.1:port) resolve nowhere: send everything through the
        # server as an HTTP proxy (the dict form; a plain string is silently ignored by the SDK).
        cfg.proxy_host = {"http": self.url}
        if attempts is not None:
            cfg.retry_max_attempts = attempts
        return oss_vectors.Client(cfg)


@contextmanager
def running_server(
    backend: Backend,
    clock: Clock | None = None,
    wrap_store: Callable[[ObjectStore], ObjectStore] | None = None,
    **overrides: Any,
) -> Iterator[RunningServer]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = ServerConfig(
        root=backend.root,
        host="127.0.0.1",
        port=port,
        credentials={c.access_key_id: c for c in (ALICE, BOB, CAROL)},
        engine=backend.settings,
    )
    config = replace(config, **overrides)
    if config.base_host and "{port}" in config.base_host:  # a host name for the port chosen here
        config = replace(config, base_host=config.base_host.format(port=port))
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, clock=clock, wrap_store=wrap_store),
            log_level="warning",
            lifespan="on",
            **config.uvicorn_options(),  # type: ignore[arg-type]
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield RunningServer(f"{config.scheme}://{config.base_host or f'127.0.0.1:{port}'}", port, config)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
