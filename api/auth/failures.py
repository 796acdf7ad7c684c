"""Where a request that failed authentication is recorded, and how often.

The rule (docs/audit.md): a request signed with a known access key id but a wrong signature, a
stale date or a bad body hash is the key owner's business, as CloudTrail shows misuse of a key to
its account, so it goes into that account's audit under the key's principal. A request with an
unknown key or none names nobody trustworthy: the path it was sent to is the sender's choice, so
filing it under the account or bucket the path names would let anyone plant records in anyone's
audit. Those go to the operator's log (the server's log, ``vecledger.auth``) and to a metric, never
into an account's audit.

Both are rate-limited: a durable audit object per request would let one client with a known key id
(which is not a secret) fill the store, and a log line per request would fill the disk. Past the
rate, failures are counted and summarised once a second.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from engine.clock import Clock

log = logging.getLogger("vecledger.auth")

AUDIT_RATE = 5.0  # durable records a second per account, on average...
AUDIT_BURST = 50.0  # ...with bursts up to this many
LOG_INTERVAL = 1.0  # at most one operator log line a second (plus a summary of the rest)
MAX_RECORDED_PATH = 256


@dataclass
class _Bucket:
    tokens: float
    at: float


class FailureLimits:
    """Token buckets per account for audit records, and one for the operator's log lines."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._accounts: dict[str, _Bucket] = {}
        self._last_line = float("-inf")
        self.suppressed = 0

    def may_audit(self, account: str) -> bool:
        now = self.clock.now()
        if len(self._accounts) > 10_000:  # bounded: forget the idle ones (they are full again anyway)
            self._accounts = {a: b for a, b in self._accounts.items() if now - b.at < AUDIT_BURST / AUDIT_RATE}
        b = self._accounts.setdefault(account, _Bucket(AUDIT_BURST, now))
        b.tokens = min(AUDIT_BURST, b.tokens + (now - b.at) * AUDIT_RATE)
        b.at = now
        if b.tokens < 1:
            return False
        b.tokens -= 1
        return True

    def operator_log(self, message: str, source: str, path: str, key: str | None) -> None:
        now = self.clock.now()
        if now - self._last_line < LOG_INTERVAL:
            self.suppressed += 1
            return
        more = f" ({self.suppressed} more since the last line)" if self.suppressed else ""
        self.suppressed, self._last_line = 0, now
        log.warning(
            "refused unauthenticated request from %s to %s (access key %s): %s%s",
            source,
            recorded_path(path),
            key or "none",
            message,
            more,
        )


def recorded_path(path: str) -> str:
    """The request path as a record may hold it: bounded, so records stay small."""
    return path if len(path) <= MAX_RECORDED_PATH else path[:MAX_RECORDED_PATH] + "..."
