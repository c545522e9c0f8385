"""botocore's service models, read at run time: what every protocol and the paging read their rules from."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from functools import cache
from typing import Any


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


def operation(service: str, name: str) -> Any:
    return service_model(service).operation_model(name)


def error_status(service: str, code: str, default: int) -> int:
    """The HTTP status the model gives error ``code`` (by shape name or wire code), else ``default``."""
    for shape in service_model(service).error_shapes:
        error = shape.metadata.get("error", {})
        if code in (shape.name, error.get("code")):
            return int(error.get("httpStatusCode", default))
    return default


def as_datetime(value: Any) -> datetime | None:
    """A timestamp from a service answer (datetime, ISO 8601 text or epoch seconds), in UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def iso8601(value: Any) -> str:
    """XML protocols' timestamp text: ``2024-05-01T12:00:00.000Z``."""
    when = as_datetime(value)
    if when is None:
        return str(value)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def epoch(value: Any) -> Any:
    """JSON protocols' timestamp: seconds since the epoch."""
    when = as_datetime(value)
    return when.timestamp() if when is not None else value


def blob_text(value: Any) -> str:
    data = value if isinstance(value, bytes) else str(value).encode()
    return base64.b64encode(data).decode()
