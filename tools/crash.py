"""Crash harness: kill vecledger at random instants under a write load and check what survived.

Why: the design promises that a write acknowledged with HTTP 200 is in the log and so survives any
crash, that one PutVectors/DeleteVectors call is one log event (all of it or none of it after a
crash), and that a materializer killed at any point resumes and folds the log into Lance again,
idempotently. Unit tests check each piece; this checks the promise end to end, with real
processes, real SIGKILLs and real object stores (a folder, or S3 through moto).

Two kinds of iteration, each one kill:

* server kill: ``vecledger serve`` runs; 2-3 writer threads (each owning a disjoint range of keys)
  overwrite and delete keys with values that encode (writer, op number); the server is SIGKILLed at
  a random instant, restarted on the same root, and every key is read back (GetVectors, ListVectors,
  QueryVectors) and checked against what was acknowledged; then the materializer must catch up
  (checkpoint seq = last log seq) and the reads must still agree.
* materializer kill: the API runs with ``--no-materialize`` and a standalone ``vecledger materialize``
  is SIGKILLed by a failpoint between its Lance commit and its checkpoint, or while it builds an
  IVF-PQ index (on a fresh index with enough rows); a clean materializer is restarted and must catch
  up, reads must be right and ``vecledger replay --check`` must agree.

Everything random (kill instants, batches, keys) comes from one seeded generator, so a failing seed
replays the same schedule (thread timing aside). Usage::

    python -m tools.crash --iterations 200 --backend local --seed 1
    python -m tools.crash --iterations 100 --backend s3        # starts an in-process moto server
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from api.config import DEV_ACCESS_KEY, DEV_ACCOUNT, DEV_SECRET_KEY

DIM = 8
BUCKET = "crash"
MAIN_INDEX = "main"
BUILD_THRESHOLD = 300  # rows before an IVF-PQ build: low, so a build happens at harness sizes
LEASE_SECONDS = 2.0  # a SIGKILLed materializer's lease expires this soon
MAX_GET = 100

# A key's value: (writer, op number) of the put that wrote it, or None when it is absent.
Value = tuple[int, int] | None


def vector_for(writer: int, op: int, key_no: int) -> list[float]:
    """The vector a put writes: it encodes (writer, op, key) exactly in float32, so a row whose
    vector and metadata come from different writes is caught."""
    return [float(writer + 1), float(op), float(key_no), 1.0, 0.5, float(op % 7), float(key_no % 5), 0.25]


def key_name(writer: int, key_no: int) -> str:
    return f"w{writer}-{key_no:04d}"


def key_no_of(key: str) -> int:
    return int(key.rsplit("-", 1)[1])


@dataclass
class Op:
    """One PutVectors or DeleteVectors call and what the client learnt of its outcome."""

    writer: int
    number: int
    kind: str  # "put" or "delete"
    keys: tuple[str, ...]
    acked: bool = False  # HTTP 200 received
    error: str | None = None  # why the outcome is unknown (None when acked)

    @property
    def value(self) -> Value:
        return (self.writer, self.number) if self.kind == "put" else None


class Model:
    """What one index must hold: the settled state of every key after the last check, plus the ops
    issued since, acknowledged or not. Keys are disjoint per writer and each writer is sequential,
    so per-key order is the order of the ops in ``ops``."""

    def __init__(self, keys: list[str]) -> None:
        self.state: dict[str, Value] = dict.fromkeys(keys)
        self.ops: list[Op] = []

    @property
    def keys(self) -> list[str]:
        return sorted(self.state)

    def allowed(self) -> tuple[dict[str, list[Value]], dict[str, Op]]:
        """Per key, the values a correct store may show: the last acknowledged one (first in the
        list), then those of unacknowledged ops issued after it; and the last op on each key."""
        allowed: dict[str, list[Value]] = {k: [v] for k, v in self.state.items()}
        last: dict[str, Op] = {}
        for op in self.ops:
            for k in op.keys:
                last[k] = op
                if op.acked:
                    allowed[k] = [op.value]
                else:
                    allowed[k].append(op.value)
        return allowed, last

    def check(self, observed: dict[str, Value], where: str) -> list[str]:
        allowed, last = self.allowed()
        failures = []
        for k in self.keys:
            if observed[k] not in allowed[k]:
                failures.append(
                    f"{where}: key {k} shows {observed[k]}; acknowledged {allowed[k][0]}, "
                    f"in flight {allowed[k][1:]} (a lost or phantom write)"
                )
        for op in self.ops:
            if op.acked:
                continue
            # Keys this op wrote last: there it decides the value. A key is evidence only if the op's
            # value cannot also come from an earlier op (a delete of a key that was already absent).
            shown, hidden = [], []
            for k in (k for k in op.keys if last[k] is op):
                earlier = allowed[k][:-1]
                if observed[k] == op.value and op.value not in earlier:
                    shown.append(k)
                elif observed[k] != op.value:
                    hidden.append(k)
            if shown and hidden:
                failures.append(
                    f"{where}: {op.kind} op {op.writer}/{op.number} (in flight: {op.error}) is half visible: "
                    f"applied to {shown}, not to {hidden}"
                )
        return failures

    def settle(self, observed: dict[str, Value]) -> None:
        """Adopt what the store shows (checked already): unacknowledged ops are decided now."""
        self.state = {k: observed[k] for k in self.state}
        self.ops = []


@dataclass
class Stats:
    iterations: int = 0
    server_kills: int = 0
    materializer_kills: int = 0
    acked_ops: int = 0  # acknowledged calls whose effect was checked
    unknown_ops: int = 0  # calls in flight at a kill (or failed): outcome decided by the check
    key_checks: int = 0  # (key, read) pairs compared with the model
    replay_checks: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def kills(self) -> int:
        return self.server_kills + self.materializer_kills

    def summary(self) -> str:
        return (
            f"iterations: {self.iterations}\n"
            f"kills: {self.kills} ({self.server_kills} servers, {self.materializer_kills} materializers)\n"
            f"acknowledged writes checked: {self.acked_ops} calls ({self.key_checks} key reads compared; "
            f"{self.unknown_ops} calls in flight at a kill, settled by the check)\n"
            f"replay checks: {self.replay_checks}\n"
            f"failures found: {len(self.failures)}"
        )


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
        """The highest seq in an index's log (-1: empty): galloping probes, the log has no gaps."""
        prefix = f"data/{bucket_id}/{index_id}/log/"

        def present(seq: int) -> bool:
            return self.exists(f"{prefix}{seq:020d}")

        lo, step = -1, 1
        while present(lo + step):
            lo, step = lo + step, step * 2
        hi = lo + step
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if present(mid) else (lo, mid)
        return lo

    def checkpoint_seq(self, bucket_id: str, index_id: str) -> int:
        blob = self.read(f"data/{bucket_id}/{index_id}/checkpoint")
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


