"""Readers for ``vecledger import``: Parquet, ``.npy`` (with a keys or metadata sidecar), JSONL and CSV.

Each reader yields rows in file order from any row number on, so that an interrupted import resumes
where the server stopped acknowledging. Files are streamed (Parquet by record batch, ``.npy``
memory-mapped, JSONL and CSV by line), so an import never needs the whole file in memory.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from engine.log.payload import loads_exact

FORMATS = ("parquet", "npy", "jsonl", "csv")
_EXTENSIONS = {".parquet": "parquet", ".pq": "parquet", ".npy": "npy", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_EXTENSIONS |= {".csv": "csv"}
_COMPONENT = re.compile(r"v(\d+)")


class InputError(Exception):
    """The input file cannot be read as asked; the message says what to fix."""


@dataclass(frozen=True)
class Row:
    key: str
    vector: np.ndarray  # float32, 1-D
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Input:
    path: Path
    total: int | None  # rows, when known up front (for the progress bar)
    rows: Callable[[int], Iterator[Row]]  # every row from a row number on

    def dimension(self) -> int:
        """The dimension of the first row (what ``--create-index`` uses when not told)."""
        first = next(self.rows(0), None)
        if first is None:
            raise InputError(f"{self.path} holds no rows")
        return len(first.vector)


def detect_format(path: Path) -> str:
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"cannot tell the format of {path.name}; pass --format ({', '.join(FORMATS)})")
    return fmt


def open_input(path: Path, fmt: str, keys_file: Path | None = None, metadata_file: Path | None = None) -> Input:
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    if fmt != "npy" and (keys_file or metadata_file):
        raise InputError("--keys and --metadata are sidecars of an .npy file; other formats carry their own")
    if fmt == "parquet":
        return _parquet(path)
    if fmt == "npy":
        return _npy(path, keys_file, metadata_file)
    if fmt == "jsonl":
        return Input(path, _count_lines(path), lambda start: _jsonl(path, start))
    if fmt == "csv":
        return Input(path, max(0, _count_lines(path) - 1), lambda start: _csv(path, start))
    raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


# --- values ---------------------------------------------------------------------------------------


def _vector(value: Any, where: str) -> np.ndarray:
    if isinstance(value, dict) and "float32" in value:  # the S3 Vectors wire shape
        value = value["float32"]
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise InputError(f"{where}: the vector is not a JSON list of numbers") from None
    try:
        vec = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise InputError(f"{where}: the vector is not a list of numbers") from None
    if vec.ndim != 1 or len(vec) == 0:
        raise InputError(f"{where}: the vector must be a non-empty list of numbers")
    return vec


def _metadata_value(value: Any) -> Any:
    """A JSON value the S3 Vectors API accepts: strings, numbers, booleans and lists of them."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple | np.ndarray):
        return [_metadata_value(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return str(value)  # dates, decimals, bytes: as text


def _clean(metadata: dict[str, Any]) -> dict[str, Any]:
    return {k: _metadata_value(v) for k, v in metadata.items() if v is not None}


def _split(obj: Any, where: str) -> tuple[str | None, Any, dict[str, Any]]:
    """(key, vector, metadata) of one JSON object: ``key``, ``vector`` (or ``data``), ``metadata``;
    any other field is metadata too."""
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected a JSON object")
    obj = dict(obj)
    key = obj.pop("key", None)
    vector = obj.pop("vector", None)
    if vector is None:
        vector = obj.pop("data", None)
    nested = obj.pop("metadata", None)
    if nested is not None and not isinstance(nested, dict):
        raise InputError(f"{where}: metadata must be a JSON object")
    return (None if key is None else str(key)), vector, _clean({**(nested or {}), **obj})


# --- formats --------------------------------------------------------------------------------------


def _count_lines(path: Path) -> int:
    count, last = 0, b"\n"
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def _parquet(path: Path) -> Input:
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path)
    except Exception as e:
        raise InputError(f"{path} is not a Parquet file: {e}") from None
    names = meta.schema_arrow.names
    if "vector" not in names:
        raise InputError(f"{path} has no `vector` column (columns: {', '.join(names)})")

    def rows(start: int) -> Iterator[Row]:
        skip, row = start, 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=2048):
            if skip >= batch.num_rows:
                skip -= batch.num_rows
                row += batch.num_rows
                continue
            batch = batch.slice(skip)
            row, skip = row + skip, 0
            cols = {n: batch.column(n).to_pylist() for n in batch.schema.names if n not in ("key", "vector")}
            keys = batch.column("key").to_pylist() if "key" in names else None
            vectors = batch.column("vector").to_pylist()
            for i, value in enumerate(vectors):
                key = str(keys[i]) if keys is not None else str(row + i)
                yield Row(key, _vector(value, f"{path.name} row {row + i}"), _clean({n: v[i] for n, v in cols.items()}))
            row += batch.num_rows

    return Input(path, meta.metadata.num_rows, rows)


