"""``vecledger retention``: how long an index keeps restore points, on a running server.

Restores stay exact to any seq whatever the window (the log is kept); the window bounds how much
log a restore replays, and so how long it takes, against how many Lance versions are kept.
"""

from __future__ import annotations

import re

import click

from api.cli.remote import Remote, bucket_index_options, client_options

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


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
@click.option("--default", "use_default", is_flag=True, help="Return to the server's default window.")
def retention(remote: Remote, bucket: str, index: str, pitr_window: str | None, use_default: bool) -> None:
    """Set how long an index keeps restore points (an audited change, by the bucket's owner)."""
    if (pitr_window is None) == (not use_default):
        raise click.UsageError("give --pitr-window DURATION or --default")
    body = {
        "vectorBucketName": bucket,
        "indexName": index,
        "pitrWindowSeconds": seconds(pitr_window) if pitr_window else None,
    }
    out = remote.call("_vecledger/retention", body)
    which = "the server's default" if out.get("default") else "its own"
    click.echo(f"{bucket}/{index} keeps restore points for {_shown(float(out['pitrWindowSeconds']))} ({which})")