class Writer(threading.Thread):
    """Sequential PutVectors/DeleteVectors on its own keys until told to stop, the server dies, or
    ``max_ops`` calls; records every call with what the client learnt of it."""

    def __init__(
        self,
        number: int,
        url: str,
        index: str,
        keys: list[str],
        rng: random.Random,
        first_op: int,
        stop: threading.Event,
        *,
        fill: bool = False,
        max_ops: int | None = None,
    ) -> None:
        super().__init__(daemon=True, name=f"writer-{number}")
        self.number = number
        self.client = s3vectors_client(url)
        self.index = index
        self.keys = keys
        self.rng = rng
        self.next_op = first_op
        self.stop = stop
        self.fill = fill  # first put every key once (in batches), then random ops
        self.max_ops = max_ops
        self.ops: list[Op] = []

    def _plan(self, n: int) -> Op:
        if self.fill and n * 50 < len(self.keys):
            return Op(self.number, self.next_op, "put", tuple(self.keys[n * 50 : (n + 1) * 50]))
        if self.rng.random() < 0.75:
            chosen = self.rng.sample(self.keys, self.rng.randint(1, min(20, len(self.keys))))
            return Op(self.number, self.next_op, "put", tuple(chosen))
        chosen = self.rng.sample(self.keys, self.rng.randint(1, min(8, len(self.keys))))
        return Op(self.number, self.next_op, "delete", tuple(chosen))

    def _call(self, op: Op) -> None:
        base = {"vectorBucketName": BUCKET, "indexName": self.index}
        if op.kind == "put":
            vectors = [
                {
                    "key": k,
                    "data": {"float32": vector_for(op.writer, op.number, key_no_of(k))},
                    "metadata": {"w": op.writer, "op": op.number},
                }
                for k in op.keys
            ]
            self.client.put_vectors(**base, vectors=vectors)
        else:
            self.client.delete_vectors(**base, keys=list(op.keys))

    def run(self) -> None:
        n = 0
        while not self.stop.is_set() and (self.max_ops is None or n < self.max_ops):
            op = self._plan(n)
            self.next_op += 1
            self.ops.append(op)
            n += 1
            try:
                self._call(op)
                op.acked = True
            except ClientError as e:  # the server answered: an error, not an acknowledgement
                op.error = f"HTTP {e.response['ResponseMetadata'].get('HTTPStatusCode')}"
            except Exception as e:  # no answer: the server died (or is dying) under the call
                op.error = type(e).__name__
                return


