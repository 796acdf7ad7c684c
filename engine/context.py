"""Who asked for a mutation. Each field lands in the header of the event the request appends."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    principal: str
    account: str
    source: str = ""
    request_id: str = ""
    dialect: str = "engine"

    @classmethod
    def system(cls, account: str = "000000000000") -> RequestContext:
        """The engine acting on its own behalf (tools, tests, recovery)."""
        return cls(principal="system", account=account, dialect="engine")
