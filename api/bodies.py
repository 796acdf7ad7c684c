"""Request bodies: strict JSON into pydantic models, failures as ValidationException with fields."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError as PydanticError

from api.errors import ApiError, Kind


def parse_body(model: Any, body: bytes) -> Any:
    """Parse ``body`` (empty means ``{}``) into ``model``; the error names every bad field."""
    try:
        return model.model_validate_json(body or b"{}")
    except PydanticError as e:
        fields = []
        malformed = False
        for err in e.errors():
            malformed = malformed or err["type"] == "json_invalid"
            path = ".".join(str(p) for p in err["loc"]) or "body"
            fields.append((path, str(err["msg"])))
        first = fields[0] if fields else ("body", "invalid request")
        message = "Malformed request body: " + (first[1] if first[0] == "body" else f"{first[0]}: {first[1]}")
        raise ApiError(Kind.VALIDATION, message, fields, reason="MalformedJson" if malformed else None) from None
