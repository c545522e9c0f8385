"""Paging of whole-list answers, for every protocol, by the service's paginator model.

A handler answers the whole list; this cuts the page the request asks for, with an opaque token that
carries the offset and a fingerprint of the rest of the request (a token is refused for another
request). The page size's range is the model's (``min``/``max`` of the limit member) or the service's
``Limits``; a request without a size gets ``Limits.default`` items, or all of them when that is None
(EC2's describe calls).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from kiln.api.errors import Dialect
from kiln.api.model import operation, paginators


@dataclass(frozen=True)
class Limits:
    low: int = 1
    high: int = 1000
    default: int | None = 25


def _fingerprint(params: dict[str, Any], token_key: str, limit_key: str) -> str:
    rest = {k: v for k, v in params.items() if k not in (token_key, limit_key)}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _range(service: str, name: str, limit_key: str, limits: Limits) -> tuple[int, int]:
    shape = operation(service, name).input_shape
    member = shape.members.get(limit_key) if shape is not None else None
    metadata = member.metadata if member is not None else {}
    return int(metadata.get("min", limits.low)), int(metadata.get("max", limits.high))


def _start(encoded: str, token_key: str, fingerprint: str, dialect: Dialect) -> int:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(encoded.encode()))
        start, theirs = int(decoded["offset"]), decoded["for"]
    except (ValueError, KeyError, TypeError):
        raise dialect.token(token_key, "is not a token kiln gave") from None
    if theirs != fingerprint or start < 0:
        raise dialect.token(token_key, "belongs to a different request")
    return start


def page(service: str, name: str, params: dict[str, Any], result: dict[str, Any], dialect: Dialect,
         limits: Limits) -> dict[str, Any]:
    """The page of ``result`` that ``params`` ask for (``result`` itself for an operation without paging)."""
    config = paginators(service).get(name)
    if not config or not isinstance(config.get("result_key"), str) or "limit_key" not in config:
        return result
    token_key, limit_key, key = config["input_token"], config["limit_key"], config["result_key"]
    low, high = _range(service, name, limit_key, limits)
    limit = params.get(limit_key)
    if limit is not None and (not isinstance(limit, int) or not low <= limit <= high):
        raise dialect.limit(limit_key, low, high)
    fingerprint = _fingerprint(params, token_key, limit_key)
    start = _start(params[token_key], token_key, fingerprint, dialect) if params.get(token_key) else 0
    items = result.get(key) or []
    size = limit if limit is not None else (limits.default or max(len(items), 1))
    paged = {**result, key: items[start : start + size]}
    paged.pop(config["output_token"], None)
    if start + size < len(items):
        token = json.dumps({"offset": start + size, "for": fingerprint}).encode()
        paged[config["output_token"]] = base64.urlsafe_b64encode(token).decode()
    return paged
