"""An OpenAPI 3.1 description of the S3 Vectors dialect, generated from what the server enforces.

Every S3 Vectors operation is ``POST /<OperationName>`` with a JSON body, and the strict pydantic
models in ``api/models.py`` are the authority on those bodies. Deriving the description from the
models and the operation registry (rather than writing it by hand) keeps it true, and gives the
fuzzer (``tests/system/test_fuzz.py``, ``tools/fuzz.py``) schemas to generate requests from.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from api.errors import WIRE
from api.operations import OPERATIONS

REF = "#/components/schemas/{model}"

_ERROR = {
    "type": "object",
    "description": "The error body; its code is in the x-amzn-ErrorType header.",
    "properties": {
        "message": {"type": "string"},
        "fieldList": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
                "required": ["path", "message"],
            },
        },
    },
    "required": ["message"],
}


def openapi() -> dict[str, Any]:
    """The description as a JSON-ready dict (served at ``GET /_vecledger/openapi.json``)."""
    models = sorted({op.model for op in OPERATIONS.values()}, key=lambda m: m.__name__)
    refs, doc = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas: dict[str, Any] = dict(doc.get("$defs", {}))
    schemas["Error"] = _ERROR
    codes: dict[int, list[str]] = {}
    for wire in WIRE.values():
        code, status = wire["s3"]
        codes.setdefault(status, []).append(code)
    failures = {
        str(status): {
            "description": ", ".join(sorted(names)),
            "headers": {"x-amzn-ErrorType": {"schema": {"type": "string", "enum": sorted(names)}}},
            "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
        }
        for status, names in sorted(codes.items())
    }
    ok = {"description": "Success", "content": {"application/json": {"schema": {"type": "object"}}}}
    paths = {
        f"/{name}": {
            "post": {
                "operationId": name,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": refs[(op.model, "validation")]}},
                },
                "responses": {"200": ok} | failures,
            }
        }
        for name, op in sorted(OPERATIONS.items())
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "vecledger: S3 Vectors dialect",
            "version": "1",
            "description": "Every operation is POST /<OperationName> with a JSON body, signed with AWS SigV4 "
            "(service s3vectors). Generated from the server's request models.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"sigv4": {"type": "apiKey", "in": "header", "name": "Authorization"}},
        },
        "security": [{"sigv4": []}],
    }
