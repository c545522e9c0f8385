"""What components, workflows and image and container recipes share: immutable resources kept as one row
per version."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kiln.errors import AlreadyExists
from kiln.model.shapes import LatestVersionReferences
from kiln.model.versions import Version, VersionFilter, newest
from kiln.services.common.unit import DryRunOperation, replayed

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kiln.model.arn import Arn


def version_rows(db: Session, table: type[Any], account: str | None, arn_name: str | None) -> list[Any]:
    """The rows of ``table`` (all, or one account's, or one name's) in creation order."""
    from sqlalchemy import select

    query = select(table)
    if account is not None:
        query = query.where(table.account == account)
    if arn_name is not None:
        query = query.where(table.arn_name == arn_name)
    return list(db.scalars(query.order_by(table.id)))


def key_columns(arn: Arn, account: str, name: str, version: Version) -> dict[str, Any]:
    """The key columns (``VersionedResourceColumns``) of a new version's row."""
    return {
        "arn": str(arn),
        "account": account,
        "name": name,
        "arn_name": arn.name,
        "version": str(version),
        "major": version.major,
        "minor": version.minor,
        "patch": version.patch,
    }


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


def reuse_version(
    db: Session,
    current: Any,
    digest: str,
    tags: dict[str, str] | None,
    retag: Callable[[Any, dict[str, str]], None],
    *,
    label: str,
    name: str,
    version: Version,
    where: str | None,
) -> tuple[Any, str]:
    """Create again a version that exists (``current``): (current, "unchanged"), or "updated" when only
    new tags came (``retag`` sets them); different content is refused, as versions are immutable.

    ``label`` is the resource in messages, e.g. "image recipe"; its last word names it in the hint.
    """
    if current.content_hash == digest:
        if tags is not None and tags != (current.tags or None):
            retag(current, tags)
            db.flush()
            return current, "updated"
        return current, "unchanged"
    raise AlreadyExists(
        f"{label} {name} version {version} already exists ({current.arn}) with different content",
        location=where,
        hint=f"{label.split()[-1]} versions are immutable: give the change a new semanticVersion, e.g. "
        f"{version.major}.{version.minor}.{version.patch + 1}",
    )


def answer_without_new_row(
    db: Session,
    table: type[Any],
    request: Any,
    digest: str,
    arn: Arn,
    siblings: list[Any],
    retag: Callable[[Any, dict[str, str]], None],
    *,
    label: str,
    version: Version,
    account: str,
    where: str | None,
) -> tuple[Any, str] | None:
    """What a create of ``arn`` answers without making a row: the row an earlier request with the same
    clientToken made, or the existing version (see ``reuse_version``). None means a new row is due;
    a dry run stops before it with DryRunOperation.

    ``siblings`` are the rows of the same name; of several builds of the version the newest answers.
    """
    previous = replayed(db, table, request.clientToken, digest, account=account)
    if previous is not None:
        return previous, "unchanged"
    key = (version.major, version.minor, version.patch)
    existing = [row for row in siblings if (row.major, row.minor, row.patch) == key]
    if existing:
        current = max(existing, key=lambda row: getattr(row, "build", 0))
        return reuse_version(db, current, digest, request.tags, retag,
                             label=label, name=request.name, version=version, where=where)
    if request.dryRun:
        raise DryRunOperation(f"dry run: {arn} would be created")
    return None
