"""The signed client that the commands against a RUNNING server share (``ls`` and ``query`` in
``browse.py``, ``import`` in ``importer.py``, ``export`` in ``export.py``), their options and their
error advice.

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
from typing import Any, TypeVar

import click
import orjson
import urllib3
from rich.console import Console
from rich.progress import ProgressColumn, Task
from rich.text import Text

from api.config import DEV_ACCESS_KEY, DEV_SECRET_KEY
from engine.clock import Backoff
from engine.log.payload import loads_exact

DEFAULT_ENDPOINT = "http://127.0.0.1:8000"
RETRY_ATTEMPTS = 12
RETRY_BACKOFF = Backoff(0.2, cap=10.0, jitter=0.5)  # about a minute in all
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
        self._rng = random.Random()  # jitter for retries

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
        for attempt in range(RETRY_ATTEMPTS):
            try:
                self.call(operation, body)
                return
            except ServerError as e:
                if not e.retryable or attempt == RETRY_ATTEMPTS - 1:
                    raise
                on_retry(e)
            time.sleep(RETRY_BACKOFF.delay(attempt, self._rng))

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
