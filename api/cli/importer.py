"""``vecledger import``: batches of rows from ``readers.py`` sent as PutVectors, resumably.

A progress file next to the input records how many rows the server has acknowledged; an
interrupted import resumes from it (PutVectors is an upsert, so re-sending the last batch is
harmless). Throttled writes are retried with jittered backoff.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from api.cli.readers import Input, InputError, Row, detect_format, open_input
from api.cli.remote import (
    CliError,
    RateColumn,
    Remote,
    ServerError,
    bucket_index_options,
    client_options,
    explain,
    index_info,
)

FORMATS = ("parquet", "npy", "jsonl", "csv")


MAX_BODY = 16 * 1024 * 1024  # below the server's 20 MiB request limit


def progress_file(path: Path) -> Path:
    return path.with_name(path.name + ".vecledger-progress")


def _resume_from(marker: Path, target: dict[str, Any], resume: bool) -> tuple[int, str]:
    """Rows already acknowledged by the server in an earlier run, and a note saying so."""
    if not resume or not marker.exists():
        return 0, ""
    try:
        doc = orjson.loads(marker.read_bytes())
        rows = int(doc["rows"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0, f"ignoring unreadable {marker.name}; starting from the first row"
    if {k: doc.get(k) for k in target} != target:
        return 0, f"{marker.name} is from an import elsewhere or of another version of the file; starting over"
    return rows, f"resuming after row {rows} ({marker.name}; --no-resume starts over)"


def _bodies(bucket: str, index: str, batch: list[Row]) -> Iterator[tuple[int, dict[str, Any]]]:
    """PutVectors bodies for a batch: one, or halves while it exceeds the request size limit."""
    vectors = [
        {"key": r.key, "data": {"float32": r.vector}} | ({"metadata": r.metadata} if r.metadata else {}) for r in batch
    ]
    body = {"vectorBucketName": bucket, "indexName": index, "vectors": vectors}
    if len(batch) > 1 and len(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)) > MAX_BODY:
        half = len(batch) // 2
        yield from _bodies(bucket, index, batch[:half])
        yield from _bodies(bucket, index, batch[half:])
    else:
        yield len(batch), body


def _ensure_index(
    remote: Remote, bucket: str, index: str, source: Input, create: bool, dim: int | None, metric: str
) -> int:
    """The index's dimension, after creating the bucket and index if asked to and missing."""
    try:
        return int(index_info(remote, bucket, index)["dimension"])
    except ServerError as e:
        if e.status != 404:
            raise
        if not create:
            raise CliError(
                f"index {bucket}/{index} does not exist; pass --create-index (dimension from the data, or "
                "--dimension; --metric cosine|euclidean) to create it"
            ) from None
    try:
        remote.call("CreateVectorBucket", {"vectorBucketName": bucket})
        click.echo(f"created bucket {bucket}", err=True)
    except ServerError as e:
        if e.status != 409:
            raise
    dimension = dim or source.dimension()
    remote.call(
        "CreateIndex",
        {
            "vectorBucketName": bucket,
            "indexName": index,
            "dataType": "float32",
            "dimension": dimension,
            "distanceMetric": metric,
        },
    )
    click.echo(f"created index {bucket}/{index} ({dimension} dimensions, {metric})", err=True)
    return dimension


