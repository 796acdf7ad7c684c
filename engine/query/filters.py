"""The S3 Vectors metadata filter language, compiled twice: to Lance SQL and to a Python predicate.

Lance's JSON functions coerce and fail on mixed types (``json_get_string`` errors on an array), so
filterable metadata is indexed at fold time into typed columns instead (``index_terms``):

* ``tokens`` (list<string>): one token per (key, primitive value), list elements included, plus an
  "exists" token per key. Equality, ``$in``, ``$exists`` and their negations are ``array_has``
  over it, which a LABEL_LIST scalar index serves.
* ``numbers`` (JSON object): the scalar numeric values, for the range operators via
  ``json_get_float``.
* ``strings`` (JSON object): the scalar string values, for ``$startsWith`` (ENHANCED indexes, as
  on AWS) via ``starts_with(json_get_string(...))``: holding strings only, it never meets a value
  ``json_get_string`` would coerce.
* ``prefixes`` (string): the same pairs as one string, ``\x02key\x03value`` each, with ``\x01``,
  ``\x02`` and ``\x03`` escaped (``prefix_text``). A key's value starts with ``p`` exactly when
  the column contains ``\x02key\x03p`` (escaped alike), which Lance's NGRAM index answers
  without reading the column; the ``strings`` check stays beside it, so a guard that an index
  answers loosely still yields exact rows.

The Python predicate implements the same semantics directly on the metadata dict for the
un-materialized tail; ``tests/engine/test_filters.py`` runs every operator through both and they must agree.
Semantics: ``$eq`` on a list value matches any element; ``$ne``/``$nin`` are the negations of
``$eq``/``$in`` (so they match vectors without the key); range operators take numbers only and
match scalar numbers only; booleans are not numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from engine.errors import ValidationError
from engine.log.payload import json_bytes

MAX_DEPTH = 10
MAX_NODES = 1_000
# AWS: "confirm that your queries use 100 or fewer filter constraints" before moving an index to
# ENHANCED. A constraint here is one operator on one key (``{"k": {"$in": [...]}}`` is one).
MAX_ENHANCED_CONSTRAINTS = 100
_RANGE = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_FIELD_OPS = {"$eq", "$ne", "$in", "$nin", "$exists", "$startsWith", *_RANGE}

Metadata = dict[str, Any]
Predicate = Callable[[Metadata], bool]


@dataclass(frozen=True)
class Filter:
    sql: str
    predicate: Predicate
    keys: frozenset[str]
    needs_strings: bool = False  # uses the ``strings`` and ``prefixes`` columns ($startsWith)
    # The same filter without the ``prefixes`` guard, for a dataset from before that column.
    unguarded_sql: str | None = None

    def sql_for(self, columns: Collection[str]) -> str:
        """The SQL for a dataset with these columns."""
        if self.unguarded_sql is not None and "prefixes" not in columns:
            return self.unguarded_sql
        return self.sql


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _finite(v: Any) -> bool:
    """A number a double holds: finite, and not an integer past a double's range."""
    try:
        return _is_number(v) and math.isfinite(float(v))
    except OverflowError:
        return False


def _is_primitive(v: Any) -> bool:
    return isinstance(v, str | bool) or _finite(v)


def _canon(v: Any) -> str:
    if isinstance(v, bool):
        return "b:1" if v else "b:0"
    if isinstance(v, str):
        return "s:" + v
    return "n:" + repr(float(v))


def _token(key: str, v: Any) -> str:
    # The length prefix makes the token unambiguous whatever characters the key holds.
    return f"{len(key)}:{key}{_canon(v)}"


def _exists_token(key: str) -> str:
    return f"{len(key)}:{key}e"


