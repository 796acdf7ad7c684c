"""Documented S3 Vectors limits and name rules, checked before anything reaches the engine."""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from datetime import datetime
from typing import Any

from api.errors import validation
from engine.log.payload import json_bytes
from engine.query import validate
from engine.query.text import LANGUAGES

INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
MAX_TAGS = 50
MAX_NON_FILTERABLE = 10
MAX_METADATA_BYTES = 40 * 1024
MAX_FILTERABLE_BYTES = 2 * 1024
MAX_METADATA_KEYS = 50
MAX_PUT = 500
MAX_GET = 100
MAX_LIST_PAGE = 1000
MAX_CATALOG_PAGE = 500
MAX_SEGMENTS = 16
INDEX_MODES = ("CLASSIC", "ENHANCED")
TEXT_LANGUAGES = LANGUAGES  # the analyzers the engine has
MAX_KEY_LENGTH = validate.MAX_KEY_LENGTH
MAX_TEXT_CONFIGS = 10
MAX_QUERY_TEXTS = 10
MAX_QUERY_TEXT = 1024


# AWS words a broken model constraint as its service framework does, one constraint per message
# (the wording checked against AWS by moto's aws_verified tests; docs/api.md, "Error wording").
_FAILED = "1 validation error detected. Value{what} at '{path}' failed to satisfy constraint: Member must {rule}"


def _failed(field: str, what: str, rule: str) -> Exception:
    return validation(_FAILED.format(what=what, path="/" + field.replace(".", "/"), rule=rule), field)


def length_error(field: str, n: int, low: int, high: int) -> Exception:
    return _failed(field, f" with length {n}", f"have length between {low} and {high}, inclusive")


def range_error(field: str, low: int, high: int) -> Exception:
    return _failed(field, "", f"be between {low} and {high}, inclusive")


def enum_error(field: str, values: Any) -> Exception:
    return _failed(field, "", f"satisfy enum value set: [{', '.join(values)}]")


def bucket_name(name: str, max_len: int, field: str = "vectorBucketName") -> str:
    if not 3 <= len(name) <= max_len:
        raise length_error(field, len(name), 3, max_len)
    if not BUCKET_NAME.match(name):
        raise validation("Invalid vector bucket name", field)
    return name


def index_name(name: str, field: str = "indexName") -> str:
    if not 3 <= len(name) <= 63:
        raise length_error(field, len(name), 3, 63)
    if not INDEX_NAME.match(name):
        raise validation("Invalid index name", field)
    return name


def in_range(value: int | None, low: int, high: int, field: str, default: int | None = None) -> int:
    if value is None:
        if default is None:
            raise validation(f"{field} is required", field)
        return default
    if not low <= value <= high:
        raise range_error(field, low, high)
    return value


def count(items: list[Any], low: int, high: int, field: str) -> None:
    if not low <= len(items) <= high:
        raise length_error(field, len(items), low, high)


def tags(value: dict[str, str] | None, field: str = "tags") -> dict[str, str]:
    value = value or {}
    if len(value) > MAX_TAGS:
        raise validation(f"at most {MAX_TAGS} tags per resource", field)
    for k, v in value.items():
        tag_key(k, field)
        if len(v) > 256 or not _tag_text(v):
            raise validation(f"tag {k!r}: values are 0-256 letters, digits, spaces or _.:/=+-@", field)
    return value


def _tag_text(s: str) -> bool:
    """The model's ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*``: Python's ``\\s`` would let tabs and
    newlines in (they are Cc, not Z), so the categories are checked as the pattern names them."""
    return all(c in _TAG_PUNCTUATION or unicodedata.category(c)[0] in "LZN" for c in s)


def tag_key(k: str, field: str) -> str:
    if not 1 <= len(k) <= 128 or not _tag_text(k):
        raise validation(f"tag key {k[:128]!r}: keys are 1-128 letters, digits, spaces or _.:/=+-@", field)
    return k


KMS_KEY_ARN = re.compile(r"arn:aws[-a-z0-9]*:kms:[-a-z0-9]*:[0-9]{12}:key/.+")  # the model's pattern