class Harness:
    def __init__(self, root: Root, seed: int, workdir: Path, *, writers: int = 3, keys_per_writer: int = 40) -> None:
        self.root = root
        self.rng = random.Random(seed)
        self.workdir = workdir
        self.log = workdir / "processes.log"
        self.writers = writers
        self.keys_per_writer = keys_per_writer
        self.stats = Stats()
        self.models: dict[str, Model] = {}
        self.next_op: dict[tuple[str, int], int] = defaultdict(int)
        self.ids: dict[str, tuple[str, str]] = {}
        self.api: Process | None = None
        self.api_url = ""
        self.api_materializes = True
        self.materializer: Process | None = None
        self.builds = 0
        self.unchecked: set[str] = set()  # indexes written to since their last replay check
        self.exe = str(Path(sys.executable).with_name("vecledger"))
        self.progress = False

    # --- processes ----------------------------------------------------------------------------

    def env(self, failpoints: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VECLEDGER_")}
        env |= {"VECLEDGER_LEASE_SECONDS": str(LEASE_SECONDS), "VECLEDGER_BUILD_THRESHOLD": str(BUILD_THRESHOLD)}
        if self.root.is_s3:
            env.setdefault("AWS_ACCESS_KEY_ID", "test")
            env.setdefault("AWS_SECRET_ACCESS_KEY", "test")
        if failpoints:
            env["VECLEDGER_FAILPOINTS"] = failpoints
        return env

    def root_args(self) -> list[str]:
        return ["--root", self.root.root] + (["--s3-endpoint", self.root.s3_endpoint] if self.root.s3_endpoint else [])

    def start_api(self, materialize: bool = True) -> None:
        port = free_port()
        args = [self.exe, "serve", *self.root_args(), "--port", str(port), "--dev"]
        self.api = Process(args + ([] if materialize else ["--no-materialize"]), self.env(), self.log)
        self.api_url, self.api_materializes = f"http://127.0.0.1:{port}", materialize
        client = s3vectors_client(self.api_url)
        deadline = time.monotonic() + 60
        while True:
            try:
                client.list_vector_buckets()
                return
            except Exception:
                if not self.api.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"vecledger serve did not start; see {self.log}") from None
                time.sleep(0.05)

    def start_materializer(self, failpoints: str | None = None) -> Process:
        return Process([self.exe, "materialize", *self.root_args()], self.env(failpoints), self.log)

    def client(self) -> Any:
        return s3vectors_client(self.api_url, attempts=3)

    def close(self) -> None:
        for proc in (self.materializer, self.api):
            if proc is not None:
                proc.stop(signal.SIGTERM)

    # --- indexes and load ---------------------------------------------------------------------

    def create_index(self, name: str, keys_per_writer: int) -> None:
        c = self.client()
        if not self.models:
            c.create_vector_bucket(vectorBucketName=BUCKET)
        c.create_index(
            vectorBucketName=BUCKET, indexName=name, dataType="float32", dimension=DIM, distanceMetric="euclidean"
        )
        self.models[name] = Model([key_name(w, i) for w in range(self.writers) for i in range(keys_per_writer)])
        self.ids[name] = self.root.index_ids(BUCKET, name)

    def writer_threads(self, index: str, stop: threading.Event, **kw: Any) -> list[Writer]:
        keys = self.models[index].keys
        threads = []
        for w in range(self.writers):
            own = [k for k in keys if k.startswith(f"w{w}-")]
            rng = random.Random(self.rng.getrandbits(64))
            threads.append(Writer(w, self.api_url, index, own, rng, self.next_op[(index, w)], stop, **kw))
        return threads

    def finish(self, index: str, threads: list[Writer]) -> None:
        for t in threads:
            t.join(timeout=120)
            if t.is_alive():
                raise RuntimeError(f"{t.name} is stuck")
            self.next_op[(index, t.number)] = t.next_op
            self.models[index].ops += t.ops
        self.unchecked.add(index)

    # --- checks -------------------------------------------------------------------------------

    def fail(self, message: str) -> None:
        print(f"FAILURE: {message}", file=sys.stderr, flush=True)
        self.stats.failures.append(message)

    def read_all(self, index: str) -> dict[str, Value]:
        """Every key of the index through GetVectors; a row's vector must match its metadata."""
        c, model = self.client(), self.models[index]
        observed: dict[str, Value] = dict.fromkeys(model.keys)
        for i in range(0, len(model.keys), MAX_GET):
            got = c.get_vectors(
                vectorBucketName=BUCKET,
                indexName=index,
                keys=model.keys[i : i + MAX_GET],
                returnData=True,
                returnMetadata=True,
            )
            for v in got["vectors"]:
                meta = v.get("metadata") or {}
                value = (int(meta["w"]), int(meta["op"]))
                if v["data"]["float32"] != vector_for(*value, key_no_of(v["key"])):
                    self.fail(f"{index}: key {v['key']} has metadata {meta} but vector {v['data']['float32']}")
                observed[v["key"]] = value
        return observed

    def listed(self, index: str) -> set[str]:
        c, found, token = self.client(), set(), None
        while True:
            kw = {"nextToken": token} if token else {}
            page = c.list_vectors(vectorBucketName=BUCKET, indexName=index, maxResults=1000, **kw)
            found |= {v["key"] for v in page["vectors"]}
            token = page.get("nextToken")
            if not token:
                return found

    def check_queries(self, index: str, observed: dict[str, Value], where: str, samples: int = 4) -> None:
        """QueryVectors agrees with GetVectors: a present key is found by its own vector (distance
        0), and every hit shows the value GetVectors shows (no deleted or stale row)."""
        c = self.client()
        present = [k for k, v in observed.items() if v is not None]
        for k in self.rng.sample(present, min(samples, len(present))):
            value = observed[k]
            assert value is not None
            hits = c.query_vectors(
                vectorBucketName=BUCKET,
                indexName=index,
                queryVector={"float32": vector_for(*value, key_no_of(k))},
                topK=5,
                returnMetadata=True,
                returnDistance=True,
            )["vectors"]
            if not any(h["key"] == k and h["distance"] == 0 for h in hits):
                self.fail(f"{where}: query by {k}'s vector {value} did not find it: {hits}")
            for h in hits:
                meta = h.get("metadata") or {}
                shown = (int(meta["w"]), int(meta["op"])) if meta else None
                if shown != observed.get(h["key"]):
                    self.fail(f"{where}: query hit {h['key']} shows {shown}, GetVectors {observed.get(h['key'])}")

    def verify(self, index: str, where: str, *, settle: bool) -> dict[str, Value]:
        model = self.models[index]
        observed = self.read_all(index)
        for failure in model.check(observed, f"{index} {where}"):
            self.fail(failure)
        listed, present = self.listed(index), {k for k, v in observed.items() if v is not None}
        if listed != present:
            self.fail(f"{index} {where}: ListVectors {sorted(listed ^ present)} disagree with GetVectors")
        self.check_queries(index, observed, f"{index} {where}")
        self.stats.key_checks += len(observed)
        if settle:
            self.stats.acked_ops += sum(op.acked for op in model.ops)
            self.stats.unknown_ops += sum(not op.acked for op in model.ops)
            model.settle(observed)
        return observed

    def catch_up(self, where: str, timeout: float = 60) -> None:
        """Every index's checkpoint must reach the end of its log (no writes run meanwhile)."""
        deadline = time.monotonic() + timeout
        pending = dict(self.ids)
        while pending:
            for name, (bucket_id, index_id) in list(pending.items()):
                last = self.root.last_log_seq(bucket_id, index_id)
                cp = self.root.checkpoint_seq(bucket_id, index_id)
                if last < 0 and any(v is not None for v in self.models[name].state.values()):
                    # Keys are visible, so there are events: the harness looks in the wrong place.
                    self.fail(f"{name} {where}: no log found under data/{bucket_id}/{index_id}/log/")
                if cp > last:
                    self.fail(f"{name} {where}: checkpoint seq {cp} is past the last log seq {last}")
                if cp >= last:
                    del pending[name]
                elif time.monotonic() > deadline:
                    self.fail(f"{name} {where}: no catch-up in {timeout}s: checkpoint seq {cp}, log seq {last}")
                    del pending[name]
            if pending:
                time.sleep(0.1)

    def replay_check(self, index: str, where: str) -> None:
        args = [self.exe, "replay", "--check", *self.root_args(), "--bucket", BUCKET, "--index", index]
        out = subprocess.run(args, env=self.env(), capture_output=True, text=True, timeout=300)
        self.stats.replay_checks += 1
        if out.returncode != 0:
            output = out.stdout[-2000:] + out.stderr[-2000:]
            self.fail(f"{index} {where}: replay --check exit {out.returncode}: {output}")

    # --- iterations ---------------------------------------------------------------------------

    def server_kill(self, load_max: float) -> None:
        """Load, SIGKILL the server at a random instant, restart, check, wait for the fold, check."""
        if self.api is None or not self.api_materializes:
            self.switch_api(materialize=True)
        stop = threading.Event()
        threads = self.writer_threads(MAIN_INDEX, stop)
        delay = self.rng.uniform(0.0, load_max)
        for t in threads:
            t.start()
        time.sleep(delay)
        assert self.api is not None
        self.api.kill()
        self.stats.server_kills += 1
        stop.set()
        self.finish(MAIN_INDEX, threads)
        self.start_api(materialize=True)
        where = f"iteration {self.stats.iterations} (server killed at {delay:.3f}s)"
        self.verify(MAIN_INDEX, f"{where} after restart", settle=True)
        self.catch_up(where)
        self.verify(MAIN_INDEX, f"{where} after the fold", settle=True)

    def switch_api(self, materialize: bool) -> None:
        if self.api is not None:
            self.api.stop(signal.SIGTERM)
        self.start_api(materialize)

    def materializer_kill(self, failpoint: str) -> None:
        """SIGKILL a standalone materializer at a failpoint; a clean one must take over and agree."""
        if self.api is None or self.api_materializes:
            self.switch_api(materialize=False)
        index = MAIN_INDEX
        if failpoint.startswith("materializer.index_build"):
            # A build happens once per index (at BUILD_THRESHOLD rows): a fresh index each time.
            self.builds += 1
            index = f"build-{self.builds}"
            per_writer = BUILD_THRESHOLD // self.writers + 20
            self.create_index(index, per_writer)
            self.finish(index, self._run(self.writer_threads(index, threading.Event(), fill=True, max_ops=8)))
        else:
            self.finish(index, self._run(self.writer_threads(index, threading.Event(), max_ops=10)))
        # Writes go on while the materializer starts, folds and dies.
        stop = threading.Event()
        threads = self.writer_threads(index, stop, max_ops=200)
        for t in threads:
            t.start()
        doomed = self.start_materializer(failpoint)
        try:
            doomed.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            doomed.kill()
            self.fail(f"{index}: the materializer never reached failpoint {failpoint} in 60s")
        else:
            if doomed.proc.returncode != -signal.SIGKILL:
                self.fail(f"{index}: the materializer exited with {doomed.proc.returncode}, not at {failpoint}")
        self.stats.materializer_kills += 1
        stop.set()
        self.finish(index, threads)
        where = f"iteration {self.stats.iterations} (materializer killed at {failpoint})"
        self.verify(index, f"{where} before the restart", settle=True)
        self.materializer = self.start_materializer()
        self.catch_up(where)
        for name in sorted(self.models):
            self.verify(name, f"{where} after the fold", settle=True)
        self.replay_check(index, where)
        self.unchecked.discard(index)
        self.materializer.stop()  # SIGINT: a clean stop releases the leases for the next one
        self.materializer = None

    @staticmethod
    def _run(threads: list[Writer]) -> list[Writer]:
        for t in threads:
            t.start()
        return threads

    def run(self, iterations: int, materializer_kills: int, load_max: float = 0.6) -> Stats:
        """``iterations`` kills in all: server kills first, then ``materializer_kills`` materializer
        kills alternating between the two failpoints."""
        self.start_api(materialize=True)
        self.create_index(MAIN_INDEX, self.keys_per_writer)
        for i in range(iterations):
            started, acked = time.monotonic(), self.stats.acked_ops
            if i < iterations - materializer_kills:
                self.server_kill(load_max)
            elif (iterations - i) % 2 == 0:
                self.materializer_kill("materializer.after_lance_commit")
            else:
                self.materializer_kill(f"materializer.index_build={self.rng.uniform(0.0, 0.3):.3f}")
            self.stats.iterations += 1
            if self.progress:
                kind = "server" if i < iterations - materializer_kills else "materializer"
                print(
                    f"iteration {i}: {kind} kill, {self.stats.acked_ops - acked} acknowledged calls checked, "
                    f"{time.monotonic() - started:.1f}s",
                    file=sys.stderr,
                    flush=True,
                )
        # The end: every index's materialized state is what a fold of its whole log gives.
        if self.api is not None:
            self.api.stop(signal.SIGTERM)
            self.api = None
        for name in sorted(self.unchecked):
            self.replay_check(name, "at the end")
        return self.stats


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


