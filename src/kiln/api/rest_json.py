"""The ``rest-json`` protocol (Image Builder) exactly as botocore's model defines it.

Routes, where each input member travels (path, query string, header, JSON body) and the status code of
every error are read from the service model at run time; nothing here names an operation. Paging of
List operations follows the service's paginator model: a handler answers the whole list, and the
protocol layer cuts pages of ``maxResults`` with an opaque ``nextToken``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import urllib.parse
from dataclasses import dataclass
from functools import cache
from typing import Any

from kiln.api.errors import ApiError


@cache
def service_model(name: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(name)


@cache
def paginators(name: str) -> dict[str, Any]:
    import botocore.session

    try:
        return dict(botocore.session.get_session().get_paginator_model(name)._paginator_config)
    except Exception:  # a service without paginators
        return {}


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
        raise ApiError("MethodNotAllowedException" if service == "imagebuilder" else "InvalidAction",
                       f"{method} is not allowed on {path}", status=405)
    raise ApiError("UnknownOperationException", f"no operation at {method} {path}", status=404)


def _convert(shape: Any, value: str, where: str) -> Any:
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
        raise ApiError("InvalidParameterValueException", f"{where}: {value!r} is not a valid {kind}") from None
    return value


def parse_input(service: str, operation: str, labels: dict[str, str], query: str, headers: dict[str, str],
                body: bytes) -> dict[str, Any]:
    """The operation's input as a dict of member names, taken from where the model says each travels."""
    shape = service_model(service).operation_model(operation).input_shape
    params: dict[str, Any] = {}
    if shape is None:
        return params
    payload: Any = {}
    if body.strip():
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ApiError("SerializationException", f"the request body is not JSON: {error}") from None
        if not isinstance(payload, dict):
            raise ApiError("SerializationException", "the request body must be a JSON object")
    pairs = urllib.parse.parse_qs(query, keep_blank_values=True)
    for member, member_shape in shape.members.items():
        location = member_shape.serialization.get("location")
        wire = member_shape.serialization.get("name", member)
        if location == "uri" and wire in labels:
            params[member] = labels[wire]
        elif location == "querystring" and wire in pairs:
            values = pairs[wire]
            if member_shape.type_name == "list":
                params[member] = [_convert(member_shape.member, v, member) for v in values]
            else:
                params[member] = _convert(member_shape, values[-1], member)
        elif location == "header" and wire.lower() in headers:
            params[member] = _convert(member_shape, headers[wire.lower()], member)
        elif location is None and member in payload:
            params[member] = payload[member]
    unknown = set(payload) - {m for m, s in shape.members.items() if not s.serialization.get("location")}
    if unknown:
        raise ApiError("SerializationException", f"unknown field(s) {', '.join(sorted(unknown))}")
    return params


def error_status(service: str, code: str, default: int) -> int:
    model = service_model(service)
    for shape in model.error_shapes:
        if shape.name == code:
            return int(shape.metadata.get("error", {}).get("httpStatusCode", default))
    return default


def error_response(service: str, error: ApiError) -> tuple[int, dict[str, str], bytes]:
    status = error.status or error_status(service, error.code, 400)
    body = json.dumps({"message": error.message, **error.fields}).encode()
    return status, {"content-type": "application/json", "x-amzn-errortype": error.code}, body


def success_response(result: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return 200, {"content-type": "application/json"}, json.dumps(result, default=str).encode()


# --- paging --------------------------------------------------------------------------------------


def _fingerprint(params: dict[str, Any], token_key: str, limit_key: str) -> str:
    rest = {k: v for k, v in params.items() if k not in (token_key, limit_key)}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()[:16]


def page(service: str, operation: str, params: dict[str, Any], result: dict[str, Any],
         *, default_limit: int = 25, max_limit: int = 1000) -> dict[str, Any]:
    """Cut the page the request asks for out of a whole-list answer (no-op for other operations)."""
    config = paginators(service).get(operation)
    if not config or not isinstance(config.get("result_key"), str):
        return result
    token_key, limit_key, key = config["input_token"], config["limit_key"], config["result_key"]
    limit = params.get(limit_key) or default_limit
    if not isinstance(limit, int) or not 1 <= limit <= max_limit:
        raise ApiError("InvalidParameterValueException", f"{limit_key} must be between 1 and {max_limit}")
    fingerprint = _fingerprint(params, token_key, limit_key)
    start = 0
    if params.get(token_key):
        try:
            decoded = json.loads(base64.urlsafe_b64decode(params[token_key].encode()))
            start, their = int(decoded["offset"]), decoded["for"]
        except (ValueError, KeyError, TypeError):
            raise ApiError("InvalidPaginationTokenException", f"{token_key} is not a token kiln gave") from None
        if their != fingerprint:
            raise ApiError("InvalidPaginationTokenException", f"{token_key} belongs to a different request")
    items = result.get(key) or []
    paged = {**result, key: items[start : start + limit]}
    paged.pop(config["output_token"], None)
    if start + limit < len(items):
        token = json.dumps({"offset": start + limit, "for": fingerprint}).encode()
        paged[config["output_token"]] = base64.urlsafe_b64encode(token).decode()
    return paged