def encryption(sse: str | None, kms: str | None) -> dict[str, Any] | None:
    if sse is None and kms is None:
        return None
    sse = sse or "AES256"
    if sse not in ("AES256", "aws:kms"):
        raise enum_error("encryptionConfiguration.sseType", ["AES256", "aws:kms"])
    if kms is not None and sse != "aws:kms":
        raise validation("kmsKeyArn is allowed only with sseType aws:kms", "encryptionConfiguration.kmsKeyArn")
    if sse == "aws:kms" and not kms:
        raise validation("sseType aws:kms needs a kmsKeyArn", "encryptionConfiguration.kmsKeyArn")
    if kms is not None and not (len(kms) <= 2048 and KMS_KEY_ARN.fullmatch(kms)):
        raise validation(
            "kmsKeyArn must be a KMS key ARN: arn:aws:kms:<region>:<account>:key/<key id>",
            "encryptionConfiguration.kmsKeyArn",
        )
    return {"sseType": sse} | ({"kmsKeyArn": kms} if kms else {})


def metadata(value: Any, non_filterable: tuple[str, ...], field: str, key: str | None = None) -> None:
    """Metadata is a flat JSON object: 40 KB in all, 2 KB filterable, 50 keys, flat values. With
    ``key``, a message names the record as AWS's do ("Invalid record for key 'k': ...")."""
    if value is None:
        return
    record = f"Invalid record for key '{key}': " if key is not None else ""

    def fail(message: str) -> Exception:
        return validation(record + message, field)

    if not isinstance(value, dict):
        raise fail("Metadata must be a JSON object")
    if len(value) > MAX_METADATA_KEYS:
        raise fail(f"Metadata object must have at most {MAX_METADATA_KEYS} keys")
    filterable = {k: v for k, v in value.items() if k not in non_filterable}
    size = len(json_bytes(filterable))
    total = len(json_bytes(value)) if len(filterable) < len(value) else size
    if total > MAX_METADATA_BYTES:
        raise fail(f"Metadata object must have at most {MAX_METADATA_BYTES} bytes")
    for k, v in filterable.items():
        if not 1 <= len(k) <= 63:
            raise fail("Metadata keys must be 1 to 63 characters")
        flat = v if isinstance(v, list) else [v]
        if any(isinstance(x, dict | list) or x is None for x in flat):
            raise fail(f"Filterable metadata {k!r} must be a string, number, boolean or a list of them")
    if size > MAX_FILTERABLE_BYTES:
        raise fail(f"Filterable metadata must have at most {MAX_FILTERABLE_BYTES} bytes")


def iso_time(value: str) -> float:
    """Epoch seconds of an ISO 8601 time with a zone; ``ValueError`` with a message people can act on."""
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 time (e.g. 2026-11-25T10:00:00Z)") from None
    if stamp.tzinfo is None:
        raise ValueError(f"{value!r} needs a time zone (add Z for UTC)")
    return stamp.timestamp()


def encode_token(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str, field: str = "nextToken") -> dict[str, Any]:
    try:
        doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:
        raise validation(f"{field} is not a token this service issued", field) from None
    if not isinstance(doc, dict):
        raise validation(f"{field} is not a token this service issued", field)
    return doc


def filter_depth(doc: Any, max_depth: int) -> None:
    """Nesting depth of a filter document (objects and arrays), bounded per dialect."""

    def depth(x: Any) -> int:
        if isinstance(x, dict):
            return 1 + max((depth(v) for v in x.values()), default=0)
        if isinstance(x, list):
            return max((depth(v) for v in x), default=0)
        return 0

    if depth(doc) > max_depth:
        raise validation(f"Invalid query filter: filters may nest at most {max_depth} levels", "filter")


def text_configs(configs: list[Any], field: str) -> list[dict[str, Any]]:
    """Text search configurations as the catalog stores them: distinct keys of 1-63 characters,
    a language from the model's list or none (the standard analyzer); status is the server's."""
    count(configs, 0, MAX_TEXT_CONFIGS, field)
    out: list[dict[str, Any]] = []
    for i, c in enumerate(configs):
        if not 1 <= len(c.metadataKey) <= 63:
            raise validation("metadataKey must be 1 to 63 characters", f"{field}[{i}].metadataKey")
        if c.language is not None and c.language not in TEXT_LANGUAGES:
            raise validation(f"language must be one of {', '.join(TEXT_LANGUAGES)}", f"{field}[{i}].language")
        if any(o["metadataKey"] == c.metadataKey for o in out):
            raise validation(f"metadataKey {c.metadataKey!r} is given twice", f"{field}[{i}].metadataKey")
        out.append({"metadataKey": c.metadataKey} | ({"language": c.language} if c.language else {}))
    return out
