"""The ``json`` protocol (Organizations, SSM) as botocore's model defines it: ``POST /`` with
``X-Amz-Target: <targetPrefix>.<Operation>`` and a JSON body of the input's members; answers in JSON
(timestamps as epoch seconds), errors as ``{"__type": code, "message": …}`` with the model's status
or 400."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from kiln.api.errors import ApiError, Dialect
from kiln.api.model import as_datetime, blob_text, epoch, error_status, service_model
from kiln.api.protocol import HttpRequest, HttpResponse


def family(service: str) -> str:
    return "json"


def content_type(service: str) -> str:
    return f"application/x-amz-json-{service_model(service).metadata.get('jsonVersion', '1.1')}"


def _input(shape: Any, value: Any, where: str, dialect: Dialect) -> Any:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            raise dialect.bad_body(f"{where or 'the body'} must be a JSON object")
        unknown = sorted(set(value) - set(shape.members))
        if unknown:
            raise dialect.bad_body(f"unknown field {where + '.' if where else ''}{unknown[0]}")
        found = {member: _input(shape.members[member], item, f"{where}.{member}" if where else member, dialect)
                 for member, item in value.items() if item is not None}
        for member in shape.required_members:
            if member not in found:
                raise dialect.missing_member(f"{where}.{member}" if where else member)
        return found
    if kind == "list":
        if not isinstance(value, list):
            raise dialect.bad_body(f"{where} must be a JSON array")
        return [_input(shape.member, item, f"{where}[{index}]", dialect) for index, item in enumerate(value)]
    if kind == "map":
        if not isinstance(value, dict):
            raise dialect.bad_body(f"{where} must be a JSON object")
        return {key: _input(shape.value, item, f"{where}.{key}", dialect) for key, item in value.items()}
    return _scalar(shape, value, where, dialect)


def _scalar(shape: Any, value: Any, where: str, dialect: Dialect) -> Any:
    kind = shape.type_name
    ok = {
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "double": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "timestamp": lambda v: as_datetime(v) is not None and not isinstance(v, bool),
        "blob": lambda v: isinstance(v, str),
    }.get(kind, lambda v: True)
    if not ok(value):
        raise dialect.bad_body(f"{where}: {json.dumps(value)[:80]} is not a {kind}")
    if kind == "timestamp":
        return as_datetime(value)
    if kind == "blob":
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            raise dialect.bad_body(f"{where} is not base64") from None
    if kind == "string" and shape.enum and value not in shape.enum:
        raise dialect.invalid_value(where, value, "enum")
    return value


def read(service: str, dialect: Dialect, request: HttpRequest) -> tuple[str, dict[str, Any]]:
    model = service_model(service)
    prefix, _, operation = request.headers.get("x-amz-target", "").partition(".")
    if request.method != "POST" or prefix != model.metadata.get("targetPrefix") or \
            operation not in model.operation_names:
        raise dialect.no_operation(operation or request.headers.get("x-amz-target", ""))
    try:
        payload = json.loads(request.body) if request.body.strip() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise dialect.bad_body(f"the request body is not JSON: {error}") from None
    shape = model.operation_model(operation).input_shape
    if shape is None:
        if payload not in ({}, None):
            raise dialect.bad_body(f"{operation} takes no input")
        return operation, {}
    return operation, _input(shape, payload, "", dialect)


def to_json(shape: Any, value: Any) -> Any:
    """``value`` as the shape says it travels (members not in the shape are left out)."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return None
        return {shape.members[m].serialization.get("name", m): to_json(shape.members[m], v)
                for m, v in value.items() if m in shape.members and v is not None}
    if kind == "list":
        return [to_json(shape.member, item) for item in value or []]
    if kind == "map":
        return {str(k): to_json(shape.value, v) for k, v in (value or {}).items()}
    if kind == "timestamp":
        return epoch(value)
    if kind == "blob":
        return blob_text(value)
    return value


def success(service: str, operation: str, result: dict[str, Any], request_id: str) -> HttpResponse:
    shape = service_model(service).operation_model(operation).output_shape
    body = to_json(shape, result) if shape is not None else {}
    return HttpResponse(200, {"content-type": content_type(service)}, json.dumps(body, default=str).encode())


def failure(service: str, error: ApiError, request_id: str) -> HttpResponse:
    status = error.status or error_status(service, error.code, 400 if error.sender else 500)
    body = json.dumps({"__type": error.code, "message": error.message, **error.fields}).encode()
    return HttpResponse(status, {"content-type": content_type(service)}, body)
