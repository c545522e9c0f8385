"""The ``rest-json`` protocol (Image Builder) exactly as botocore's model defines it.

Routes, where each input member travels (path, query string, header, JSON body) and the status code of
every error are read from the service model at run time; nothing here names an operation.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from functools import cache
from typing import Any

from kiln.api.errors import ApiError, Dialect
from kiln.api.model import error_status, service_model
from kiln.api.protocol import HttpRequest, HttpResponse


def family(service: str) -> str:
    return "rest-json"


@dataclass(frozen=True)
class Route:
    operation: str
    method: str
    pattern: re.Pattern[str]
    labels: tuple[str, ...]


@cache
def routes(service: str) -> tuple[Route, ...]:
    model = service_model(service)
    found = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        path = http["requestUri"].split("?", 1)[0]
        labels = tuple(re.findall(r"\{(\w+)\+?\}", path))
        regex = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", re.escape(path))
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", regex)
        found.append(Route(name, http["method"], re.compile(f"^{regex}$"), labels))
    return tuple(found)


def match(service: str, method: str, path: str) -> tuple[str, dict[str, str]]:
    """(operation, path labels) of a request; ApiError when nothing routes."""
    allowed = False
    for route in routes(service):
        found = route.pattern.match(path)
        if found is None:
            continue
        allowed = True
        if route.method == method:
            return route.operation, {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()}
    if allowed:
        raise ApiError("MethodNotAllowedException", f"{method} is not allowed on {path}", status=405)
    raise ApiError("UnknownOperationException", f"no operation at {method} {path}", status=404)


def _convert(shape: Any, value: str, where: str, dialect: Dialect) -> Any:
    kind = shape.type_name
    try:
        if kind == "integer" or kind == "long":
            return int(value)
        if kind == "boolean":
            if value.lower() not in ("true", "false"):
                raise ValueError(value)
            return value.lower() == "true"
        if kind in ("float", "double"):
            return float(value)
    except ValueError:
        raise dialect.invalid_value(where, value, kind) from None
    return value


def parse_input(service: str, operation: str, labels: dict[str, str], request: HttpRequest,
                dialect: Dialect) -> dict[str, Any]:
    """The operation's input as a dict of member names, taken from where the model says each travels."""
    shape = service_model(service).operation_model(operation).input_shape
    params: dict[str, Any] = {}
    if shape is None:
        return params
    payload: Any = {}
    if request.body.strip():
        try:
            payload = json.loads(request.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise dialect.bad_body(f"the request body is not JSON: {error}") from None
        if not isinstance(payload, dict):
            raise dialect.bad_body("the request body must be a JSON object")
    pairs = urllib.parse.parse_qs(request.query, keep_blank_values=True)
    for member, member_shape in shape.members.items():
        location = member_shape.serialization.get("location")
        wire = member_shape.serialization.get("name", member)
        if location == "uri" and wire in labels:
            params[member] = labels[wire]
        elif location == "querystring" and wire in pairs:
            values = pairs[wire]
            if member_shape.type_name == "list":
                params[member] = [_convert(member_shape.member, v, member, dialect) for v in values]
            else:
                params[member] = _convert(member_shape, values[-1], member, dialect)
        elif location == "header" and wire.lower() in request.headers:
            params[member] = _convert(member_shape, request.headers[wire.lower()], member, dialect)
        elif location is None and member in payload:
            params[member] = payload[member]
    unknown = set(payload) - {m for m, s in shape.members.items() if not s.serialization.get("location")}
    if unknown:
        raise dialect.bad_body(f"unknown field(s) {', '.join(sorted(unknown))}")
    return params


def read(service: str, dialect: Dialect, request: HttpRequest) -> tuple[str, dict[str, Any]]:
    operation, labels = match(service, request.method, request.path.split("?", 1)[0])
    return operation, parse_input(service, operation, labels, request, dialect)


def success(service: str, operation: str, result: dict[str, Any], request_id: str) -> HttpResponse:
    if "requestId" in result:  # the answer's requestId is the request's (the x-amzn-requestid header's)
        result = {**result, "requestId": request_id}
    return HttpResponse(200, _JSON, json.dumps(result, default=str).encode())


_JSON = {"content-type": "application/json"}


def failure(service: str, error: ApiError, request_id: str) -> HttpResponse:
    status = error.status or error_status(service, error.code, 400)
    body = json.dumps({"message": error.message, **error.fields}).encode()
    return HttpResponse(status, {"content-type": "application/json", "x-amzn-errortype": error.code}, body)
