"""``vecledger serve`` (the API) and ``vecledger materialize`` (folding only)."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
from dataclasses import replace
from typing import Any

import click

from api.cli.options import env, env_flag, env_float, root_options
from api.config import (
    DEV_ACCESS_KEY,
    DEV_ACCOUNT,
    DEV_SECRET_KEY,
    ServerConfig,
    engine_settings,
    load_keys_file,
    parse_size,
    root_credential,
)
from engine.settings import Settings

BANNER = """\
vecledger is serving {root}
  endpoint:  {scheme}://{host}
  account:   {account}
  access key {key} / secret {secret}

  import boto3
  s3v = boto3.client("s3vectors", endpoint_url="{scheme}://{host}", region_name="{region}",
                     aws_access_key_id="{key}", aws_secret_access_key="{secret}")
  s3v.create_vector_bucket(vectorBucketName="my-bucket")
"""


@click.command()
@root_options
@click.option("--host", default=lambda: env("HOST", "127.0.0.1"), help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=lambda: int(env("PORT", "8000") or 8000), help="Port (default 8000).")
@click.option(
    "--base-host",
    default=lambda: env("BASE_HOST"),
    help="host:port clients use; bucket hosts are <bucket>-<account>.<base>.",
)
@click.option(
    "--region", default=lambda: env("REGION", "us-east-1"), help="Region named in ARNs/TRNs (default us-east-1)."
)
@click.option("--keys-file", default=lambda: env("KEYS_FILE"), help="JSON file of more accounts and access keys.")
@click.option(
    "--no-auth", is_flag=True, default=env_flag("NO_AUTH"), help="Accept unsigned requests (development only)."
)
@click.option("--dev", is_flag=True, help="Use well-known development credentials when none are configured.")
@click.option(
    "--write-requests-per-second",
    type=float,
    default=env_float("WRITE_REQUESTS_PER_SECOND"),
    help="Default write quota per index (PutVectors/DeleteVectors requests); off by default.",
)
@click.option(
    "--write-vectors-per-second",
    type=float,
    default=env_float("WRITE_VECTORS_PER_SECOND"),
    help="Default write quota per index (vectors put or deleted); off by default.",
)
@click.option(
    "--no-materialize",
    is_flag=True,
    default=env_flag("NO_MATERIALIZE"),
    help="Serve the API only; a separate `vecledger materialize` (or another server) folds the logs.",
)
@click.option("--tls-cert", default=lambda: env("TLS_CERT"), help="PEM certificate (chain): serve HTTPS.")
@click.option("--tls-key", default=lambda: env("TLS_KEY"), help="PEM private key of --tls-cert.")
@click.option(
    "--proxy-headers",
    is_flag=True,
    default=env_flag("PROXY_HEADERS"),
    help="Take the client address and scheme from X-Forwarded-For/-Proto (behind a proxy); off by default.",
)
@click.option(
    "--forwarded-allow-ips",
    default=lambda: env("FORWARDED_ALLOW_IPS"),
    help="Comma-separated proxy addresses whose X-Forwarded-* headers --proxy-headers trusts.",
)
@click.option(
    "--metrics-token",
    default=lambda: env("METRICS_TOKEN"),
    help="Require 'Authorization: Bearer <token>' on /metrics, which then labels series per index.",
)
@click.option(
    "--cache-dir",
    default=lambda: env("CACHE_DIR"),
    help="On S3: keep copies of the Lance files served indexes read here (default: a temporary "
    "folder of the process's own) [VECLEDGER_CACHE_DIR]",
)
@click.option(
    "--cache-size",
    default=lambda: env("CACHE_SIZE", "8G"),
    help="The copies' budget, e.g. 8G or 512M; 0: read S3 directly (default 8G) [VECLEDGER_CACHE_SIZE]",
)
def serve(**options: Any) -> None:
    """Serve the S3 Vectors, OSS Vectors and TOS Vectors APIs over HTTP.

    Credentials come from VECLEDGER_ACCESS_KEY_ID, VECLEDGER_SECRET_ACCESS_KEY and VECLEDGER_ACCOUNT_ID,
    or --keys-file; --dev uses the well-known development key (printed at start). The options also
    read VECLEDGER_<OPTION> (e.g. VECLEDGER_PORT, VECLEDGER_NO_AUTH=1).
    """
    run_server(server_config(**options))


def server_config(
    *,
    root: str,
    s3_endpoint: str | None,
    host: str,
    port: int,
    base_host: str | None,
    region: str,
    keys_file: str | None,
    no_auth: bool,
    dev: bool,
    write_requests_per_second: float | None,
    write_vectors_per_second: float | None,
    no_materialize: bool,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    proxy_headers: bool = False,
    forwarded_allow_ips: str | None = None,
    metrics_token: str | None = None,
    cache_dir: str | None = None,
    cache_size: str | None = None,
) -> ServerConfig:
    creds = load_keys_file(keys_file) if keys_file else {}
    cred = root_credential()
    if cred is None and dev:
        os.environ.setdefault("VECLEDGER_ACCOUNT_ID", DEV_ACCOUNT)
        cred = root_credential(
            {"VECLEDGER_ACCESS_KEY_ID": DEV_ACCESS_KEY, "VECLEDGER_SECRET_ACCESS_KEY": DEV_SECRET_KEY}
        )
    if cred is not None:
        creds[cred.access_key_id] = cred
    if not creds and not no_auth:
        raise SystemExit(
            "vecledger: no credentials. Set VECLEDGER_ACCESS_KEY_ID, VECLEDGER_SECRET_ACCESS_KEY and "
            "VECLEDGER_ACCOUNT_ID, pass --keys-file, or --dev for development credentials."
        )
    if bool(tls_cert) != bool(tls_key):
        raise SystemExit("vecledger: --tls-cert and --tls-key go together")
    if proxy_headers and not forwarded_allow_ips:
        raise SystemExit("vecledger: --proxy-headers needs --forwarded-allow-ips (the proxies to trust)")
    return ServerConfig(
        root=root,
        host=host,
        port=port,
        base_host=base_host,
        region=region,
        no_auth=no_auth,
        default_account=cred.account if cred else DEV_ACCOUNT,
        credentials=creds,
        tls_cert=tls_cert,
        tls_key=tls_key,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
        metrics_token=metrics_token,
        engine=_with_cache(
            replace(
                engine_settings(s3_endpoint, region),
                write_requests_per_second=write_requests_per_second,
                write_vectors_per_second=write_vectors_per_second,
                run_materializers=not no_materialize,
            ),
            cache_dir,
            cache_size,
        ),
    )


def _with_cache(settings: Settings, cache_dir: str | None, cache_size: str | None) -> Settings:
    """``--cache-dir`` and ``--cache-size`` over the settings the environment gave."""
    if cache_dir:
        settings = replace(settings, cache_dir=cache_dir)
    if cache_size:
        settings = replace(settings, cache_bytes=_size(cache_size))
    return settings


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as e:
        raise SystemExit(f"vecledger: --cache-size: {e}") from None


def banner(config: ServerConfig) -> str:
    """What ``serve`` prints at start. A secret is shown only when it is the well-known development
    one (``--dev``): a configured secret never reaches a terminal, a log file or a CI transcript."""
    root = next(iter(config.credentials.values()), None)
    if root is None:
        secret = "(any)"
    elif root.secret_access_key == DEV_SECRET_KEY:
        secret = root.secret_access_key
    else:
        secret = "(the one configured; not shown)"
    return BANNER.format(
        root=config.root,
        host=config.public_host,
        account=root.account if root else config.default_account,
        key=root.access_key_id if root else "(any)",
        secret=secret,
        region=config.region,
        scheme=config.scheme,
    )


def run_server(config: ServerConfig) -> None:
    import uvicorn

    from api.app import create_app

    if config.no_auth:
        logging.getLogger("vecledger").warning(
            "!!! --no-auth: every request is accepted unsigned, as account %s. Never expose this server. !!!",
            config.default_account,
        )
    print(banner(config), flush=True)
    app = create_app(config)
    tune_gc()
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", **config.uvicorn_options())  # type: ignore[arg-type]


def tune_gc() -> None:
    """Collect garbage less often than CPython's default: a 500-vector put allocates tens of
    thousands of objects (a young collection every 700 allocations), and each full collection
    walks every row the in-memory tails hold. Measured (three runs each, 400k vectors, 4 clients):
    19,600 -> 24,100 vectors/s; ``gc.freeze()`` on top of it gained nothing."""
    gc.set_threshold(10_000, 10, 10)


@click.command()
@root_options
@click.option("--region", default=lambda: env("REGION", "us-east-1"), help="Region (default us-east-1).")
def materialize(root: str, s3_endpoint: str | None, region: str) -> None:
    """Fold every index's log into its Lance dataset, without serving the API.

    Runs the materializers of every index under the root (one process per index at a time holds its
    lease; start several for failover) next to API servers started with --no-materialize. Runs until
    interrupted; indexes created meanwhile are picked up.
    """
    import anyio

    from engine import Engine

    async def run() -> None:
        # It answers no reads: no local copies of Lance files (the cache tier is for serving).
        settings = replace(engine_settings(s3_endpoint, region), cache_bytes=0)
        async with Engine.open(root, settings) as engine:
            logging.getLogger("vecledger").info("materializing %s as %s", root, engine.holder)
            await anyio.sleep_forever()

    tune_gc()
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(run)
