"""``vecledger export``: an index to Parquet, page by page (ListVectors), with typed metadata columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console

from api.cli.remote import RateColumn, Remote, bucket_index_options, client_options, index_info
from engine.log.payload import json_bytes, loads_exact


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "list_str"
    return "json"


def _arrow_type(kinds: set[str]) -> Any:
    """One Parquet type per metadata key; keys whose values disagree are kept as JSON text."""
    import pyarrow as pa

    simple = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "str": pa.string()}
    if len(kinds) == 1 and next(iter(kinds)) in simple:
        return simple[next(iter(kinds))]
    if kinds == {"int", "float"}:
        return pa.float64()
    if kinds == {"list_str"}:
        return pa.list_(pa.string())
    return None  # JSON text


def _retype(tmp: Path, out: Path, kinds: dict[str, set[str]]) -> None:
    """Rewrite the staged file (metadata as JSON text) with a typed column per metadata key, so that
    ``vecledger import`` of the export gives back the same metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    staged = pq.ParquetFile(tmp)
    names = sorted(kinds)
    types = {n: _arrow_type(kinds[n]) for n in names}
    columns = {n: (f"metadata.{n}" if n in ("key", "vector") else n) for n in names}
    fields = [staged.schema_arrow.field("key"), staged.schema_arrow.field("vector")]
    schema = pa.schema(fields + [pa.field(columns[n], types[n] or pa.string()) for n in names])
    with pq.ParquetWriter(out, schema) as writer:
        for batch in staged.iter_batches(batch_size=10_000):
            metas = [loads_exact(m) for m in batch.column("metadata").to_pylist()]
            arrays = [batch.column("key"), batch.column("vector")]
            for n in names:
                values = [m.get(n) for m in metas]
                if types[n] is None:
                    values = [None if v is None else json_bytes(v).decode() for v in values]
                arrays.append(pa.array(values, type=types[n] or pa.string()))
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))


@click.command("export")
@client_options
@bucket_index_options
@click.argument("out", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@click.option(
    "--segments",
    default=1,
    show_default=True,
    type=click.IntRange(1, 16),
    help="List this many key ranges in parallel (faster on large indexes).",
)
def export(remote: Remote, bucket: str, index: str, out: Path, segments: int) -> None:
    """Write every vector of an index, with its metadata, to a Parquet file.

    The file has a `key` column, a `vector` column (fixed-size float32 lists) and one column per
    metadata key, as `vecledger import` reads it back.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    dim = int(index_info(remote, bucket, index)["dimension"])
    total = (remote.index_status(bucket, index) or {}).get("vectors")
    schema = pa.schema([("key", pa.string()), ("vector", pa.list_(pa.float32(), dim)), ("metadata", pa.string())])
    tmp = out.with_name(out.name + ".partial")
    kinds: dict[str, set[str]] = {}
    base = {"vectorBucketName": bucket, "indexName": index, "maxResults": 1000, "returnData": True}
    streams = [
        remote.pages(
            "ListVectors", base | {"returnMetadata": True, "segmentCount": segments, "segmentIndex": i}, "vectors"
        )
        if segments > 1
        else remote.pages("ListVectors", base | {"returnMetadata": True}, "vectors")
        for i in range(segments)
    ]
    columns = (TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeElapsedColumn())
    count = 0
    from concurrent.futures import ThreadPoolExecutor

    with (
        Progress(*columns, console=Console(stderr=True)) as bar,
        pq.ParquetWriter(tmp, schema) as writer,
        ThreadPoolExecutor(segments) as pool,
    ):
        task = bar.add_task("export", total=total)
        active = list(streams)
        while active:
            pages = list(pool.map(lambda s: next(s, None), active))
            active = [s for s, p in zip(active, pages, strict=True) if p is not None]
            for page in (p for p in pages if p):
                metas = [v.get("metadata") or {} for v in page]
                for m in metas:
                    for k, v in m.items():
                        kinds.setdefault(k, set()).add(_kind(v))
                flat = np.array([v["data"]["float32"] for v in page], dtype=np.float32).reshape(-1)
                vectors = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dim)
                keys = pa.array([v["key"] for v in page], pa.string())
                meta = pa.array([json_bytes(m).decode() for m in metas], pa.string())
                writer.write_batch(pa.RecordBatch.from_arrays([keys, vectors, meta], schema=schema))
                count += len(page)
                bar.update(task, completed=count)
    _retype(tmp, out, kinds)
    tmp.unlink()
    click.echo(f"exported {count} vectors from {bucket}/{index} to {out}")
