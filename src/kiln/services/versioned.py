"""What components and image recipes share: immutable resources kept as one row per version."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kiln.model.shapes import LatestVersionReferences
from kiln.model.versions import Version, VersionFilter, newest

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def version_rows(db: Session, table: type[Any], account: str | None, arn_name: str | None) -> list[Any]:
    """The rows of ``table`` (all, or one account's, or one name's) in creation order."""
    from sqlalchemy import select

    query = select(table)
    if account is not None:
        query = query.where(table.account == account)
    if arn_name is not None:
        query = query.where(table.arn_name == arn_name)
    return list(db.scalars(query.order_by(table.id)))


def latest_references(
    siblings: list[Any], row: Any, version_of: Callable[[Any], tuple[Version, int]]
) -> LatestVersionReferences:
    """Newest of ``siblings`` (the versions of ``row``'s name) overall, within the same major, the same
    minor and the same patch."""

    def pick(nodes: tuple[int | None, int | None, int | None]) -> str | None:
        found = newest(siblings, VersionFilter(nodes), version_of)
        return found.arn if found else None

    return LatestVersionReferences(
        latestVersionArn=pick((None, None, None)),
        latestMajorVersionArn=pick((row.major, None, None)),
        latestMinorVersionArn=pick((row.major, row.minor, None)),
        latestPatchVersionArn=pick((row.major, row.minor, row.patch)),
    )
