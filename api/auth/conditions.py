"""Policy ``Condition`` blocks, evaluated as IAM does, over the few global keys a self-hosted
service can know: who signed (``aws:PrincipalArn``, ``aws:PrincipalAccount``, ``aws:username``,
``aws:PrincipalType``), from where and how (``aws:SourceIp``, ``aws:SecureTransport``), when
(``aws:CurrentTime``, ``aws:EpochTime``) and where to (``aws:RequestedRegion``).

A condition that names a key or an operator this server cannot evaluate is refused when the
policy is put, never silently ignored: a Deny conditioned on an unknown key that quietly never
applied would be a hole. IAM's rules, as documented:
- operators AND together, keys within an operator AND together, values of one key OR together;
- a negated operator (``StringNotEquals``, ``NotIpAddress``, ...) matches when no value matches;
- a key absent from the request fails a condition, except negated operators and ``...IfExists``
  (which then match) and ``Null``, which tests exactly that;
- ``ForAnyValue:``/``ForAllValues:`` prefixes are accepted: every key here has one value, so
  they reduce to the plain operator (``ForAllValues`` also matches an absent key).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from api.errors import validation

# The key's type decides which operator families make sense for it.
KEYS: dict[str, str] = {
    "aws:sourceip": "ip",
    "aws:securetransport": "bool",
    "aws:principalarn": "arn",
    "aws:principalaccount": "string",
    "aws:principaltype": "string",
    "aws:username": "string",
    "aws:currenttime": "date",
    "aws:epochtime": "date",
    "aws:requestedregion": "string",
}
_FAMILY_TYPES = {
    "String": {"string", "arn"},
    "Arn": {"arn"},
    "Numeric": {"date"},  # aws:EpochTime compares as a number as well
    "Date": {"date"},
    "Bool": {"bool"},
    "Ip": {"ip"},
    "Null": set(KEYS.values()),
}


@dataclass(frozen=True)
class RequestFacts:
    """What the conditions may ask about one request."""

    source_ip: str
    secure: bool
    principal_arn: str
    account: str
    user: str | None
    now: float
    region: str

    def value(self, key: str) -> str | float | bool | None:
        return {
            "aws:sourceip": self.source_ip or None,
            "aws:securetransport": self.secure,
            "aws:principalarn": self.principal_arn,
            "aws:principalaccount": self.account,
            "aws:principaltype": "User" if self.user else "Account",
            "aws:username": self.user,
            "aws:currenttime": self.now,
            "aws:epochtime": self.now,
            "aws:requestedregion": self.region,
        }[key]


def _like(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.S)


def _date(v: Any) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        if re.fullmatch(r"\d+(\.\d+)?", v):
            return float(v)
        try:
            t = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()
    raise ValueError(f"{v!r} is not a date (ISO 8601 or epoch seconds)")


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    raise ValueError(f"{v!r} is not true or false")


def _text(v: Any) -> str:
    if isinstance(v, (str, int, float)) and not isinstance(v, bool):
        return str(v)
    raise ValueError(f"{v!r} is not a string")


Test = Callable[[Any, Any], bool]  # (request value, policy value) -> match
# operator -> (family, how a policy value is read, the test, negated)
_OPERATORS: dict[str, tuple[str, Callable[[Any], Any], Test, bool]] = {
    "StringEquals": ("String", _text, lambda a, b: a == b, False),
    "StringNotEquals": ("String", _text, lambda a, b: a == b, True),
    "StringEqualsIgnoreCase": ("String", _text, lambda a, b: a.lower() == b.lower(), False),
    "StringNotEqualsIgnoreCase": ("String", _text, lambda a, b: a.lower() == b.lower(), True),
    "StringLike": ("String", lambda v: _like(_text(v)), lambda a, b: bool(b.fullmatch(a)), False),
    "StringNotLike": ("String", lambda v: _like(_text(v)), lambda a, b: bool(b.fullmatch(a)), True),
    "ArnEquals": ("Arn", _text, lambda a, b: a == b, False),
    "ArnNotEquals": ("Arn", _text, lambda a, b: a == b, True),
    "ArnLike": ("Arn", lambda v: _like(_text(v)), lambda a, b: bool(b.fullmatch(a)), False),
    "ArnNotLike": ("Arn", lambda v: _like(_text(v)), lambda a, b: bool(b.fullmatch(a)), True),
    "NumericEquals": ("Numeric", _date, lambda a, b: a == b, False),
    "NumericNotEquals": ("Numeric", _date, lambda a, b: a == b, True),
    "NumericLessThan": ("Numeric", _date, lambda a, b: a < b, False),
    "NumericLessThanEquals": ("Numeric", _date, lambda a, b: a <= b, False),
    "NumericGreaterThan": ("Numeric", _date, lambda a, b: a > b, False),
    "NumericGreaterThanEquals": ("Numeric", _date, lambda a, b: a >= b, False),
    "DateEquals": ("Date", _date, lambda a, b: a == b, False),
    "DateNotEquals": ("Date", _date, lambda a, b: a == b, True),
    "DateLessThan": ("Date", _date, lambda a, b: a < b, False),
    "DateLessThanEquals": ("Date", _date, lambda a, b: a <= b, False),
    "DateGreaterThan": ("Date", _date, lambda a, b: a > b, False),
    "DateGreaterThanEquals": ("Date", _date, lambda a, b: a >= b, False),
    "Bool": ("Bool", _bool, lambda a, b: a == b, False),
    "IpAddress": ("Ip", lambda v: ipaddress.ip_network(_text(v), strict=False), lambda a, b: a in b, False),
    "NotIpAddress": ("Ip", lambda v: ipaddress.ip_network(_text(v), strict=False), lambda a, b: a in b, True),
    "Null": ("Null", _bool, lambda a, b: a == b, False),
}


@dataclass(frozen=True)
class Clause:
    """One operator on one key, with its (parsed) values."""

    operator: str
    key: str
    values: tuple[Any, ...]
    if_exists: bool
    for_all: bool

    def holds(self, facts: RequestFacts) -> bool:
        family, _, test, negated = _OPERATORS[self.operator]
        value: Any = facts.value(self.key)
        if family == "Null":
            return any(test(value is None, v) for v in self.values)
        if value is None:
            return self.if_exists or self.for_all or negated
        if family == "Ip":
            try:
                value = ipaddress.ip_address(str(value))
            except ValueError:
                return negated
        matched = any(test(value, v) for v in self.values)
        return not matched if negated else matched


def parse(block: Any) -> tuple[Clause, ...]:
    """Check a statement's ``Condition`` and read its values once, at put time."""
    if not isinstance(block, dict) or not block:
        raise validation("Invalid policy: Condition must be a non-empty object", "policy")
    clauses = []
    for raw_operator, keys in block.items():
        name = str(raw_operator)
        prefix, _, operator = name.rpartition(":")
        if prefix not in ("", "ForAnyValue", "ForAllValues"):
            raise validation(f"Invalid policy: unsupported condition operator {name!r}", "policy")
        if_exists = operator.endswith("IfExists") and operator != "IfExists"
        operator = operator.removesuffix("IfExists") if if_exists else operator
        if operator not in _OPERATORS or (if_exists and operator == "Null"):
            raise validation(f"Invalid policy: unsupported condition operator {name!r}", "policy")
        if not isinstance(keys, dict) or not keys:
            raise validation(f"Invalid policy: {name} must map condition keys to values", "policy")
        family, read, _, _ = _OPERATORS[operator]
        for raw_key, raw_values in keys.items():
            key = str(raw_key).lower()
            if key not in KEYS:
                raise validation(f"Invalid policy: unsupported condition key {raw_key!r}", "policy")
            if KEYS[key] not in _FAMILY_TYPES[family] or (family == "Numeric" and key != "aws:epochtime"):
                raise validation(f"Invalid policy: {name} cannot be used with the condition key {raw_key}", "policy")
            items = raw_values if isinstance(raw_values, list) else [raw_values]
            if not items:
                raise validation(f"Invalid policy: {name} {raw_key} needs at least one value", "policy")
            try:
                values = tuple(read(v) for v in items)
            except ValueError as e:
                raise validation(f"Invalid policy: {name} {raw_key}: {e}", "policy") from None
            clauses.append(Clause(operator, key, values, if_exists, prefix == "ForAllValues"))
    return tuple(clauses)


def hold(clauses: tuple[Clause, ...], facts: RequestFacts) -> bool:
    return all(c.holds(facts) for c in clauses)
