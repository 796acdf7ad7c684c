"""One crash run on a fresh root, and the command line that starts it (`python -m tools.crash`)."""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tools.crash import __doc__ as crash_doc
from tools.crash.harness import Harness
from tools.crash.model import Stats
from tools.crash.procs import Root, moto_server


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
    p = argparse.ArgumentParser(prog="python -m tools.crash", description=crash_doc.split("\n\n")[0])
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
