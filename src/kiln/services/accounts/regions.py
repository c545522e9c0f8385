"""Regions: each a named image store of its own. ``local`` (kiln's default) always exists; others are
created by name (``us-east-1``, ``eu-west-1`` …), and an image id exists in exactly one of them."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from kiln.db.base import utcnow
from kiln.db.engine import session
from kiln.db.tables.accounts import RegionRow
from kiln.errors import AlreadyExists, InvalidInput, NotFound
from kiln.home import DEFAULT_REGION, region_dir
from kiln.model.shapes import format_date

# AWS's region names (``us-east-1``, ``ap-southeast-2``, ``us-gov-west-1``) or kiln's ``local``.
REGION_NAME = re.compile(r"^(local|[a-z]{2}(-[a-z]+)+-\d{1,2})$")


class RegionNotFound(NotFound):
    code = "InvalidRegion"


def _shape(row: RegionRow) -> dict[str, Any]:
    return {"RegionName": row.name, "Endpoint": str(region_dir(row.name)), "OptInStatus": "opt-in-not-required",
            "CreatedTime": format_date(row.created_at)}


def ensure_default_region() -> None:
    with session() as db:
        if db.get(RegionRow, DEFAULT_REGION) is None:
            db.add(RegionRow(name=DEFAULT_REGION, created_at=utcnow()))


def create_region(name: str) -> dict[str, Any]:
    if not REGION_NAME.match(name):
        raise InvalidInput(f"{name!r} is not a region name (like us-east-1 or eu-west-1)", location="RegionName")
    with session() as db:
        if db.get(RegionRow, name) is not None:
            raise AlreadyExists(f"region {name} already exists", location="RegionName")
        row = RegionRow(name=name, created_at=utcnow())
        db.add(row)
    return _shape(row)


def list_regions() -> list[dict[str, Any]]:
    with session() as db:
        return [_shape(row) for row in db.scalars(select(RegionRow).order_by(RegionRow.name))]


def require_region(name: str, *, field: str = "--region") -> str:
    """``name`` if the region exists, else one clear error naming it."""
    with session() as db:
        if db.get(RegionRow, name) is None:
            raise RegionNotFound(f"region {name} does not exist", location=field,
                                 hint=f"kiln region create {name}")
    return name