def index_terms(meta: Metadata | None, non_filterable: Collection[str]) -> tuple[list[str], str, str, str]:
    """The ``tokens``, ``numbers``, ``strings`` and ``prefixes`` column values for one vector's metadata."""
    tokens: list[str] = []
    numbers: dict[str, float] = {}
    strings: dict[str, str] = {}
    for k, v in (meta or {}).items():
        if k in non_filterable:
            continue
        tokens.append(_exists_token(k))
        if isinstance(v, list):
            tokens.extend(_token(k, e) for e in v if _is_primitive(e))
        elif _is_primitive(v):
            tokens.append(_token(k, v))
            if _is_number(v):
                numbers[k] = float(v)
            elif isinstance(v, str):
                strings[k] = v
    return tokens, json_bytes(numbers).decode(), json_bytes(strings).decode(), prefix_text(strings)


_ESCAPES = str.maketrans({"\x01": "\x01a", "\x02": "\x01b", "\x03": "\x01c"})


def prefix_text(strings: dict[str, str]) -> str:
    """The ``prefixes`` value of a row with these string values (a prefix-free escaping: a raw
    ``\x02`` only ever starts a key, a raw ``\x03`` only ever ends one)."""
    return "".join(f"\x02{k.translate(_ESCAPES)}\x03{v.translate(_ESCAPES)}" for k, v in strings.items())