def run(
    backend: str,
    iterations: int,
    seed: int,
    workdir: Path,
    *,
    s3_endpoint: str | None = None,
    materializer_kills: int | None = None,
    load_max: float = 0.6,
    progress: bool = False,
) -> Stats:
    """One run on a fresh root under ``workdir`` (a folder, or a new bucket at ``s3_endpoint``)."""
    if materializer_kills is None:
        materializer_kills = max(2, iterations // 5) if iterations >= 4 else 0
    workdir.mkdir(parents=True, exist_ok=True)
    if backend == "local":
        root = Root(str(workdir / "root"))
    else:
        if s3_endpoint is None:
            raise ValueError("the s3 backend needs an endpoint")
        bucket = f"crash-{seed}-{random.Random(seed).getrandbits(32):08x}-{time.time_ns() % 10**6}"
        root = Root(f"s3://{bucket}/root", s3_endpoint)
        root.s3.create_bucket(Bucket=bucket)
    harness = Harness(root, seed, workdir)
    harness.progress = progress
    try:
        return harness.run(iterations, materializer_kills, load_max)
    finally:
        harness.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m tools.crash", description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=20, help="kills in all (server and materializer)")
    p.add_argument("--backend", choices=("local", "s3"), default="local")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--materializer-kills", type=int, help="how many of the iterations kill a materializer")
    p.add_argument("--load-max", type=float, default=0.6, help="kill a server at most this long into its load")
    p.add_argument("--s3-endpoint", help="an S3 endpoint (default: an in-process moto server)")
    p.add_argument("--workdir", help="keep the root and process logs here (default: a temporary folder)")
    args = p.parse_args(argv)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="vecledger-crash-"))
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        endpoint = args.s3_endpoint
        if args.backend == "s3" and endpoint is None:
            endpoint = stack.enter_context(moto_server())
        stats = run(
            args.backend,
            args.iterations,
            args.seed,
            workdir,
            s3_endpoint=endpoint,
            materializer_kills=args.materializer_kills,
            load_max=args.load_max,
            progress=True,
        )
    print(f"backend: {args.backend}, seed {args.seed}, {time.monotonic() - started:.0f}s")
    print(stats.summary())
    for failure in stats.failures:
        print(f"  {failure}")
    if stats.failures:
        print(f"process logs and the root are kept in {workdir}")
        sys.exit(1)
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
