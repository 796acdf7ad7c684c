"""``vecledger ls`` and ``vecledger query``: look around a running server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import numpy as np
import orjson
from rich.table import Table

from api.cli.remote import Remote, bucket_index_options, client_options, console, index_info


@click.command("ls")
@client_options
@click.option("--bucket", "-b", help="List this bucket's indexes instead of the buckets.")
def ls(remote: Remote, bucket: str | None) -> None:
    """List vector buckets, or one bucket's indexes with their status.

    \b
    For each index: dimension, metric, vector count, the last log seq the
    materializer has folded into the dataset, the lag (log entries written but
    not yet folded: reads still see them), and the index type (flat, or IVF_SQ
    with its partition count). Counts and seqs need the bucket owner's key.
    """
    out = console()
    if bucket is None:
        table = Table("bucket", "created")
        for page in remote.pages("ListVectorBuckets", {"maxResults": 500}, "vectorBuckets"):
            for b in page:
                table.add_row(b["vectorBucketName"], _when(b.get("creationTime")))
        out.print(table)
        return
    table = Table("index", "dimension", "metric", "vectors", "materialized seq", "lag", "type")
    for page in remote.pages("ListIndexes", {"vectorBucketName": bucket, "maxResults": 500}, "indexes"):
        for entry in page:
            name = entry["indexName"]
            info = index_info(remote, bucket, name)
            s = remote.index_status(bucket, name) or {}
            kind = s.get("indexType", "-")
            if s.get("partitions"):
                kind = f"{kind} ({s['partitions']} partitions)"
            cells = [s.get("vectors", "-"), s.get("materializedSeq", "-"), s.get("lag", "-")]
            table.add_row(name, str(info["dimension"]), info["distanceMetric"], *map(str, cells), kind)
    out.print(table)


def _when(value: Any) -> str:
    if isinstance(value, int | float):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
    return str(value or "")


# --- query ----------------------------------------------------------------------------------------


def _query_vector(vector: str | None, vector_file: Path | None) -> np.ndarray:
    if (vector is None) == (vector_file is None):
        raise click.UsageError("give the query as --vector '[0.1, 0.2, ...]' or --vector-file q.npy (one of them)")
    if vector_file is not None:
        if vector_file.suffix == ".npy":
            arr = np.load(vector_file, allow_pickle=False)
        else:
            arr = np.asarray(orjson.loads(vector_file.read_bytes()), dtype=np.float32)
        first: np.ndarray = np.asarray(arr, dtype=np.float32).reshape(-1, arr.shape[-1])[0]
        return first
    try:
        return np.asarray(orjson.loads(vector or ""), dtype=np.float32).reshape(-1)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        raise click.BadParameter(
            "must be a JSON list of numbers, e.g. '[0.1, 0.2, 0.3]'", param_hint="--vector"
        ) from None


@click.command("query")
@client_options
@bucket_index_options
@click.option("--vector", "-v", help="The query vector as a JSON list: '[0.1, 0.2, ...]'.")
@click.option(
    "--vector-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The query vector from a .npy file (its first row) or a JSON file.",
)
@click.option("--top-k", "-k", default=10, show_default=True, type=click.IntRange(1), help="Results to return.")
@click.option("--filter", "filter_", help='A metadata filter as JSON, e.g. \'{"genre": {"$eq": "jazz"}}\'.')
@click.option("--metadata/--no-metadata", default=False, help="Show each result's metadata.")
@click.option("--distance/--no-distance", default=True, show_default=True, help="Show each result's distance.")
@click.option("--json", "as_json", is_flag=True, help="Print the server's JSON answer instead of a table.")
def query(
    remote: Remote,
    bucket: str,
    index: str,
    vector: str | None,
    vector_file: Path | None,
    top_k: int,
    filter_: str | None,
    metadata: bool,
    distance: bool,
    as_json: bool,
) -> None:
    """Find the nearest vectors to a query vector."""
    body: dict[str, Any] = {
        "vectorBucketName": bucket,
        "indexName": index,
        "topK": top_k,
        "queryVector": {"float32": _query_vector(vector, vector_file)},
        "returnMetadata": metadata,
        "returnDistance": distance,
    }
    if filter_ is not None:
        try:
            body["filter"] = orjson.loads(filter_)
        except orjson.JSONDecodeError as e:
            raise click.BadParameter(f"not JSON: {e}", param_hint="--filter") from None
    out = remote.call("QueryVectors", body)
    if as_json:
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table("#", "key", *(["distance"] if distance else []), *(["metadata"] if metadata else []))
    for rank, hit in enumerate(out.get("vectors") or [], 1):
        cells = [str(rank), hit["key"]]
        if distance:
            cells.append(f"{hit.get('distance', float('nan')):.6g}")
        if metadata:
            cells.append(orjson.dumps(hit.get("metadata") or {}).decode())
        table.add_row(*cells)
    console().print(table)


# --- export ---------------------------------------------------------------------------------------
