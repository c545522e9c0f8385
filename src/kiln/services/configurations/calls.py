"""What infrastructure and distribution configurations share: mutable, unversioned, named resources.

Create refuses an existing name (``kiln apply`` updates instead), Update replaces every mutable
field (PUT semantics) and keeps name and tags, Delete is refused while a pipeline uses the
configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kiln.db.base import utcnow
from kiln.errors import AlreadyExists, NotFound
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.model.arn import make_arn, parse_arn
from kiln.model.shapes import Shape, format_date, new_client_token, new_request_id, parse_shape
from kiln.services.common.kinds import ApplyContext, KindHandler, Ref, no_references
from kiln.services.common.owners import as_caller, in_region, require_visible
from kiln.services.common.references import refuse_if_in_use
from kiln.services.common.unit import (
    DryRunOperation,
    content_hash,
    content_of,
    filter_entries,
    replayed,
    unit_of_work,
    with_client_token,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Family:
    resource_type: str  # ARN type, e.g. "infrastructure-configuration"
    label: str  # for messages
    arn_field: str  # the request field that carries the ARN
    row_class: Callable[[], type[Any]]
    normalise: Callable[[dict[str, Any]], dict[str, Any]]  # fill kiln defaults into a stored body

    @property
    def shape_key(self) -> str:
        """The Get answer's key, e.g. ``infrastructureConfiguration``."""
        return self.arn_field.removesuffix("Arn")

    @property
    def list_key(self) -> str:
        """The List answer's key, e.g. ``infrastructureConfigurationSummaryList``."""
        return f"{self.shape_key}SummaryList"


def rows(db: Session, family: Family, account: str | None = None) -> list[Any]:
    from sqlalchemy import select

    table = family.row_class()
    query = select(table)
    if account is not None:
        query = query.where(table.account == account)
    return list(db.scalars(query.order_by(table.name)))


def find(db: Session, family: Family, arn: str, caller: str | None = None, region: str | None = None) -> Any:
    """The configuration ``arn`` names; with ``caller``, only one of that account (a short form names
    the caller's; another account's is not found)."""
    from sqlalchemy import select

    parsed = parse_arn(arn, resource_type=family.resource_type, field=family.arn_field, allow_short=True)
    parsed = as_caller(arn, parsed, caller, region)
    table = family.row_class()
    row = db.scalars(select(table).where(table.arn == str(parsed))).first()
    if row is None:
        raise NotFound(f"{family.label} {parsed} does not exist", location=family.arn_field)
    require_visible(row.account, caller, family.label, str(parsed), family.arn_field)
    return row


def put(
    db: Session,
    family: Family,
    request: Shape,
    *,
    on_exists: str = "error",
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
    where: str | None = None,
) -> tuple[Any, str]:
    """Create, or with ``on_exists="update"`` bring an existing one in line.

    Returns (row, "created" | "unchanged" | "updated").
    """
    from sqlalchemy import select

    table = family.row_class()
    body = family.normalise(content_of(request.dump()))
    digest = content_hash(body)
    token = getattr(request, "clientToken", None)
    previous = replayed(db, table, token, digest, lambda row: content_hash(row.body), account=account)
    if previous is not None:
        return previous, "unchanged"
    arn = make_arn(family.resource_type, body["name"], region=region, account=account)
    existing = db.scalars(select(table).where(table.arn == str(arn))).first()
    if existing is not None:
        if content_hash(existing.body) == digest:
            return existing, "unchanged"
        if on_exists != "update":
            raise AlreadyExists(
                f"{family.label} {arn} already exists",
                location=where,
                hint=f"change it with `kiln {family.label.split()[0]} update` or `kiln apply`",
            )
        if getattr(request, "dryRun", None):
            raise DryRunOperation(f"dry run: {arn} would be updated")
        existing.body = body
        existing.tags = body.get("tags")
        existing.date_updated = utcnow()
        db.flush()
        return existing, "updated"
    if getattr(request, "dryRun", None):
        raise DryRunOperation(f"dry run: {arn} would be created")
    row = table(
        arn=str(arn),
        account=account,
        name=body["name"],
        body=body,
        tags=body.get("tags"),
        client_token=token or new_client_token(),
        date_created=utcnow(),
    )
    db.add(row)
    db.flush()
    return row, "created"


def update(
    db: Session, family: Family, request: Shape, mutable: tuple[str, ...], caller: str | None = None,
    region: str | None = None,
) -> Any:
    """Replace the mutable fields of an existing configuration (of ``caller``, when given)."""
    row = find(db, family, getattr(request, family.arn_field), caller, region)
    given = content_of(request.dump(), family.arn_field)
    body = {key: value for key, value in row.body.items() if key not in mutable}
    body.update({key: value for key, value in given.items() if key in mutable})
    body = family.normalise(body)
    if content_hash(body) != content_hash(row.body):
        row.body = body
        row.date_updated = utcnow()
        db.flush()
    return row