def _npy(path: Path, keys_file: Path | None, metadata_file: Path | None) -> Input:
    try:
        matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        raise InputError(f"{path} is not a .npy array: {e}") from None
    if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.number):
        raise InputError(f"{path} must hold a 2-D array of numbers (rows x dimension), not {matrix.shape}")
    n = len(matrix)
    for side in (keys_file, metadata_file):
        if side is not None and not side.is_file():
            raise InputError(f"no such file: {side}")
        if side is not None and _count_lines(side) != n:
            raise InputError(f"{side} has {_count_lines(side)} lines but {path.name} has {n} rows")

    def rows(start: int) -> Iterator[Row]:
        keys: Iterator[Any] = itertools.count(start) if keys_file is None else _lines(keys_file, start)
        metas = _lines(metadata_file, start) if metadata_file is not None else itertools.repeat("")
        for i, key, meta_line in zip(range(start, n), keys, metas, strict=False):
            meta_key: str | None = None
            meta: dict[str, Any] = {}
            if meta_line.strip():
                try:
                    meta_key, _, meta = _split(loads_exact(meta_line), f"{metadata_file} line {i + 1}")
                except orjson.JSONDecodeError as e:
                    raise InputError(f"{metadata_file} line {i + 1} is not JSON: {e}") from None
            name = str(key) if keys_file is not None or meta_key is None else meta_key
            yield Row(name, np.asarray(matrix[i], dtype=np.float32), meta)

    return Input(path, n, rows)


def _lines(path: Path, start: int) -> Iterator[str]:
    with path.open(encoding="utf-8") as f:
        yield from (line.rstrip("\r\n") for line in itertools.islice(f, start, None))


def _jsonl(path: Path, start: int) -> Iterator[Row]:
    row = 0
    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            if row >= start:
                where = f"{path.name} line {number}"
                try:
                    key, vector, meta = _split(loads_exact(line), where)
                except orjson.JSONDecodeError as e:
                    raise InputError(f"{where} is not JSON: {e}") from None
                if vector is None:
                    raise InputError(f'{where} has no "vector" field')
                yield Row(key if key is not None else str(row), _vector(vector, where), meta)
            row += 1


def _csv_value(text: str) -> Any:
    """CSV cells are text; numbers and true/false become numbers and booleans (so filters work)."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _csv(path: Path, start: int) -> Iterator[Row]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        parts = sorted((int(m.group(1)), c) for c in fields if (m := _COMPONENT.fullmatch(c)))
        if "vector" not in fields and not parts:
            raise InputError(f"{path} needs a `vector` column (a JSON list) or columns v0, v1, ... (has: {fields})")
        rest = [c for c in fields if c not in ("key", "vector") and ("vector" in fields or not _COMPONENT.fullmatch(c))]
        for row, record in enumerate(itertools.islice(reader, start, None), start):
            where = f"{path.name} row {row + 1}"
            if "vector" in fields:
                vector = _vector(record["vector"], where)
            else:
                try:
                    vector = np.array([float(record[c]) for _, c in parts], dtype=np.float32)
                except (TypeError, ValueError):
                    raise InputError(f"{where}: columns v0..v{len(parts) - 1} must all be numbers") from None
            meta = {c: _csv_value(record[c]) for c in rest if record.get(c) not in (None, "")}
            yield Row(record["key"] if record.get("key") else str(row), vector, meta)
