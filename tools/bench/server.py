"""A vecledger server for the benchmark: `vecledger serve` as a child process on a fresh root."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from api.config import DEV_ACCESS_KEY, DEV_SECRET_KEY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``root`` is a folder; with ``s3_endpoint``, ``s3_root`` (``s3://bucket/prefix``) on that
    endpoint is served instead, and ``root`` holds only the server's log."""

    def __init__(
        self,
        root: Path,
        env: dict[str, str] | None = None,
        *,
        s3_root: str | None = None,
        s3_endpoint: str | None = None,
    ) -> None:
        self.root = root
        self.s3_root = s3_root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [
            str(Path(sys.executable).with_name("vecledger")),
            "serve",
            "--root",
            s3_root or str(root),
            "--port",
            str(self.port),
            "--dev",
        ]
        if s3_endpoint:
            cmd += ["--s3-endpoint", s3_endpoint]
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("VECLEDGER_")} | (env or {})
        if s3_endpoint:
            full_env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"} | full_env
        # The server's log (one line per fold, with its timings) goes next to its root: a pipe
        # nobody reads would fill up and stall the server.
        root.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = root.parent / f"server-{self.port}.log"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.client().list_vector_buckets()
                return
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the vecledger server did not start") from None
                time.sleep(0.2)

    def client(self, retries: int = 5) -> Any:
        return self.client_for(self.url, retries)

    @staticmethod
    def client_for(url: str, retries: int = 5) -> Any:
        return boto3.client(
            "s3vectors",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=DEV_ACCESS_KEY,
            aws_secret_access_key=DEV_SECRET_KEY,
            config=Config(retries={"mode": "standard", "max_attempts": retries}, max_pool_connections=32),
        )

    def peak_rss(self) -> int:
        """The server's peak resident set size in bytes (VmHWM)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def server_ms(response: dict[str, Any]) -> float:
    """The server's own time for a request, from its Server-Timing header."""
    timing = response["ResponseMetadata"]["HTTPHeaders"].get("server-timing", "")
    return float(timing.split("dur=")[1]) if "dur=" in timing else float("nan")