@click.command("import")
@client_options
@bucket_index_options
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Input format (default: from the file extension).")
@click.option("--keys", "keys_file", type=click.Path(path_type=Path), help=".npy only: a text file, one key per line.")
@click.option(
    "--metadata",
    "metadata_file",
    type=click.Path(path_type=Path),
    help=".npy only: a JSONL file, one metadata object per line.",
)
@click.option("--create-index", is_flag=True, help="Create the index (and bucket) if missing.")
@click.option("--dimension", type=click.IntRange(1), help="With --create-index (default: the data's).")
@click.option(
    "--metric",
    type=click.Choice(["cosine", "euclidean"]),
    default="cosine",
    show_default=True,
    help="With --create-index.",
)
@click.option(
    "--batch-size", default=500, show_default=True, type=click.IntRange(1, 500), help="Vectors per PutVectors."
)
@click.option("--resume/--no-resume", default=True, show_default=True, help="Continue an interrupted import of FILE.")
@click.option("--stop-after", type=click.IntRange(1), hidden=True)  # tests: stop as if interrupted
def import_(
    remote: Remote,
    bucket: str,
    index: str,
    file: Path,
    fmt: str | None,
    keys_file: Path | None,
    metadata_file: Path | None,
    create_index: bool,
    dimension: int | None,
    metric: str,
    batch_size: int,
    resume: bool,
    stop_after: int | None,
) -> None:
    """Load vectors from FILE into an index: Parquet, .npy, JSONL or CSV.

    \b
    Parquet  columns `key` and `vector`; every other column is metadata
    .npy     a 2-D array; keys from --keys (default: row numbers), metadata
             from --metadata (JSONL, one object per row)
    JSONL    {"key": "k1", "vector": [0.1, ...], "metadata": {...}}; other
             fields are metadata too
    CSV      a `key` column, a `vector` column (a JSON list) or columns
             v0..vN; the other columns are metadata

    Writes go in batches of 500; throttled ones are retried. Progress is kept
    in FILE.vecledger-progress: after an interruption, run the same command
    again and it continues where the server stopped acknowledging.
    """
    try:
        source = open_input(file, fmt or detect_format(file), keys_file, metadata_file)
        dim = _ensure_index(remote, bucket, index, source, create_index, dimension, metric)
        marker = progress_file(file)
        target = {"endpoint": remote.endpoint, "bucket": bucket, "index": index, "size": file.stat().st_size}
        start, note = _resume_from(marker, target, resume)
        if note:
            click.echo(note, err=True)
        _run(
            remote,
            bucket,
            index,
            source,
            dim,
            start,
            min(batch_size, max(1, 1_000_000 // dim)),
            marker,
            target,
            stop_after,
        )
    except InputError as e:
        raise CliError(str(e)) from None


def _run(
    remote: Remote,
    bucket: str,
    index: str,
    source: Input,
    dim: int,
    start: int,
    batch_size: int,
    marker: Path,
    target: dict[str, Any],
    stop_after: int | None,
) -> None:
    throttled = 0

    def retried(e: ServerError) -> None:
        nonlocal throttled
        throttled += 1

    done = start
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("import", total=source.total, completed=start)
        rows = source.rows(start)
        try:
            while batch := list(itertools.islice(rows, batch_size)):
                for row in batch:
                    if len(row.vector) != dim:
                        raise InputError(f"{row.key!r} has {len(row.vector)} dimensions; the index has {dim}")
                for count, body in _bodies(bucket, index, batch):
                    remote.call_retrying("PutVectors", body, retried)
                    done += count
                    tmp = marker.with_name(marker.name + ".tmp")
                    tmp.write_bytes(orjson.dumps(target | {"rows": done}))
                    os.replace(tmp, marker)
                    bar.update(task, completed=done)
                if stop_after is not None and done - start >= stop_after:
                    raise CliError(f"stopped after {done} rows (--stop-after); run the command again to resume")
        except KeyboardInterrupt:
            raise CliError(f"interrupted after {done} rows; run the same command again to resume") from None
        except ServerError as e:
            raise CliError(
                f"{explain(e, remote).message} (after {done} rows; run the command again to resume)"
            ) from None
    marker.unlink(missing_ok=True)
    resumed = f", resumed after row {start}" if start else ""
    retries = f", {throttled} throttled writes retried" if throttled else ""
    click.echo(
        f"imported {done - start} vectors into {bucket}/{index} ({done} rows in {source.path.name}{resumed}{retries})"
    )
