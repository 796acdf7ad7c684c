"""Bucket policies: IAM-style JSON, checked at put time, evaluated on every cross-account request.

One model for every dialect: actions are matched on the operation name whatever the service prefix
(``s3vectors:``, ``tosvectors:``, ``oss:``, with OSS's own names as aliases), resources on the ARN,
TRN and ``acs:ossvector`` spellings of the resource, and principals on account ids, root and user
ARNs/TRNs/RAM names, or ``*``. An explicit Deny wins over any Allow. ``NotPrincipal``,
``NotAction`` and ``NotResource`` invert their element, as in IAM; ``Condition`` is evaluated by
``conditions`` over the request's facts, and a key or operator it cannot evaluate is refused when
the policy is put. A document is at most 20 KB, AWS's limit for a vector bucket policy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from api.auth import conditions
from api.auth.conditions import RequestFacts
from api.errors import validation

SERVICES = ("s3vectors", "tosvectors", "oss")
VERSIONS = ("2012-10-17", "2008-10-17", "2025-12-01", "1")
_PRINCIPAL = re.compile(r"^(?:arn:aws:iam|trn:iam|acs:ram)::(\d+):(root|user/[\w+=,.@/-]+)$")
_TOS_USER = re.compile(r"(\d+)/([\w+=,.@-]+)")
# OSS names some operations differently; a pattern may use either name.
ALIASES: dict[str, tuple[str, ...]] = {
    "CreateVectorBucket": ("PutVectorBucket",),
    "CreateIndex": ("PutVectorIndex",),
    "GetIndex": ("GetVectorIndex",),
    "ListIndexes": ("ListVectorIndexes",),
    "DeleteIndex": ("DeleteVectorIndex",),
    "PutVectorBucketPolicy": ("PutBucketPolicy",),
    "GetVectorBucketPolicy": ("GetBucketPolicy",),
    "DeleteVectorBucketPolicy": ("DeleteBucketPolicy",),
}
_ALLOWED_KEYS = {
    *("Sid", "Effect", "Condition"),
    *("Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource"),
}
MAX_POLICY_BYTES = 20 * 1024


@dataclass(frozen=True)
class Statement:
    effect: str
    principals: tuple[str, ...]  # "*", "<account>", or "<account>:user/<name>"
    actions: tuple[str, ...]  # lower-cased "service:Operation" patterns
    resources: tuple[str, ...]
    conditions: tuple[conditions.Clause, ...] = ()
    # Which of Principal, Action and Resource the statement names by exclusion (Not...).
    not_principal: bool = False
    not_action: bool = False
    not_resource: bool = False

    def applies(
        self, account: str, user: str | None, operation: str, resources: tuple[str, ...], facts: RequestFacts
    ) -> bool:
        return (
            _principal_matches(self.principals, account, user) != self.not_principal
            and _action_matches(self.actions, operation) != self.not_action
            and _resource_matches(self.resources, resources) != self.not_resource
            and conditions.hold(self.conditions, facts)
        )


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]


def _list(value: Any, what: str) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(i, str) and i for i in items):
        raise validation(f"Invalid policy: {what} must be a non-empty string or list of strings", "policy")
    return items


def _principal(value: Any) -> tuple[str, ...]:
    if value == "*" or value == ["*"]:
        return ("*",)
    if isinstance(value, dict):
        if set(value) - {"AWS", "TRN"} or not value:
            raise validation("Invalid policy: Principal may name only AWS or TRN principals", "policy")
        items = [p for v in value.values() for p in _list(v, "Principal")]
    else:
        items = _list(value, "Principal")
    out = []
    for p in items:
        if p == "*" or re.fullmatch(r"\d+", p):
            out.append(p)
            continue
        if m := _TOS_USER.fullmatch(p):  # TOS's documented "<account>/<user>"
            out.append(f"{m.group(1)}:user/{m.group(2)}")
            continue
        m = _PRINCIPAL.match(p)
        if not m:
            raise validation(f"Invalid policy: unrecognised principal {p!r}", "policy")
        out.append(m.group(1) if m.group(2) == "root" else f"{m.group(1)}:{m.group(2)}")
    return tuple(out)


def _one_of(s: dict[str, Any], name: str) -> tuple[Any, bool]:
    """A statement's ``name`` or ``Not<name>`` (exactly one of them), and whether it was the Not."""
    if (name in s) == (f"Not{name}" in s):
        raise validation(f"Invalid policy: each statement needs exactly one of {name} and Not{name}", "policy")
    return (s[name], False) if name in s else (s[f"Not{name}"], True)


def _statement(s: dict[str, Any]) -> Statement:
    extra = set(s) - _ALLOWED_KEYS
    if extra:
        raise validation(f"Invalid policy: unsupported statement element {sorted(extra)[0]}", "policy")
    if s.get("Effect") not in ("Allow", "Deny"):
        raise validation("Invalid policy: Effect must be Allow or Deny", "policy")
    principal, not_principal = _one_of(s, "Principal")
    action, not_action = _one_of(s, "Action")
    resource, not_resource = _one_of(s, "Resource")
    actions = _list(action, "Action")
    for a in actions:
        service, _, op = a.partition(":")
        if a != "*" and (service not in SERVICES or not op):
            raise validation(f"Invalid policy: unknown action {a!r}", "policy")
    return Statement(
        s["Effect"],
        _principal(principal),
        tuple(a.lower() for a in actions),
        tuple(_list(resource, "Resource")),
        conditions.parse(s["Condition"]) if "Condition" in s else (),
        not_principal,
        not_action,
        not_resource,
    )


def parse(text: str) -> Policy:
    """Parse and check a policy document; raises a ValidationException-kind error if malformed."""
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise validation(f"Invalid policy: the document exceeds {MAX_POLICY_BYTES} bytes", "policy")
    try:
        doc = json.loads(text)
    except ValueError:
        raise validation("Invalid policy: not valid JSON", "policy") from None
    if not isinstance(doc, dict) or doc.get("Version") not in VERSIONS:
        raise validation(f"Invalid policy: Version must be one of {', '.join(VERSIONS)}", "policy")
    if set(doc) - {"Version", "Id", "Statement"}:
        raise validation("Invalid policy: unknown top-level element", "policy")
    raw = doc.get("Statement")
    raw = raw if isinstance(raw, list) else [raw]
    if not raw or not all(isinstance(s, dict) for s in raw):
        raise validation("Invalid policy: Statement must be an object or a non-empty list of objects", "policy")
    return Policy(tuple(_statement(s) for s in raw))


def _principal_matches(patterns: tuple[str, ...], account: str, user: str | None) -> bool:
    me = {"*", account} | ({f"{account}:user/{user}"} if user else set())
    return any(p in me for p in patterns)


def _action_matches(patterns: tuple[str, ...], operation: str) -> bool:
    names = [n.lower() for n in (operation, *ALIASES.get(operation, ()))]
    return any(p == "*" or fnmatchcase(n, p.partition(":")[2]) for p in patterns for n in names)


def _resource_matches(patterns: tuple[str, ...], names: tuple[str, ...]) -> bool:
    return any(fnmatchcase(n, p) for p in patterns for n in names)


def decide(
    policy: Policy | None,
    account: str,
    user: str | None,
    operation: str,
    resources: tuple[str, ...],
    facts: RequestFacts,
) -> str:
    """'deny', 'allow' or 'none' (no statement applies) for one action on one resource."""
    if policy is None:
        return "none"
    verdict = "none"
    for s in policy.statements:
        if s.applies(account, user, operation, resources, facts):
            if s.effect == "Deny":
                return "deny"
            verdict = "allow"
    return verdict
