"""Server configuration: where the data lives, how to reach it, and who may sign requests.

Every setting can come from the command line or from a ``VECLEDGER_*`` environment variable.
Access keys map to accounts; the root credentials come from the environment, more accounts and
users from a JSON keys file::

    {"accounts": [{"account_id": "444455556666",
                   "keys": [{"access_key_id": "AK...", "secret_access_key": "...", "user": "alice"}]}]}
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from engine.settings import IndexTuning, S3Settings, Settings

MB = 1024 * 1024

ACCOUNT_ID = re.compile(r"^\d{12}$")
DEV_ACCESS_KEY = "vecledger"
DEV_SECRET_KEY = "vecledger-dev-secret"
DEV_ACCOUNT = "123456789012"


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    secret_access_key: str
    account: str
    user: str | None = None  # None: the account's root

    @property
    def principal(self) -> str:
        """The caller as it appears in events and policies."""
        return f"arn:aws:iam::{self.account}:" + (f"user/{self.user}" if self.user else "root")


@dataclass(frozen=True)
class ServerConfig:
    root: str = "./data"
    host: str = "127.0.0.1"
    port: int = 8000
    base_host: str | None = None  # host:port clients use; bucket hosts are <bucket>-<account>.<base_host>
    region: str = "us-east-1"
    no_auth: bool = False
    default_account: str = DEV_ACCOUNT
    credentials: dict[str, Credential] = field(default_factory=dict)
    engine: Settings = field(default_factory=Settings)
    clock_skew: float = 15 * 60
    max_body_bytes: int = 20 * 1024 * 1024  # larger bodies are refused unread
    body_timeout: float = 30.0  # seconds to receive a whole request body (slow clients are cut off)
    max_inflight_body_bytes: int = 512 * 1024 * 1024  # bodies held at once, over all requests
    tls_cert: str | None = None  # PEM files: serve HTTPS (aws:SecureTransport is then true)
    tls_key: str | None = None
    # Trust X-Forwarded-For/-Proto only when asked, and only from these addresses: otherwise any
    # client could write the source address the audit records and aws:SourceIp tests.
    proxy_headers: bool = False
    forwarded_allow_ips: str | None = None
    metrics_token: str | None = None  # /metrics needs "Authorization: Bearer <token>" when set

    @property
    def public_host(self) -> str:
        return self.base_host or f"{self.host}:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    def uvicorn_options(self) -> dict[str, object]:
        """The listener's settings, for ``vecledger serve`` and the test servers alike."""
        return {
            "ssl_certfile": self.tls_cert,
            "ssl_keyfile": self.tls_key,
            "proxy_headers": self.proxy_headers,
            "forwarded_allow_ips": self.forwarded_allow_ips or "",
            "server_header": False,
        }


def load_keys_file(path: str | Path) -> dict[str, Credential]:
    doc = json.loads(Path(path).read_text())
    creds: dict[str, Credential] = {}
    for acct in doc.get("accounts", []):
        account = str(acct["account_id"])
        if not ACCOUNT_ID.match(account):
            raise ValueError(f"keys file: account id {account!r} must be 12 digits")
        for k in acct.get("keys", []):
            cred = Credential(k["access_key_id"], k["secret_access_key"], account, k.get("user"))
            creds[cred.access_key_id] = cred
    return creds


def root_credential(env: dict[str, str] | None = None) -> Credential | None:
    env = dict(os.environ) if env is None else env
    key, secret = env.get("VECLEDGER_ACCESS_KEY_ID"), env.get("VECLEDGER_SECRET_ACCESS_KEY")
    if not key or not secret:
        return None
    account = env.get("VECLEDGER_ACCOUNT_ID", DEV_ACCOUNT)
    if not ACCOUNT_ID.match(account):
        raise ValueError("VECLEDGER_ACCOUNT_ID must be 12 digits")
    return Credential(key, secret, account)


def parse_size(text: str) -> int:
    """Bytes from ``"8G"``, ``"512MB"``, ``"64MiB"`` or a plain number of bytes (binary units)."""
    raw = text.strip().upper().removesuffix("IB").removesuffix("B")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(raw[-1:], 1)
    number = raw[:-1] if scale > 1 else raw
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"not a size: {text!r} (e.g. 8G, 512M, or bytes)") from None
    if value < 0:
        raise ValueError(f"a size is not negative: {text!r}")
    return int(value * scale)


