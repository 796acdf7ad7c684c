"""The three wire dialects, and how a request is told apart: one module per dialect."""

from __future__ import annotations

import re

from api.dialects.base import Dialect
from api.dialects.oss import OSS
from api.dialects.s3 import S3
from api.dialects.tos import TOS

__all__ = ["ALL_DIALECTS", "OSS", "S3", "TOS", "Dialect", "detect", "parse_host"]

ALL_DIALECTS = (S3, TOS, OSS)


def detect(headers: dict[str, str]) -> Dialect:
    """TOS always sends x-tos-content-sha256, OSS x-oss-date (signed or not); the rest is S3."""
    auth = headers.get("authorization", "")
    if "x-tos-content-sha256" in headers or auth.startswith("TOS4-"):
        return TOS
    if "x-oss-date" in headers or "x-oss-content-sha256" in headers or auth.startswith("OSS4-"):
        return OSS
    return S3


def parse_host(host: str, base: str) -> tuple[str, str] | None:
    """(bucket, account) from ``<bucket>-<account>.<base>``; None for the bare base host.

    The label is split at its last '-': account ids are all digits, bucket names may hold '-'.
    """
    host = host.lower()
    base = base.lower()
    if host == base or not host.endswith("." + base):
        return None
    label = host[: -len(base) - 1]
    m = re.fullmatch(r"(.+)-(\d+)", label)
    return (m.group(1), m.group(2)) if m else None
