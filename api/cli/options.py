"""Options that more than one command takes, and the ``VECLEDGER_*`` environment they fall back to."""

from __future__ import annotations

import os
from typing import Any

import click


def env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"VECLEDGER_{name}", default)


def env_flag(name: str) -> Any:
    return lambda: env(name) == "1"


def env_float(name: str) -> Any:
    return lambda: float(v) if (v := env(name)) else None


def root_options(f: Any) -> Any:
    """``--root`` and ``--s3-endpoint``: where the data lives."""
    f = click.option(
        "--s3-endpoint",
        default=lambda: env("S3_ENDPOINT"),
        help="S3-compatible endpoint URL (MinIO, ...) [VECLEDGER_S3_ENDPOINT]",
    )(f)
    return click.option(
        "--root",
        default=lambda: env("ROOT", "./data"),
        help="A folder, or s3://bucket/prefix (default ./data) [VECLEDGER_ROOT]",
    )(f)