def engine_settings(s3_endpoint: str | None, region: str, env: dict[str, str] | None = None) -> Settings:
    """Engine settings: S3 credentials from the usual AWS variables; index tuning from
    ``VECLEDGER_INDEX_TYPE``, ``VECLEDGER_BUILD_THRESHOLD``, ``VECLEDGER_NPROBES`` (the least
    an unfiltered query probes), ``VECLEDGER_RECALL_TARGET`` (what builds calibrate it up to) and
    ``VECLEDGER_REFINE_FACTOR``; the materializer lease time from ``VECLEDGER_LEASE_SECONDS``;
    retention from ``VECLEDGER_PITR_WINDOW``, ``VECLEDGER_VERSION_GRACE``,
    ``VECLEDGER_PRUNE_INTERVAL`` and ``VECLEDGER_LOG_RETENTION`` (seconds; unset keeps the log)
    and ``VECLEDGER_CATALOG_SNAPSHOT_EVERY`` (events); how old a catalog state data reads may use
    from ``VECLEDGER_CATALOG_STALENESS`` (seconds); when an idle materializer parks from
    ``VECLEDGER_MATERIALIZE_IDLE_EXIT`` (seconds) and when an idle index closes from
    ``VECLEDGER_INDEX_CLOSE_AFTER``, ``VECLEDGER_MAX_OPEN_INDEXES`` and ``VECLEDGER_OPEN_CACHE_MB``;
    each index's Lance caches from ``VECLEDGER_INDEX_CACHE_MB`` and ``VECLEDGER_METADATA_CACHE_MB``;
    the unfolded tail's budget per index from ``VECLEDGER_MAX_TAIL_MB``; on S3, the local copies of
    Lance files from ``VECLEDGER_CACHE_DIR`` and ``VECLEDGER_CACHE_SIZE`` (``8G``; ``0``: none)."""
    env = dict(os.environ) if env is None else env
    names = {"build_threshold": "BUILD_THRESHOLD", "nprobes": "NPROBES", "refine_factor": "REFINE_FACTOR"}
    tuning = IndexTuning.for_index_type(
        env.get("VECLEDGER_INDEX_TYPE", IndexTuning.index_type).upper(),
        **{field: int(env[f"VECLEDGER_{name}"]) for field, name in names.items() if f"VECLEDGER_{name}" in env},
        **({"recall_target": float(env["VECLEDGER_RECALL_TARGET"])} if "VECLEDGER_RECALL_TARGET" in env else {}),
    )
    return Settings(
        tuning=tuning,
        lease_seconds=float(env.get("VECLEDGER_LEASE_SECONDS", Settings.lease_seconds)),
        pitr_window=float(env.get("VECLEDGER_PITR_WINDOW", Settings.pitr_window)),
        version_grace=float(env.get("VECLEDGER_VERSION_GRACE", Settings.version_grace)),
        prune_interval=float(env.get("VECLEDGER_PRUNE_INTERVAL", Settings.prune_interval)),
        log_retention=float(env["VECLEDGER_LOG_RETENTION"]) if env.get("VECLEDGER_LOG_RETENTION") else None,
        index_cache_bytes=int(float(env.get("VECLEDGER_INDEX_CACHE_MB", Settings.index_cache_bytes / MB)) * MB),
        metadata_cache_bytes=int(
            float(env.get("VECLEDGER_METADATA_CACHE_MB", Settings.metadata_cache_bytes / MB)) * MB
        ),
        catalog_staleness=float(env.get("VECLEDGER_CATALOG_STALENESS", Settings.catalog_staleness)),
        catalog_snapshot_every=int(env.get("VECLEDGER_CATALOG_SNAPSHOT_EVERY", Settings.catalog_snapshot_every)),
        materialize_idle_exit=float(env.get("VECLEDGER_MATERIALIZE_IDLE_EXIT", Settings.materialize_idle_exit)),
        index_close_after=float(env.get("VECLEDGER_INDEX_CLOSE_AFTER", Settings.index_close_after)),
        max_open_indexes=int(env.get("VECLEDGER_MAX_OPEN_INDEXES", Settings.max_open_indexes)),
        open_cache_bytes=int(float(env.get("VECLEDGER_OPEN_CACHE_MB", Settings.open_cache_bytes / MB)) * MB),
        max_tail_bytes=int(float(env.get("VECLEDGER_MAX_TAIL_MB", Settings.max_tail_bytes / MB)) * MB),
        cache_dir=env.get("VECLEDGER_CACHE_DIR") or None,
        cache_bytes=parse_size(env.get("VECLEDGER_CACHE_SIZE") or str(Settings.cache_bytes)),
        s3=S3Settings(
            endpoint_url=s3_endpoint,
            region=env.get("VECLEDGER_S3_REGION", region),
            access_key_id=env.get("VECLEDGER_S3_ACCESS_KEY_ID") or env.get("AWS_ACCESS_KEY_ID"),
            secret_access_key=env.get("VECLEDGER_S3_SECRET_ACCESS_KEY") or env.get("AWS_SECRET_ACCESS_KEY"),
            session_token=env.get("AWS_SESSION_TOKEN"),
        ),
    )
