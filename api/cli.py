"""The ``vecledger`` command line: ``vecledger serve`` runs the API over a folder or S3 root."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from dataclasses import replace

from api.config import (
    DEV_ACCESS_KEY,
    DEV_ACCOUNT,
    DEV_SECRET_KEY,
    ServerConfig,
    engine_settings,
    load_keys_file,
    root_credential,
)

BANNER = """\
vecledger is serving {root}
  endpoint:  http://{host}
  account:   {account}
  access key {key} / secret {secret}

  import boto3
  s3v = boto3.client("s3vectors", endpoint_url="http://{host}", region_name="{region}",
                     aws_access_key_id="{key}", aws_secret_access_key="{secret}")
  s3v.create_vector_bucket(vectorBucketName="my-bucket")
"""


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"VECLEDGER_{name}", default)


def _float(value: str | None) -> float | None:
    return float(value) if value else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vecledger", description="A self-hosted vector bucket service.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the S3 Vectors and TOS Vectors APIs over HTTP")
    serve.add_argument(
        "--root", default=_env("ROOT", "./data"), help="a folder, or s3://bucket/prefix (default ./data)"
    )
    serve.add_argument("--s3-endpoint", default=_env("S3_ENDPOINT"), help="S3-compatible endpoint URL (MinIO, ...)")
    serve.add_argument("--host", default=_env("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(_env("PORT", "8000") or 8000))
    serve.add_argument(
        "--base-host",
        default=_env("BASE_HOST"),
        help="host:port clients use; bucket hosts are <bucket>-<account>.<base>",
    )
    serve.add_argument("--region", default=_env("REGION", "us-east-1"), help="region named in ARNs/TRNs")
    serve.add_argument("--keys-file", default=_env("KEYS_FILE"), help="JSON file of more accounts and access keys")
    serve.add_argument(
        "--no-auth",
        action="store_true",
        default=_env("NO_AUTH") == "1",
        help="accept unsigned requests (development only)",
    )
    serve.add_argument(
        "--dev", action="store_true", help="use well-known development credentials when none are configured"
    )
    serve.add_argument(
        "--write-requests-per-second",
        type=float,
        default=_float(_env("WRITE_REQUESTS_PER_SECOND")),
        help="default write quota per index (PutVectors/DeleteVectors requests); off by default",
    )
    serve.add_argument(
        "--write-vectors-per-second",
        type=float,
        default=_float(_env("WRITE_VECTORS_PER_SECOND")),
        help="default write quota per index (vectors put or deleted); off by default",
    )
    serve.add_argument(
        "--no-materialize",
        action="store_true",
        default=_env("NO_MATERIALIZE") == "1",
        help="serve the API only; a separate `vecledger materialize` (or another server) folds the logs",
    )
    m = sub.add_parser(
        "materialize",
        help="fold every index's log into its Lance dataset, without serving the API",
        description="Runs the materializers of every index under the root (one process per index at a "
        "time holds its lease; start several for failover) next to API servers started with --no-materialize.",
    )
    m.add_argument("--root", default=_env("ROOT", "./data"), help="a folder, or s3://bucket/prefix (default ./data)")
    m.add_argument("--s3-endpoint", default=_env("S3_ENDPOINT"), help="S3-compatible endpoint URL (MinIO, ...)")
    m.add_argument("--region", default=_env("REGION", "us-east-1"))
    from api import cli_admin

    cli_admin.add_commands(sub, _env)
    return parser


def server_config(args: argparse.Namespace) -> ServerConfig:
    creds = load_keys_file(args.keys_file) if args.keys_file else {}
    root = root_credential()
    if root is None and args.dev:
        os.environ.setdefault("VECLEDGER_ACCOUNT_ID", DEV_ACCOUNT)
        root = root_credential(
            {"VECLEDGER_ACCESS_KEY_ID": DEV_ACCESS_KEY, "VECLEDGER_SECRET_ACCESS_KEY": DEV_SECRET_KEY}
        )
    if root is not None:
        creds[root.access_key_id] = root
    if not creds and not args.no_auth:
        raise SystemExit(
            "vecledger: no credentials. Set VECLEDGER_ACCESS_KEY_ID, VECLEDGER_SECRET_ACCESS_KEY and "
            "VECLEDGER_ACCOUNT_ID, pass --keys-file, or --dev for development credentials."
        )
    return ServerConfig(
        root=args.root,
        host=args.host,
        port=args.port,
        base_host=args.base_host,
        region=args.region,
        no_auth=args.no_auth,
        default_account=root.account if root else DEV_ACCOUNT,
        credentials=creds,
        engine=replace(
            engine_settings(args.s3_endpoint, args.region),
            write_requests_per_second=args.write_requests_per_second,
            write_vectors_per_second=args.write_vectors_per_second,
            run_materializers=not args.no_materialize,
        ),
    )


def serve(config: ServerConfig) -> None:
    import uvicorn

    from api.app import create_app

    if config.no_auth:
        logging.getLogger("vecledger").warning(
            "!!! --no-auth: every request is accepted unsigned, as account %s. Never expose this server. !!!",
            config.default_account,
        )
    root = next(iter(config.credentials.values()), None)
    print(
        BANNER.format(
            root=config.root,
            host=config.public_host,
            account=root.account if root else config.default_account,
            key=root.access_key_id if root else "(any)",
            secret=root.secret_access_key if root else "(any)",
            region=config.region,
        ),
        flush=True,
    )
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="warning")


def materialize(args: argparse.Namespace) -> None:
    """Fold until interrupted; the engine follows the catalog for indexes created meanwhile."""
    import anyio

    from engine.engine import Engine

    async def run() -> None:
        async with Engine.open(args.root, engine_settings(args.s3_endpoint, args.region)) as engine:
            logging.getLogger("vecledger").info("materializing %s as %s", args.root, engine.holder)
            await anyio.sleep_forever()

    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(run)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        serve(server_config(args))
    elif args.command == "materialize":
        materialize(args)
    elif args.command in ("restore", "replay", "audit"):
        from api import cli_admin

        cli_admin.run(args)
    else:  # pragma: no cover - argparse rejects unknown commands
        sys.exit(2)
