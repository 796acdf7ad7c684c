"""The client half of the command line: ``ls`` and ``query`` against a RUNNING server, and the
signed client that ``export`` (``api/cli_export.py``) and ``import`` (``api/cli_upload.py``) share.

Every request is an ordinary SigV4-signed S3 Vectors call (``POST /<Operation>`` with a JSON body),
plus the owner-only ``/_vecledger/index-status`` for what the S3 API does not say. The client signs
with botocore and sends with urllib3 (both already installed with aiobotocore) and serializes with
orjson, which writes float32 arrays straight from numpy: an import of a million vectors should spend
its time on the server, not in the client.
"""

from __future__ import annotations

import functools
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
import numpy as np
import orjson
import urllib3
from rich.console import Console
from rich.progress import ProgressColumn, Task
from rich.table import Table
from rich.text import Text

from api.config import DEV_ACCESS_KEY, DEV_SECRET_KEY
from engine.log.payload import loads_exact

DEFAULT_ENDPOINT = "http://127.0.0.1:8000"
RETRYABLE_CODES = {
    "ThrottlingException",
    "TooManyRequestsException",
    "ServiceUnavailableException",
    "SlowDown",
    "QpsLimitExceeded",
}
F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """A failure the user can act on: printed as ``vecledger: <what to do>``, exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"vecledger: {self.format_message()}", err=True)


class ServerError(Exception):
    """The server answered with an error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message

    @property
    def retryable(self) -> bool:
        """Throttled or briefly unavailable: the same request may succeed a moment later."""
        return self.status in (429, 503) or self.code in RETRYABLE_CODES


class Remote:
    """A signed JSON client for one server and one key."""

    def __init__(self, endpoint: str, region: str, access_key: str, secret_key: str) -> None:
        from botocore.credentials import Credentials

        self.endpoint = endpoint if "://" in endpoint else f"http://{endpoint}"
        self.endpoint = self.endpoint.rstrip("/")
        self.region = region
        self.credentials = Credentials(access_key, secret_key)
        self.pool = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=10, read=600))

    def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """``operation`` is an S3 Vectors operation (``PutVectors``) or an admin path (``_vecledger/…``)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        try:
            data = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
        except TypeError:  # an integer past 64 bits in metadata: json writes it exactly
            data = json.dumps(body, default=lambda a: a.tolist()).encode()
        req = AWSRequest(
            method="POST", url=f"{self.endpoint}/{operation}", data=data, headers={"Content-Type": "application/json"}
        )
        SigV4Auth(self.credentials, "s3vectors", self.region).add_auth(req)
        try:
            r = self.pool.request("POST", req.url, body=data, headers=dict(req.headers.items()))
        except urllib3.exceptions.HTTPError as e:
            raise CliError(
                f"no vecledger server at {self.endpoint} ({_reason(e)}); start one with `vecledger serve` "
                "or pass --endpoint (or set VECLEDGER_ENDPOINT)"
            ) from None
        if r.status >= 400:
            try:
                message = str(orjson.loads(r.data).get("message", ""))
            except (orjson.JSONDecodeError, AttributeError):
                message = r.data.decode(errors="replace")[:200]
            raise ServerError(r.status, r.headers.get("x-amzn-ErrorType", f"HTTP {r.status}"), message)
        out: dict[str, Any] = loads_exact(r.data or b"{}")
        return out

    def call_retrying(self, operation: str, body: dict[str, Any], on_retry: Callable[[ServerError], None]) -> None:
        """Retry throttled (429/503) calls with jittered exponential backoff, for about a minute."""
        delay = 0.2
        for attempt in range(1, 13):
            try:
                self.call(operation, body)
                return
            except ServerError as e:
                if not e.retryable or attempt == 12:
                    raise
                on_retry(e)
            time.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, 10.0)

    def pages(self, operation: str, body: dict[str, Any], field: str) -> Iterator[list[dict[str, Any]]]:
        token: str | None = None
        while True:
            out = self.call(operation, body | ({"nextToken": token} if token else {}))
            yield list(out.get(field) or [])
            token = out.get("nextToken")
            if not token:
                return

    def index_status(self, bucket: str, index: str) -> dict[str, Any] | None:
        """The admin view of an index (vector count, seqs, type); None if this key may not see it."""
        try:
            return self.call("_vecledger/index-status", {"vectorBucketName": bucket, "indexName": index})
        except ServerError:
            return None


def _reason(e: Exception) -> str:
    text = str(getattr(e, "reason", None) or e)
    return "connection refused" if "refused" in text.lower() else text.split(": ")[-1][:120]


def connect(endpoint: str, region: str) -> Remote:
    """A client with the key from the environment: ``VECLEDGER_*`` first, then ``AWS_*``, then the
    development key ``vecledger serve --dev`` accepts."""
    env = os.environ
    for prefix in ("VECLEDGER_", "AWS_"):
        key, secret = env.get(f"{prefix}ACCESS_KEY_ID"), env.get(f"{prefix}SECRET_ACCESS_KEY")
        if key and secret:
            return Remote(endpoint, region, key, secret)
    return Remote(endpoint, region, DEV_ACCESS_KEY, DEV_SECRET_KEY)


def explain(e: ServerError, remote: Remote) -> CliError:
    """The server's error, with what to do about it."""
    if e.status == 403:
        return CliError(
            f"{remote.endpoint} refused the request: {e.message}. Set VECLEDGER_ACCESS_KEY_ID and "
            "VECLEDGER_SECRET_ACCESS_KEY to a key the server knows (a `vecledger serve --dev` server prints its "
            "development key, used when none is set)."
        )
    if e.code in ("NotFoundException", "NoSuchBucket", "NoSuchIndex"):
        return CliError(f"{e.message} (`vecledger ls` lists buckets, `vecledger ls --bucket B` their indexes)")
    return CliError(f"{e.code}: {e.message}")


class RateColumn(ProgressColumn):
    """Vectors per second, for imports and exports."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:,.0f} vectors/s", style="progress.data.speed")


def client_options(f: F) -> F:
    """``--endpoint`` and ``--region``, and server errors turned into advice."""

    @click.option(
        "--endpoint",
        envvar="VECLEDGER_ENDPOINT",
        default=DEFAULT_ENDPOINT,
        show_default=True,
        show_envvar=True,
        help="URL of a running vecledger server.",
    )
    @click.option(
        "--region",
        default=lambda: os.environ.get("VECLEDGER_REGION") or os.environ.get("AWS_REGION") or "us-east-1",
        show_default="VECLEDGER_REGION, AWS_REGION or us-east-1",
        help="Region the requests are signed for.",
    )
    @functools.wraps(f)
    def wrapper(endpoint: str, region: str, **kw: Any) -> Any:
        remote = connect(endpoint, region)
        try:
            return f(remote=remote, **kw)
        except ServerError as e:
            raise explain(e, remote) from None

    return wrapper  # type: ignore[return-value]


def bucket_index_options(f: F) -> F:
    f = click.option("--index", "-i", required=True, help="Index name.")(f)
    return click.option("--bucket", "-b", required=True, help="Vector bucket name.")(f)


def console() -> Console:
    """The terminal's width on a terminal; wide enough for whole tables in a pipe or a file."""
    out = Console()
    return out if out.is_terminal else Console(width=200)


def index_info(remote: Remote, bucket: str, index: str) -> dict[str, Any]:
    return dict(remote.call("GetIndex", {"vectorBucketName": bucket, "indexName": index})["index"])


# --- ls -------------------------------------------------------------------------------------------


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
