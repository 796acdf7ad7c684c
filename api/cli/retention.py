"""``vecledger retention``: how long an index keeps restore points and its log, on a running server.

Restores stay exact to any seq inside the log whatever the PITR window; the window bounds how much
log a restore replays, and so how long it takes, against how many Lance versions are kept. The log
is kept forever unless a log retention says otherwise: then restores and audits reach back only
that far (docs/recovery.md).
"""

from __future__ import annotations

import re
from typing import Any

import click

from api.cli.remote import Remote, bucket_index_options, client_options

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
FOREVER = ("forever", "never")


def seconds(text: str) -> float:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w`` or plain seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise click.BadParameter(f"{text!r} is not a duration such as 12h, 7d or 3600")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def _shown(s: float) -> str:
    for unit in ("w", "d", "h", "m"):
        if s >= _UNITS[unit] and s % _UNITS[unit] == 0:
            return f"{int(s // _UNITS[unit])}{unit}"
    return f"{s:g}s"


@click.command("retention")
@client_options
@bucket_index_options
@click.option("--pitr-window", help="Keep restore points this long: 12h, 7d, 2w ... (default: the server's).")
@click.option(
    "--log-retention",
    help="Drop log objects older than this (30d, 52w ...) once a restore point covers them; "
    "'forever' keeps the log (the server's default unless it says otherwise).",
)
@click.option("--default", "use_default", is_flag=True, help="Return both settings to the server's defaults.")
def retention(
    remote: Remote, bucket: str, index: str, pitr_window: str | None, log_retention: str | None, use_default: bool
) -> None:
    """Set how long an index keeps restore points and its log (an audited change, by the bucket's
    owner). A setting not given stays as it is."""
    if use_default == (pitr_window is not None or log_retention is not None):
        raise click.UsageError("give --pitr-window and/or --log-retention, or --default")
    body: dict[str, Any] = {"vectorBucketName": bucket, "indexName": index}
    if use_default:
        body |= {"pitrWindowSeconds": None, "logRetentionSeconds": None}
    if pitr_window is not None:
        body["pitrWindowSeconds"] = seconds(pitr_window)
    if log_retention is not None:
        body["logRetentionSeconds"] = 0 if log_retention.strip().lower() in FOREVER else seconds(log_retention)
    out = remote.call("_vecledger/retention", body)

    def whose(default: bool) -> str:
        return "the server's default" if default else "its own"

    log_kept = out.get("logRetentionSeconds")
    click.echo(
        f"{bucket}/{index} keeps restore points for {_shown(float(out['pitrWindowSeconds']))} "
        f"({whose(out['pitrWindowDefault'])}) and its log "
        + (f"for {_shown(float(log_kept))}" if log_kept else "forever")
        + f" ({whose(out['logRetentionDefault'])})"
    )
