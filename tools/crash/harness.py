"""The crash harness: load, kill, restart and check, iteration after iteration."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from engine import keys
from tools.crash.model import (
    BUCKET,
    BUILD_THRESHOLD,
    DIM,
    LEASE_SECONDS,
    MAIN_INDEX,
    MAX_GET,
    Model,
    Op,
    Stats,
    Value,
    key_name,
    key_no_of,
    vector_for,
)
from tools.crash.procs import Process, Root, free_port, s3vectors_client

# Where materializer kills happen, in turn: between a Lance commit and its checkpoint, during an
# index build, between a build's probe calibration and its record, after restore points were
# thinned and before their tags move, before Lance's cleanup, between a log start's write and the
# deletion of the log objects before it, and while a catalog snapshot is written (the catalog
# events of a fresh index make one due).
MATERIALIZER_FAILPOINTS = (
    "materializer.after_lance_commit",
    "materializer.index_build",
    "materializer.calibrate",
    "materializer.prune_points",
    "materializer.prune_cleanup",
    "materializer.truncate_log",
    "catalog.snapshot",
)
# Every process drops log objects a second after a restore point covers them: the harness's
# restarts, replay checks and takeovers all meet logs whose head is gone.
LOG_RETENTION_SECONDS = 1


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
        env |= {
            "VECLEDGER_LEASE_SECONDS": str(LEASE_SECONDS),
            "VECLEDGER_BUILD_THRESHOLD": str(BUILD_THRESHOLD),
            "VECLEDGER_LOG_RETENTION": str(LOG_RETENTION_SECONDS),
            # A catalog snapshot after every catalog event: restarts after kills start from them.
            "VECLEDGER_CATALOG_SNAPSHOT_EVERY": "1",
        }
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
                    self.fail(f"{name} {where}: no log found under {keys.index_log(bucket_id, index_id)}")
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
        if failpoint.startswith(("materializer.index_build", "materializer.calibrate")):
            # A build (and its calibration) happens once per index (at BUILD_THRESHOLD rows): a
            # fresh index each time.
            self.builds += 1
            index = f"build-{self.builds}"
            per_writer = BUILD_THRESHOLD // self.writers + 20
            self.create_index(index, per_writer)
            self.finish(index, self._run(self.writer_threads(index, threading.Event(), fill=True, max_ops=8)))
        else:
            if failpoint.startswith("catalog.snapshot"):
                self.builds += 1
                self.create_index(f"snap-{self.builds}", 4)  # catalog events: a snapshot falls due
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
        kills cycling through ``MATERIALIZER_FAILPOINTS``."""
        self.start_api(materialize=True)
        self.create_index(MAIN_INDEX, self.keys_per_writer)
        for i in range(iterations):
            started, acked = time.monotonic(), self.stats.acked_ops
            if i < iterations - materializer_kills:
                self.server_kill(load_max)
            else:
                kind = MATERIALIZER_FAILPOINTS[(iterations - i) % len(MATERIALIZER_FAILPOINTS)]
                delay = {
                    "materializer.index_build": f"={self.rng.uniform(0.0, 0.3):.3f}",
                    "catalog.snapshot": f"={self.rng.uniform(0.0, 0.02):.3f}",
                }.get(kind, "")
                self.materializer_kill(kind + delay)
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
