"""Three `vecledger serve` processes on one root, taking writes for one index at once.

What must hold: no acknowledged write is lost, per-key order follows acknowledgement order even when
consecutive writes of a key go through different processes, exactly one process folds the index
(the lease), and killing that process hands the lease to another within the lease time.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from api.config import DEV_ACCESS_KEY, DEV_SECRET_KEY
from engine import keys
from tests.backends import Backend

LEASE_SECONDS = 2.0
D = 8


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """One `vecledger serve` subprocess and a boto3 client for it."""

    def __init__(self, backend: Backend, extra_env: dict[str, str] | None = None) -> None:
        self.port = _port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [str(Path(sys.executable).with_name("vecledger")), "serve", "--root", backend.root]
        cmd += ["--port", str(self.port), "--dev"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("VECLEDGER_")}
        env |= {"VECLEDGER_LEASE_SECONDS": str(LEASE_SECONDS), "VECLEDGER_BUILD_THRESHOLD": "300"}
        env |= extra_env or {}
        if backend.settings.s3.endpoint_url:
            cmd += ["--s3-endpoint", backend.settings.s3.endpoint_url]
            env |= {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = boto3.client(
            "s3vectors",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=DEV_ACCESS_KEY,
            aws_secret_access_key=DEV_SECRET_KEY,
            config=Config(retries={"mode": "standard", "max_attempts": 5}),
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                self.client.list_vector_buckets()
                return
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("vecledger serve did not start") from None
                time.sleep(0.1)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def processes(backend: Backend, n: int, env: dict[str, str] | None = None) -> Iterator[list[Proc]]:
    procs = [Proc(backend, env) for _ in range(n)]
    try:
        for p in procs:
            p.wait_ready()
        yield procs
    finally:
        for p in procs:
            p.stop()


def _s3(backend: Backend) -> tuple[Any, str, str]:
    """(an S3 client, the bucket, the prefix) of an S3 backend's root."""
    bucket, _, prefix = backend.root.removeprefix("s3://").partition("/")
    s3 = boto3.client(
        "s3",
        endpoint_url=backend.settings.s3.endpoint_url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    return s3, bucket, prefix


def _read(backend: Backend, suffix: str) -> dict[str, Any] | None:
    """The index's lease or checkpoint document, straight from the root."""
    if not backend.settings.s3.endpoint_url:
        found = list(Path(backend.root).glob(f"data/*/*/{suffix}"))
        return json.loads(found[0].read_text()) if found else None
    s3, bucket, prefix = _s3(backend)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/data/"):
        for obj in page.get("Contents", []):
            parts = obj["Key"].split("/")
            if parts[-1] == suffix and len(parts) == 5:
                return dict(json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()))
    return None


def _vector(writer: int, version: int) -> list[float]:
    return [float(writer), float(version)] + [0.0] * (D - 2)