def _starts_with(key: str, prefix: str, guard: bool) -> tuple[str, Predicate]:
    def pred(m: Metadata) -> bool:
        x = m.get(key)
        return isinstance(x, str) and x.startswith(prefix)

    exact = f"COALESCE(starts_with(json_get_string(strings, {_sql_str(key)}), {_sql_str(prefix)}), false)"
    if not guard:
        return exact, pred
    needle = f"\x02{key.translate(_ESCAPES)}\x03{prefix.translate(_ESCAPES)}"
    # (No COALESCE: Lance would re-check the guard on every candidate; it is never NULL where
    # ``exact`` is true, and NULL AND false is false.)
    return f"(contains(prefixes, {_sql_str(needle)}) AND {exact})", pred


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _same(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        return float(a) == float(b)
    return type(a) is type(b) and a == b


def _eq(key: str, v: Any) -> tuple[str, Predicate]:
    def pred(m: Metadata) -> bool:
        x = m.get(key)
        if isinstance(x, list):
            return any(_same(e, v) for e in x)
        return key in m and _same(x, v)

    return f"array_has(tokens, {_sql_str(_token(key, v))})", pred


def _not(sql: str, pred: Predicate) -> tuple[str, Predicate]:
    return f"(NOT {sql})", lambda m: not pred(m)


def _any(parts: list[tuple[str, Predicate]]) -> tuple[str, Predicate]:
    preds = [p for _, p in parts]
    return "(" + " OR ".join(s for s, _ in parts) + ")", lambda m: any(p(m) for p in preds)


def _all(parts: list[tuple[str, Predicate]]) -> tuple[str, Predicate]:
    preds = [p for _, p in parts]
    return "(" + " AND ".join(s for s, _ in parts) + ")", lambda m: all(p(m) for p in preds)


def _range(key: str, op: str, v: float) -> tuple[str, Predicate]:
    sym = _RANGE[op]
    cmp: Callable[[float, float], bool] = {
        ">": float.__gt__,
        ">=": float.__ge__,
        "<": float.__lt__,
        "<=": float.__le__,
    }[sym]
    bound = float(v)

    def pred(m: Metadata) -> bool:
        x = m.get(key)
        return isinstance(x, int | float) and not isinstance(x, bool) and cmp(float(x), bound)

    return f"COALESCE(json_get_float(numbers, {_sql_str(key)}) {sym} {bound!r}, false)", pred


class _Compiler:
    def __init__(self, non_filterable: Collection[str], enhanced: bool, guard: bool = True) -> None:
        self.non_filterable = set(non_filterable)
        self.enhanced = enhanced
        self.guard = guard  # $startsWith checks the ``prefixes`` column too
        self.uses_strings = False
        self.keys: set[str] = set()
        self.nodes = 0
        self.constraints = 0

    def fail(self, message: str) -> ValidationError:
        return ValidationError(f"Invalid query filter: {message}", field="filter")

    def node(self, doc: Any, depth: int) -> tuple[str, Predicate]:
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            raise self.fail(f"filters may nest at most {MAX_DEPTH} levels and hold at most {MAX_NODES} conditions")
        if not isinstance(doc, dict) or not doc:
            raise self.fail("a filter must be a non-empty JSON object")
        parts = [self.member(k, v, depth) for k, v in doc.items()]
        return parts[0] if len(parts) == 1 else _all(parts)

    def member(self, key: str, value: Any, depth: int) -> tuple[str, Predicate]:
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise self.fail(f"{key} takes a non-empty array of filters")
            parts = [self.node(v, depth + 1) for v in value]
            return _all(parts) if key == "$and" else _any(parts)
        if key.startswith("$"):
            raise self.fail(f"unknown operator {key}")
        if key in self.non_filterable:
            raise self.fail(f"metadata key {key!r} is non-filterable")
        if not key:
            raise self.fail("metadata keys must not be empty")
        self.keys.add(key)
        if isinstance(value, dict):
            if not value:
                raise self.fail(f"empty condition for {key!r}")
            parts = [self.condition(key, op, arg) for op, arg in value.items()]
            return parts[0] if len(parts) == 1 else _all(parts)
        return self.condition(key, "$eq", value)

    def condition(self, key: str, op: str, arg: Any) -> tuple[str, Predicate]:
        if op not in _FIELD_OPS:
            raise self.fail(f"unknown operator {op} for {key!r}")
        self.constraints += 1
        if self.enhanced and self.constraints > MAX_ENHANCED_CONSTRAINTS:
            raise self.fail(f"an ENHANCED index allows at most {MAX_ENHANCED_CONSTRAINTS} filter constraints per query")
        if op == "$startsWith":
            if not self.enhanced:
                raise self.fail("$startsWith needs an index in ENHANCED mode")
            if not isinstance(arg, str):
                raise self.fail("$startsWith takes a string")
            self.uses_strings = True
            return _starts_with(key, arg, self.guard)
        if op in ("$eq", "$ne"):
            if not _is_primitive(arg):
                raise self.fail(f"{op} takes a string, number or boolean")
            sql, pred = _eq(key, arg)
            return (sql, pred) if op == "$eq" else _not(sql, pred)
        if op in ("$in", "$nin"):
            # Counted before the terms are looked at: a 2-million-term list is refused at once.
            self.nodes += len(arg) - 1 if isinstance(arg, list) else 0  # each term is one more condition
            if self.nodes > MAX_NODES:
                raise self.fail(f"a filter may hold at most {MAX_NODES} conditions, counting each {op} term")
            if not isinstance(arg, list) or not arg or not all(_is_primitive(a) for a in arg):
                raise self.fail(f"{op} takes a non-empty array of strings, numbers or booleans")
            sql, pred = _any([_eq(key, a) for a in arg])
            return (sql, pred) if op == "$in" else _not(sql, pred)
        if op == "$exists":
            if not isinstance(arg, bool):
                raise self.fail("$exists takes a boolean")
            tok = _sql_str(_exists_token(key))
            if arg:
                return f"array_has(tokens, {tok})", lambda m: key in m
            return f"(NOT array_has(tokens, {tok}))", lambda m: key not in m
        if not _finite(arg):
            raise self.fail(f"{op} takes a finite number")
        return _range(key, op, arg)


def compile_filter(doc: Any, non_filterable: Collection[str] = (), *, enhanced: bool = True) -> Filter:
    """Validate ``doc`` and compile it; raises ``ValidationError`` with a message users can act on.
    ``enhanced``: the index's mode is ENHANCED, which on AWS brings ``$startsWith`` and a limit of
    100 constraints per query (CLASSIC keeps the 1,000 conditions of ``MAX_NODES``)."""
    c = _Compiler(non_filterable, enhanced)
    sql, pred = c.node(doc, 1)
    unguarded = _Compiler(non_filterable, enhanced, guard=False).node(doc, 1)[0] if c.uses_strings else None
    return Filter(sql, pred, frozenset(c.keys), c.uses_strings, unguarded)
