"""EC2-style resource ids: ``ami-``, ``snap-``, ``i-``, ``lt-`` followed by 17 hex digits."""

from __future__ import annotations

import re
import secrets

PREFIXES = ("ami", "snap", "i", "lt", "vol", "key")
_ID = re.compile(r"^(ami|snap|i|lt|vol|key)-[0-9a-f]{17}$")


def new_id(prefix: str) -> str:
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}-{secrets.token_hex(9)[:17]}"


def is_id(value: str, prefix: str | None = None) -> bool:
    match = _ID.match(value)
    return bool(match) and (prefix is None or match.group(1) == prefix)
