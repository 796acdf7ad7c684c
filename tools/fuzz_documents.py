"""The documents inside requests, fuzzed by shape rather than by schema: metadata filters (sent in
QueryVectors) and bucket policies (sent in PutVectorBucketPolicy, then evaluated by a request).

The OpenAPI schema says only that a filter is "an object" and a policy "a string", so schema-driven
fuzzing (``tools.fuzz``) never reaches the filter compiler or the policy parser with anything but
junk. These strategies build documents that are nearly right (known operators, keys, condition
blocks) with hostile parts mixed in: huge and non-finite numbers, long ``$in`` lists, deep nesting,
unknown operators and condition keys, wrong types, oversized documents.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import strategies as st

FIELD_OPS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$regex", "$near"]
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([10**400, -(10**400), 2**63, -(2**63) - 1, math.nan, math.inf]),
)
SCALARS = st.one_of(
    st.text(max_size=12), NUMBERS, st.booleans(), st.none(), st.sampled_from(["", "a" * 5000, "\x00", "'; DROP"])
)
KEYS = st.sampled_from(["m", "genre", "year", "", "$and", "a.b", "ключ", "x" * 70, "$m"])


def _field(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    lists = st.lists(SCALARS, max_size=6) | st.integers(0, 3000).map(lambda n: list(range(n)))
    return st.one_of(
        SCALARS,
        st.dictionaries(st.sampled_from(FIELD_OPS), st.one_of(SCALARS, lists, value), min_size=1, max_size=3),
    )


FILTERS: st.SearchStrategy[Any] = st.recursive(
    st.dictionaries(KEYS, _field(SCALARS), min_size=1, max_size=3),
    lambda inner: st.one_of(
        st.dictionaries(st.sampled_from(["$and", "$or", "$not"]), st.lists(inner, max_size=4) | inner, min_size=1),
        st.dictionaries(KEYS, _field(inner), min_size=1, max_size=3),
    ),
    max_leaves=30,
) | st.integers(1, 120).map(lambda d: json.loads('{"$and":[' * d + '{"m":1}' + "]}" * d))

CONDITION_OPERATORS = [
    "StringEquals",
    "StringNotEquals",
    "StringLike",
    "StringEqualsIgnoreCase",
    "ArnLike",
    "ArnNotEquals",
    "IpAddress",
    "NotIpAddress",
    "Bool",
    "DateLessThan",
    "DateGreaterThanEquals",
    "NumericLessThan",
    "Null",
    "StringEqualsIfExists",
    "ForAnyValue:StringLike",
    "ForAllValues:StringEquals",
    "StringMaybe",
    "NullIfExists",
]
CONDITION_KEYS = [
    "aws:SourceIp",
    "aws:SecureTransport",
    "aws:PrincipalArn",
    "aws:PrincipalAccount",
    "aws:username",
    "aws:CurrentTime",
    "aws:EpochTime",
    "aws:SourceVpc",
    "s3vectors:sseType",
]
CONDITION_VALUES = st.one_of(
    SCALARS,
    st.sampled_from(["10.0.0.0/8", "::1/128", "300.1.1.1", "true", "FALSE", "2026-12-02T00:00:00Z", "arn:aws:iam::*"]),
    st.lists(st.sampled_from(["127.0.0.1/32", "*", "?", "2099-01-01"]), max_size=4),
)
# Operator, key and values that fit together: most generated policies should be accepted, so
# that their evaluation, not only their parsing, is exercised.
VALID_CONDITIONS = st.sampled_from(
    [
        ("IpAddress", "aws:SourceIp", ["127.0.0.0/8", "10.0.0.0/8"]),
        ("NotIpAddress", "aws:SourceIp", "192.168.0.0/16"),
        ("Bool", "aws:SecureTransport", "false"),
        ("StringLike", "aws:PrincipalArn", "arn:aws:iam::*:root"),
        ("ArnNotEquals", "aws:PrincipalArn", "arn:aws:iam::1:user/x"),
        ("StringEqualsIfExists", "aws:username", "alice"),
        ("Null", "aws:username", "true"),
        ("DateLessThan", "aws:CurrentTime", "2099-01-01T00:00:00Z"),
        ("NumericGreaterThan", "aws:EpochTime", 0),
        ("ForAnyValue:StringEquals", "aws:PrincipalAccount", ["111122223333", "444455556666"]),
    ]
).map(lambda c: {c[0]: {c[1]: c[2]}})
CONDITIONS = st.one_of(
    VALID_CONDITIONS,
    VALID_CONDITIONS,
    VALID_CONDITIONS,
    st.dictionaries(
        st.sampled_from(CONDITION_OPERATORS),
        st.dictionaries(st.sampled_from(CONDITION_KEYS), CONDITION_VALUES, max_size=3) | SCALARS,
        max_size=3,
    ),
)
PRINCIPALS = st.one_of(
    st.just("*"),
    st.just({"AWS": "111122223333"}),
    st.just({"AWS": ["arn:aws:iam::111122223333:root", "444455556666"]}),
    st.sampled_from(["111122223333", "arn:aws:iam::444455556666:root", "arn:aws:iam::1:user/x", "nobody"]),
    st.dictionaries(st.sampled_from(["AWS", "TRN", "Service"]), st.sampled_from(["*", "111122223333"]), max_size=2),
)
ACTIONS = st.one_of(
    st.sampled_from(["*", "s3vectors:*", "s3vectors:GetIndex", "s3vectors:Get*", "oss:ListVectors"] * 3),
    st.sampled_from(["s3:GetObject", "s3vectors:"]),
    st.lists(st.sampled_from(["s3vectors:Query*", "tosvectors:PutVectors", "s3vectors:AdminRestore"]), max_size=3),
)
RESOURCES = st.one_of(
    st.sampled_from(["*", "arn:aws:s3vectors:us-east-1:111122223333:bucket/fuzz/*", "*/index/idx"] * 3),
    st.just(""),
    st.lists(st.text(max_size=30), max_size=3),
)


RARELY = st.sampled_from([False] * 19 + [True])  # hypothesis favours the ends of integer ranges


@st.composite
def _statement(draw: st.DrawFn) -> Any:
    s: dict[str, Any] = {"Effect": draw(st.sampled_from(["Allow", "Deny"] * 8 + ["allow", "Maybe"]))}
    for element, values in (("Principal", PRINCIPALS), ("Action", ACTIONS), ("Resource", RESOURCES)):
        how = draw(st.sampled_from(["plain"] * 12 + ["not"] * 3 + ["both", "none"]))
        if how in ("plain", "both"):
            s[element] = draw(values)
        if how in ("not", "both"):
            s[f"Not{element}"] = draw(values)
    if draw(st.booleans()):
        s["Condition"] = draw(CONDITIONS)
    if draw(RARELY):
        s[draw(st.sampled_from(["Sid", "Unknown", "condition"]))] = draw(SCALARS)
    return s


@st.composite
def _policy(draw: st.DrawFn) -> str:
    doc: Any = {
        "Version": draw(st.sampled_from(["2012-10-17"] * 8 + ["1", "2099-01-01"])),
        "Statement": draw(st.lists(_statement(), min_size=1, max_size=4)),
    }
    if draw(RARELY):  # past the 20 KB limit
        doc["Statement"] = doc["Statement"] * 300 or [{"Sid": "x" * 25_000}]
    if draw(RARELY):
        return draw(st.sampled_from(["", "{", "[]", "null", json.dumps(doc)[:40]]))
    return json.dumps(doc, allow_nan=True)


POLICIES: st.SearchStrategy[str] = _policy()
