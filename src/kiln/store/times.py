"""Times as EC2 writes them in image shapes: UTC, second precision, ``.000Z``."""

from __future__ import annotations

from datetime import UTC, datetime


def ec2_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
