"""The processes and the root the crash harness works with: servers, materializers, the store."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from api.config import DEV_ACCESS_KEY, DEV_ACCOUNT, DEV_SECRET_KEY
from engine import keys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def s3vectors_client(url: str, attempts: int = 1) -> Any:
    """One attempt per call by default: a retried call would blur which request was acknowledged."""
    # A session of its own: boto3's default session is not safe to share between threads.
    return boto3.session.Session().client(
        "s3vectors",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=DEV_ACCESS_KEY,
        aws_secret_access_key=DEV_SECRET_KEY,
        config=Config(
            retries={"mode": "standard", "max_attempts": attempts},
            connect_timeout=5,
            read_timeout=60,
            max_pool_connections=8,
        ),
    )


@dataclass(frozen=True)
class Root:
    """Where the data lives, and a way to read its objects that does not go through vecledger."""

    root: str
    s3_endpoint: str | None = None

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    @functools.cached_property
    def s3(self) -> Any:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.s3_endpoint,
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
            region_name="us-east-1",
        )

    def _s3(self) -> tuple[Any, str, str]:
        bucket, _, prefix = self.root[len("s3://") :].partition("/")
        return self.s3, bucket, prefix.rstrip("/") + "/" if prefix else ""

    def read(self, key: str) -> bytes | None:
        if not self.is_s3:
            path = Path(self.root) / key
            return path.read_bytes() if path.exists() else None
        client, bucket, prefix = self._s3()
        try:
            return bytes(client.get_object(Bucket=bucket, Key=prefix + key)["Body"].read())
        except ClientError as e:
            if e.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise

    def exists(self, key: str) -> bool:
        if not self.is_s3:
            return (Path(self.root) / key).exists()
        client, bucket, prefix = self._s3()
        try:
            client.head_object(Bucket=bucket, Key=prefix + key)
            return True
        except ClientError as e:
            if e.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
                return False
            raise

    def last_log_seq(self, bucket_id: str, index_id: str) -> int:
        """The highest seq in an index's log (-1: empty): galloping probes, the log has no gaps
        after its start (seq 0, or where log retention says it starts now)."""
        prefix = keys.index_log(bucket_id, index_id)

        def present(seq: int) -> bool:
            return self.exists(keys.log_entry(prefix, seq))

        start = self.read(keys.log_start(prefix))
        lo, step = (-1 if start is None else int(json.loads(start)["seq"]) - 1), 1
        while present(lo + step):
            lo, step = lo + step, step * 2
        hi = lo + step
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if present(mid) else (lo, mid)
        return lo

    def checkpoint_seq(self, bucket_id: str, index_id: str) -> int:
        blob = self.read(keys.index_checkpoint(bucket_id, index_id))
        return -1 if blob is None else int(json.loads(blob)["seq"])

    def index_ids(self, bucket: str, index: str) -> tuple[str, str]:
        """(bucket id, index id) of a live index, from the catalog (paths hold ids, not names)."""
        import anyio

        from api.config import engine_settings
        from engine.catalog import Catalog
        from engine.clock import RandomIds, SystemClock
        from engine.store import open_store

        async def lookup() -> tuple[str, str]:
            env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"} | dict(os.environ)
            store = await open_store(self.root, engine_settings(self.s3_endpoint, "us-east-1", env))
            try:
                state = await Catalog(store, SystemClock(), RandomIds()).refresh()
            finally:
                await store.close()
            for idx in state.indexes.values():
                if (idx.account, idx.bucket_name, idx.name) == (DEV_ACCOUNT, bucket, index):
                    return idx.bucket_id, idx.id
            raise LookupError(f"no index {bucket}/{index} in the catalog")

        return anyio.run(lookup)


class Process:
    """A vecledger child process; its output goes to a log file (a full pipe would stall it)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            out.write(f"\n=== {' '.join(args)} ({env.get('VECLEDGER_FAILPOINTS', '')})\n".encode())
            out.flush()
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30) -> None:
        """A clean stop (the engine releases its leases); SIGKILL if it hangs."""
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """An in-process moto S3 with atomic conditional writes (what the engine needs of S3)."""
    from moto.server import ThreadedMotoServer

    import tests.moto_atomic  # noqa: F401  (patches moto before the server starts)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
