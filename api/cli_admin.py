"""Offline commands on a storage root: ``restore``, ``replay --check`` and ``audit``.

They open the root directly (no server needed; a running server on the same root sees their
results, since everything they change goes through the logs).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from datetime import datetime
from typing import Any

import anyio
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from api.config import DEV_ACCOUNT, engine_settings
from api.limits import iso_time
from engine.audit_query import OUTCOMES, AuditQuery
from engine.context import RequestContext
from engine.engine import BucketRef, Engine, IndexRef
from engine.errors import BucketNotFound, VecledgerError


def add_commands(sub: Any, env: Any) -> None:
    def root_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--root", default=env("ROOT", "./data"), help="a folder, or s3://bucket/prefix")
        p.add_argument("--s3-endpoint", default=env("S3_ENDPOINT"), help="S3-compatible endpoint URL")
        p.add_argument("--region", default=env("REGION", "us-east-1"))
        p.add_argument("--account", default=env("ACCOUNT_ID", DEV_ACCOUNT), help="the account that owns the bucket")

    r = sub.add_parser("restore", help="rebuild an index as it was at a seq or a time, into a new index")
    root_args(r)
    r.add_argument("--bucket", required=True, help="the source index's bucket")
    r.add_argument("--index", required=True, help="the source index (it may have been deleted since)")
    at = r.add_mutually_exclusive_group(required=True)
    at.add_argument("--to-seq", type=int, help="the last event (seq in the index's log) to include")
    at.add_argument("--to-time", help="an ISO 8601 time, e.g. 2026-11-25T10:00:00Z: include what was written by then")
    r.add_argument("--into", required=True, help="name of the new index")
    r.add_argument("--into-bucket", help="bucket of the new index (default: the source's; created if missing)")
    r.add_argument("--index-id", help="restore exactly this index id (when a name was deleted and re-created)")

    c = sub.add_parser("replay", help="re-fold an index from its log and compare with the live dataset")
    root_args(c)
    c.add_argument("--check", action="store_true", required=True, help="compare keys, vectors and metadata")
    c.add_argument("--bucket", required=True)
    c.add_argument("--index", required=True)

    a = sub.add_parser("audit", help="who changed what and when: every mutation and refused request")
    root_args(a)
    a.add_argument("--all-accounts", action="store_true", help="every account, not only --account")
    a.add_argument("--bucket")
    a.add_argument("--index")
    a.add_argument("--key", help="only events that touched this vector key (lists the keys)")
    a.add_argument("--principal", help="e.g. arn:aws:iam::123456789012:root")
    a.add_argument("--since", help="ISO 8601 time")
    a.add_argument("--until", help="ISO 8601 time")
    a.add_argument("--type", help="an event type (vectors.put) or operation (PutVectors)")
    a.add_argument("--outcome", choices=OUTCOMES)
    a.add_argument("--format", choices=("table", "jsonl"), default="table")
    a.add_argument("--verbose", action="store_true", help="list the keys each event touched")


def _time(value: str | None, flag: str) -> float | None:
    if value is None:
        return None
    try:
        return iso_time(value)
    except ValueError as e:
        raise SystemExit(f"vecledger: {flag}: {e}") from None


def run(args: argparse.Namespace) -> None:
    try:
        anyio.run(_run, args)
    except VecledgerError as e:
        print(f"vecledger: {e}", file=sys.stderr)
        raise SystemExit(2) from None


async def _run(args: argparse.Namespace) -> None:
    settings = replace(engine_settings(args.s3_endpoint, args.region), run_materializers=False)
    ctx = RequestContext(principal="cli", account=args.account, source="cli", dialect="cli")
    async with Engine.open(args.root, settings) as engine:
        if args.command == "restore":
            await _restore(engine, ctx, args)
        elif args.command == "replay":
            report = await engine.replay_check(IndexRef(args.account, args.bucket, args.index))
            print(
                f"replayed {args.bucket}/{args.index} up to seq {report.seq}: {report.rows} rows live, "
                f"{report.scratch_rows} rebuilt"
            )
            for line in report.mismatches[:50]:
                print(f"  MISMATCH {line}")
            print("consistent" if report.ok else f"INCONSISTENT: {len(report.mismatches)} differences")
            if not report.ok:
                raise SystemExit(1)
        else:
            await _audit(engine, args)


async def _restore(engine: Engine, ctx: RequestContext, args: argparse.Namespace) -> None:
    into_bucket = args.into_bucket or args.bucket
    try:
        await engine.get_bucket(BucketRef(args.account, into_bucket))
    except BucketNotFound:
        await engine.create_bucket(ctx, BucketRef(args.account, into_bucket))
        print(f"created bucket {into_bucket}")
    columns = (
        TextColumn("restoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("log objects"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("restore", total=None)
        index = await engine.restore_index(
            ctx,
            IndexRef(args.account, args.bucket, args.index),
            IndexRef(args.account, into_bucket, args.into),
            to_seq=args.to_seq,
            to_time=_time(args.to_time, "--to-time"),
            source_id=args.index_id,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    src = index.restored_from or {}
    print(f"restored {src.get('bucket')}/{src.get('index')} as of seq {src.get('seq')} into {into_bucket}/{index.name}")


async def _audit(engine: Engine, args: argparse.Namespace) -> None:
    q = AuditQuery(
        account=None if args.all_accounts else args.account,
        bucket=args.bucket,
        index=args.index,
        key=args.key,
        principal=args.principal,
        since=_time(args.since, "--since"),
        until=_time(args.until, "--until"),
        type=args.type,
        outcome=args.outcome,
        verbose=args.verbose,
    )
    records = await engine.audit_records(q)
    if args.format == "jsonl":
        for r in records:
            print(json.dumps(r.to_json(), sort_keys=True))
        return
    table = Table(show_lines=False)
    for col in ("time", "log", "seq", "operation", "outcome", "principal", "source", "dialect", "resource", "keys"):
        table.add_column(col)
    for r in records:
        keys = ", ".join(r.keys or []) if r.keys is not None else ("" if r.count is None else str(r.count))
        when = datetime.fromtimestamp(r.time).astimezone().isoformat(timespec="seconds")
        table.add_row(
            when, r.log, str(r.seq), r.operation, r.outcome, r.principal, r.source, r.dialect, r.resource, keys
        )
    Console(width=250).print(table)
    print(f"{len(records)} events")
