"""Offline commands on a storage root: ``restore``, ``replay --check`` and ``audit``.

They open the root directly (no server needed; a running server on the same root sees their
results, since everything they change goes through the logs).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import anyio
import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from api.cli.options import env
from api.config import DEV_ACCOUNT, engine_settings
from api.limits import iso_time
from engine import BucketRef, Engine, IndexRef
from engine.audit.query import OUTCOMES, AuditQuery
from engine.context import RequestContext
from engine.errors import BucketNotFound, VecledgerError


def root_args(f: Any) -> Any:
    """Where the data lives and whose it is: the options every offline command takes."""
    for option in reversed(
        [
            click.option("--root", default=lambda: env("ROOT", "./data"), help="A folder, or s3://bucket/prefix."),
            click.option("--s3-endpoint", default=lambda: env("S3_ENDPOINT"), help="S3-compatible endpoint URL."),
            click.option("--region", default=lambda: env("REGION", "us-east-1"), help="Region (default us-east-1)."),
            click.option(
                "--account",
                default=lambda: env("ACCOUNT_ID", DEV_ACCOUNT),
                help=f"The account that owns the bucket (default VECLEDGER_ACCOUNT_ID or {DEV_ACCOUNT}).",
            ),
        ]
    ):
        f = option(f)
    return f


@click.command()
@root_args
@click.option("--bucket", required=True, help="The source index's bucket.")
@click.option("--index", required=True, help="The source index (it may have been deleted since).")
@click.option("--to-seq", type=int, help="The last event (seq in the index's log) to include.")
@click.option("--to-time", help="An ISO 8601 time, e.g. 2026-11-25T10:00:00Z: include what was written by then.")
@click.option("--into", required=True, help="Name of the new index.")
@click.option("--into-bucket", help="Bucket of the new index (default: the source's; created if missing).")
@click.option("--index-id", help="Restore exactly this index id (when a name was deleted and re-created).")
@click.option(
    "--allow-broken-chain", is_flag=True, help="Replay the log even if its hash chain check fails (audit --verify)."
)
def restore(**args: Any) -> None:
    """Rebuild an index as it was at a seq or a time, into a new index.

    Give exactly one of --to-seq and --to-time.
    """
    if (args["to_seq"] is None) == (args["to_time"] is None):
        raise click.UsageError("give exactly one of --to-seq and --to-time")
    on_root(args, lambda engine, ctx: _restore(engine, ctx, args))


@click.command()
@root_args
@click.option("--check", is_flag=True, help="Compare keys, vectors and metadata (required).")
@click.option("--bucket", required=True)
@click.option("--index", required=True)
def replay(**args: Any) -> None:
    """Re-fold an index from its log and compare with the live dataset.

    Exits 1 if they differ, listing the differences.
    """
    if not args["check"]:
        raise click.UsageError("replay needs --check (compare the re-folded index with the live one)")
    on_root(args, lambda engine, ctx: _replay(engine, args))


@click.command()
@root_args
@click.option("--all-accounts", is_flag=True, help="Every account, not only --account.")
@click.option("--bucket")
@click.option("--index")
@click.option("--key", help="Only events that touched this vector key (lists the keys).")
@click.option("--principal", help="E.g. arn:aws:iam::123456789012:root")
@click.option("--since", help="ISO 8601 time.")
@click.option("--until", help="ISO 8601 time.")
@click.option("--type", help="An event type (vectors.put) or operation (PutVectors).")
@click.option("--outcome", type=click.Choice(OUTCOMES))
@click.option("--format", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
@click.option("--verbose", is_flag=True, help="List the keys each event touched.")
@click.option(
    "--verify",
    is_flag=True,
    help="Check every log's hash chain instead: report deleted, reordered and edited objects by key.",
)
def audit(**args: Any) -> None:
    """Who changed what and when: every mutation and refused request."""
    on_root(args, lambda engine, ctx: _verify(engine) if args["verify"] else _audit(engine, args))


COMMANDS = (restore, replay, audit)


def _time(value: str | None, flag: str) -> float | None:
    if value is None:
        return None
    try:
        return iso_time(value)
    except ValueError as e:
        raise SystemExit(f"vecledger: {flag}: {e}") from None


def on_root(options: dict[str, Any], work: Callable[[Engine, RequestContext], Awaitable[None]]) -> None:
    """Open the root of ``options`` (without materializers) and run ``work`` on it as the CLI."""

    async def go() -> None:
        settings = replace(engine_settings(options["s3_endpoint"], options["region"]), run_materializers=False)
        ctx = RequestContext(principal="cli", account=options["account"], source="cli", dialect="cli")
        async with Engine.open(options["root"], settings) as engine:
            await work(engine, ctx)

    try:
        anyio.run(go)
    except VecledgerError as e:
        print(f"vecledger: {e}", file=sys.stderr)
        raise SystemExit(2) from None


async def _replay(engine: Engine, args: dict[str, Any]) -> None:
    report = await engine.replay_check(IndexRef(args["account"], args["bucket"], args["index"]))
    print(
        f"replayed {args['bucket']}/{args['index']} up to seq {report.seq}: {report.rows} rows live, "
        f"{report.scratch_rows} rebuilt"
    )
    for line in report.mismatches[:50]:
        print(f"  MISMATCH {line}")
    print("consistent" if report.ok else f"INCONSISTENT: {len(report.mismatches)} differences")
    if not report.ok:
        raise SystemExit(1)


async def _restore(engine: Engine, ctx: RequestContext, args: dict[str, Any]) -> None:
    into_bucket = args["into_bucket"] or args["bucket"]
    try:
        await engine.get_bucket(BucketRef(args["account"], into_bucket))
    except BucketNotFound:
        await engine.create_bucket(ctx, BucketRef(args["account"], into_bucket))
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
            IndexRef(args["account"], args["bucket"], args["index"]),
            IndexRef(args["account"], into_bucket, args["into"]),
            to_seq=args["to_seq"],
            to_time=_time(args["to_time"], "--to-time"),
            source_id=args["index_id"],
            allow_broken_chain=args["allow_broken_chain"],
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    src = index.restored_from or {}
    print(f"restored {src.get('bucket')}/{src.get('index')} as of seq {src.get('seq')} into {into_bucket}/{index.name}")


async def _verify(engine: Engine) -> None:
    """Exit status 1 if any log fails; the heads are printed to be kept elsewhere (see
    engine/log/chain.py: a later verify finding another head at that seq shows a rewrite)."""
    reports = await engine.verify_logs()
    for r in reports:
        if r.last < 0:
            continue
        state = "ok" if r.ok else f"BROKEN ({len(r.findings)} findings)"
        print(f"{r.prefix}: seqs {r.first}-{r.last}, {r.objects} objects, {state}; head {r.last} {r.head}")
        for f in r.findings:
            print(f"  {f.kind.upper()} {f.key}: {f.detail}")
    broken = sum(1 for r in reports if not r.ok)
    print(f"{len(reports)} logs checked, {broken} broken")
    if broken:
        raise SystemExit(1)


async def _audit(engine: Engine, args: dict[str, Any]) -> None:
    q = AuditQuery(
        account=None if args["all_accounts"] else args["account"],
        bucket=args["bucket"],
        index=args["index"],
        key=args["key"],
        principal=args["principal"],
        since=_time(args["since"], "--since"),
        until=_time(args["until"], "--until"),
        type=args["type"],
        outcome=args["outcome"],
        verbose=args["verbose"],
    )
    records = await engine.audit_records(q)
    if args["format"] == "jsonl":
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
