"""`vecledger serve` as a user runs it: the installed console script, a banner, a working endpoint."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from api.config import DEV_ACCESS_KEY, DEV_ACCOUNT, DEV_SECRET_KEY
from tests.backends import Backend


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_prints_credentials_and_answers(backend: Backend) -> None:
    port = free_port()
    script = Path(sys.executable).with_name("vecledger")
    cmd = [str(script), "serve", "--root", backend.root, "--port", str(port), "--dev"]
    env = dict(os.environ)
    for k in [k for k in env if k.startswith("VECLEDGER_")]:
        del env[k]
    if backend.name == "s3":
        cmd += ["--s3-endpoint", str(backend.settings.s3.endpoint_url)]
        env |= {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        banner = ""
        deadline = time.monotonic() + 60
        while "create_vector_bucket" not in banner:
            assert time.monotonic() < deadline and proc.poll() is None, banner
            banner += proc.stdout.readline() if proc.stdout else ""
        assert f"http://127.0.0.1:{port}" in banner and DEV_ACCESS_KEY in banner and DEV_SECRET_KEY in banner
        client = boto3.client(
            "s3vectors",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id=DEV_ACCESS_KEY,
            aws_secret_access_key=DEV_SECRET_KEY,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                arn = client.create_vector_bucket(vectorBucketName="from-cli")["vectorBucketArn"]
                break
            except Exception:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert arn == f"arn:aws:s3vectors:us-east-1:{DEV_ACCOUNT}:bucket/from-cli"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_refuses_to_start_without_credentials(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECLEDGER_")}
    script = Path(sys.executable).with_name("vecledger")
    out = subprocess.run([str(script), "serve", "--root", str(tmp_path)], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "no credentials" in out.stderr


def test_the_banner_shows_only_the_development_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from api.cli.serve import banner, server_config

    options = dict(
        root=str(tmp_path), s3_endpoint=None, host="127.0.0.1", port=8000, base_host=None, region="us-east-1",
        keys_file=None, no_auth=False, write_requests_per_second=None, write_vectors_per_second=None,
        no_materialize=False,
    )  # fmt: skip
    monkeypatch.setenv("VECLEDGER_ACCESS_KEY_ID", "AKIAREAL")
    monkeypatch.setenv("VECLEDGER_SECRET_ACCESS_KEY", "s3cr3t-do-not-print")
    monkeypatch.setenv("VECLEDGER_ACCOUNT_ID", "210987654321")
    shown = banner(server_config(**options, dev=False))
    assert "AKIAREAL" in shown and "s3cr3t-do-not-print" not in shown and "not shown" in shown

    monkeypatch.delenv("VECLEDGER_ACCESS_KEY_ID")
    monkeypatch.delenv("VECLEDGER_SECRET_ACCESS_KEY")
    monkeypatch.setenv("VECLEDGER_ACCOUNT_ID", DEV_ACCOUNT)
    assert DEV_SECRET_KEY in banner(server_config(**options, dev=True))  # the well-known development key