def delete(db: Session, family: Family, arn: str, caller: str | None = None, region: str | None = None) -> Any:
    row = find(db, family, arn, caller, region)
    refuse_if_in_use(db, parse_arn(row.arn))
    db.delete(row)
    return row


def dates(row: Any) -> dict[str, str]:
    """``dateCreated`` and, once updated, ``dateUpdated`` of a stored configuration."""
    dated = {"dateCreated": format_date(row.date_created)}
    if row.date_updated is not None:
        dated["dateUpdated"] = format_date(row.date_updated)
    return dated


@dataclass(frozen=True)
class Calls:
    """The API calls of one family, answered in Image Builder's shapes; a family's service module
    publishes these bound methods under its own names (``create_infrastructure_configuration``, ...)."""

    family: Family
    create_request: type[Shape]
    update_request: type[Shape]
    mutable: tuple[str, ...]  # what Update replaces
    to_shape: Callable[[Any], Shape]  # row -> the Get answer's shape
    to_summary: Callable[[Any], Shape]  # row -> a List entry

    def put(
        self,
        db: Session,
        request: Shape,
        *,
        on_exists: str = "error",
        account: str = DEFAULT_ACCOUNT,
        region: str = DEFAULT_REGION,
        where: str | None = None,
    ) -> tuple[Any, str]:
        return put(db, self.family, request, on_exists=on_exists, account=account, region=region, where=where)

    def apply_kind(self, kind: str) -> KindHandler:
        """How ``kiln apply`` writes this family: created, or updated in place when changed."""
        from kiln.model.arn import arn_name

        def apply(db: Session, request: Any, ctx: ApplyContext, where: str) -> tuple[str, str]:
            row, status = self.put(db, request, on_exists="update", account=ctx.account, region=ctx.region,
                                   where=where)
            return row.arn, status

        resource_type = self.family.resource_type
        return KindHandler(kind, self.create_request, lambda r: Ref(resource_type, arn_name(r.name)),
                           no_references, apply)

    def create(
        self,
        body: dict[str, Any] | Shape,
        *,
        db: Session | None = None,
        account: str = DEFAULT_ACCOUNT,
        region: str = DEFAULT_REGION,
    ) -> dict[str, Any]:
        request, token = with_client_token(parse_shape(self.create_request, body))
        with unit_of_work(db) as work:
            row, _ = self.put(work, request, account=account, region=region)
            return {"requestId": new_request_id(), "clientToken": token, self.family.arn_field: row.arn}

    def update(
        self, body: dict[str, Any] | Shape, *, db: Session | None = None, caller: str | None = None,
        region: str | None = None,
    ) -> dict[str, Any]:
        request = parse_shape(self.update_request, body)
        token = getattr(request, "clientToken", None) or new_client_token()
        with unit_of_work(db) as work:
            row = update(work, self.family, request, self.mutable, caller, region)
            return {"requestId": new_request_id(), "clientToken": token, self.family.arn_field: row.arn}

    def get(
        self, arn: str, *, db: Session | None = None, caller: str | None = None, region: str | None = None
    ) -> dict[str, Any]:
        with unit_of_work(db) as work:
            row = find(work, self.family, arn, caller, region)
            return {"requestId": new_request_id(), self.family.shape_key: self.to_shape(row).dump()}

    def find(self, db: Session, arn: str) -> Any:
        return find(db, self.family, arn)

    def list_(
        self,
        *,
        name: str | None = None,
        filters: list[dict[str, Any]] | None = None,
        db: Session | None = None,
        account: str = DEFAULT_ACCOUNT,
        region: str | None = None,
    ) -> dict[str, Any]:
        """The List call (the account's in ``region``, or in every region); ``filters`` on name."""
        with unit_of_work(db) as work:
            found = [row for row in rows(work, self.family, account)
                     if (name is None or row.name == name) and in_region(row.arn, region)]
            entries = filter_entries([self.to_summary(row).dump() for row in found], filters, ("name",))
            return {"requestId": new_request_id(), self.family.list_key: entries}

    def delete(
        self, arn: str, *, db: Session | None = None, caller: str | None = None, region: str | None = None
    ) -> dict[str, Any]:
        with unit_of_work(db) as work:
            row = delete(work, self.family, arn, caller, region)
            return {"requestId": new_request_id(), self.family.arn_field: row.arn}