def test_three_processes_one_index_one_materializer_and_a_handover(backend: Backend) -> None:
    with processes(backend, 3) as procs:
        first = procs[0].client
        first.create_vector_bucket(vectorBucketName="shared")
        first.create_index(
            vectorBucketName="shared", indexName="idx", dataType="float32", dimension=D, distanceMetric="euclidean"
        )
        intended: dict[str, int] = {}
        lock = threading.Lock()
        errors: list[BaseException] = []

        def writer(w: int) -> None:
            try:
                for version in range(1, 16):
                    keys = [f"w{w}-{(version * 7 + j) % 40}" for j in range(25)]
                    procs[w].client.put_vectors(
                        vectorBucketName="shared",
                        indexName="idx",
                        vectors=[{"key": k, "data": {"float32": _vector(w, version)}} for k in keys],
                    )
                    with lock:
                        intended.update({k: version for k in keys})
            except BaseException as e:  # surfaced below
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
        for t in threads:
            t.start()
        # Meanwhile one key is written in turn through each process: acknowledgement order is the
        # order the log must keep, whichever process appended.
        for version in range(1, 31):
            procs[version % 3].client.put_vectors(
                vectorBucketName="shared",
                indexName="idx",
                vectors=[{"key": "relay", "data": {"float32": _vector(9, version)}}],
            )
        intended["relay"] = 30
        for t in threads:
            t.join()
        assert not errors, errors

        def check(proc: Proc) -> None:
            keys = sorted(intended)
            for i in range(0, len(keys), 100):
                got = proc.client.get_vectors(
                    vectorBucketName="shared", indexName="idx", keys=keys[i : i + 100], returnData=True
                )["vectors"]
                assert {v["key"]: int(v["data"]["float32"][1]) for v in got} == {
                    k: intended[k] for k in keys[i : i + 100]
                }

        for p in procs:
            check(p)  # every process reads every acknowledged write at once

        lease = _read(backend, "lease")
        assert lease is not None and lease["generation"] >= 1
        holders = [p for p in procs if f":{p.proc.pid}:" in lease["holder"]]
        assert len(holders) == 1, lease  # exactly one of the three folds the index
        holder = holders[0]
        killed_at = time.monotonic()
        holder.kill()
        survivors = [p for p in procs if p is not holder]
        survivors[0].client.put_vectors(
            vectorBucketName="shared", indexName="idx", vectors=[{"key": "after", "data": {"float32": _vector(8, 1)}}]
        )
        intended["after"] = 1
        handed_over = None
        while time.monotonic() - killed_at < 6 * LEASE_SECONDS:
            now = _read(backend, "lease")
            if now is not None and now["generation"] > lease["generation"] and now["expires"] > time.time():
                handed_over = time.monotonic() - killed_at
                break
            time.sleep(0.05)
        assert handed_over is not None, "no surviving process took the lease over"
        assert handed_over <= 2 * LEASE_SECONDS, handed_over  # the lease time, plus a poll
        print(f"{backend.name}: lease handed over {handed_over:.2f} s after the holder was killed")
        new_holder = _read(backend, "lease")
        assert new_holder is not None and any(f":{p.proc.pid}:" in new_holder["holder"] for p in survivors)
        for p in survivors:
            check(p)

        # The new holder folds everything, including the write made after the kill.
        deadline = time.monotonic() + 30
        while True:
            cp = _read(backend, "checkpoint")
            tail = survivors[0].client.query_vectors(
                vectorBucketName="shared", indexName="idx", queryVector={"float32": _vector(8, 1)}, topK=1
            )["vectors"]
            assert tail[0]["key"] == "after"
            if cp is not None and cp.get("generation", 0) > lease["generation"]:
                break
            assert time.monotonic() < deadline, cp
            time.sleep(0.1)

    replay = subprocess.run(
        [str(Path(sys.executable).with_name("vecledger")), "replay", "--check", "--root", backend.root]
        + (["--s3-endpoint", backend.settings.s3.endpoint_url] if backend.settings.s3.endpoint_url else [])
        + ["--bucket", "shared", "--index", "idx", "--account", "123456789012"],
        env={**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr


@pytest.fixture(autouse=True)
def _quiet_boto() -> None:
    import logging

    logging.getLogger("botocore").setLevel(logging.WARNING)


def _marks(backend: Backend) -> list[str]:
    """The activity marks on the root (indexes with writes to fold)."""
    if not backend.settings.s3.endpoint_url:
        return [str(p) for p in Path(backend.root).glob(f"{keys.ACTIVITY}*/*")]
    s3, bucket, prefix = _s3(backend)
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/{keys.ACTIVITY}")
    return [o["Key"] for o in listing.get("Contents", [])]


def test_three_processes_read_fresh_after_closing_idle_indexes(backend: Backend) -> None:
    """Each process opens every index, parks and closes them once idle; then a write through one
    process is visible to the next read through another (which opens the index again), and the
    write is folded (its mark goes) without anyone asking."""
    idle = {"VECLEDGER_MATERIALIZE_IDLE_EXIT": "1", "VECLEDGER_INDEX_CLOSE_AFTER": "1"}
    idle["VECLEDGER_METRICS_TOKEN"] = "scrape"  # per-index gauges are labelled only for its holder
    names = [f"tenant-{i}" for i in range(6)]

    def scrape(p: Proc) -> str:
        request = urllib.request.Request(f"{p.url}/metrics", headers={"Authorization": "Bearer scrape"})
        with urllib.request.urlopen(request) as r:
            return str(r.read().decode())

    with processes(backend, 3, idle) as procs:
        procs[0].client.create_vector_bucket(vectorBucketName="shared")
        for i, name in enumerate(names):
            procs[i % 3].client.create_index(
                vectorBucketName="shared", indexName=name, dataType="float32", dimension=D, distanceMetric="euclidean"
            )
            procs[i % 3].client.put_vectors(
                vectorBucketName="shared",
                indexName=name,
                vectors=[{"key": "first", "data": {"float32": _vector(i, 1)}}],
            )
        for p in procs:  # every process opens every index
            for name in names:
                got = p.client.get_vectors(vectorBucketName="shared", indexName=name, keys=["first"])["vectors"]
                assert [v["key"] for v in got] == ["first"]
            # Open: listed. Only the index just read is sure to be still open: the first ones may
            # already have been idle for the 1 s close time (six reads on S3 can take that long).
            assert f'index="{names[-1]}"' in scrape(p)
        deadline = time.monotonic() + 60
        while _marks(backend):  # folded and parked everywhere
            assert time.monotonic() < deadline, _marks(backend)
            time.sleep(0.2)
        # Idle past the close time, then a poll (every 5 s) closes them; a process that took a
        # lease over as the last holder parked must settle and park in turn first.
        deadline = time.monotonic() + 30
        for p in procs:  # closed: the per-index gauges list only open indexes
            while 'index="tenant-' in (page := scrape(p)):
                assert time.monotonic() < deadline, page
                time.sleep(0.5)
        for i, name in enumerate(names):
            writer, reader = procs[i % 3], procs[(i + 1) % 3]
            writer.client.put_vectors(
                vectorBucketName="shared",
                indexName=name,
                vectors=[{"key": "second", "data": {"float32": _vector(i, 2)}}],
            )
            got = reader.client.get_vectors(vectorBucketName="shared", indexName=name, keys=["first", "second"])
            assert sorted(v["key"] for v in got["vectors"]) == ["first", "second"], name
        deadline = time.monotonic() + 60
        while _marks(backend):  # the new writes are folded, then every materializer parks again
            assert time.monotonic() < deadline, _marks(backend)
            time.sleep(0.2)
        # A deletion through one process reaches the next read through every other (which
        # skipped its catalog probe: the deletion is marked in the index's log), and so does
        # the index created again under that name.
        procs[0].client.delete_index(vectorBucketName="shared", indexName=names[0])
        for p in procs[1:]:
            with pytest.raises(p.client.exceptions.NotFoundException):
                p.client.query_vectors(
                    vectorBucketName="shared", indexName=names[0], queryVector={"float32": _vector(0, 1)}, topK=3
                )
        procs[0].client.create_index(
            vectorBucketName="shared", indexName=names[0], dataType="float32", dimension=D, distanceMetric="euclidean"
        )
        procs[0].client.put_vectors(
            vectorBucketName="shared", indexName=names[0], vectors=[{"key": "anew", "data": {"float32": _vector(0, 3)}}]
        )
        for p in procs[1:]:
            got = p.client.query_vectors(
                vectorBucketName="shared", indexName=names[0], queryVector={"float32": _vector(0, 1)}, topK=3
            )
            assert [v["key"] for v in got["vectors"]] == ["anew"]
