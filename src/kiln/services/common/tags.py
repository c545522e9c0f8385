"""TagResource / UntagResource / ListTagsForResource for every taggable Image Builder resource.

Tags may change even on immutable versions (components, recipes). ``_builtin`` names the table of
every taggable resource type; a row class needs ``arn`` and a JSON ``tags`` column.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from kiln.errors import NotFound
from kiln.model.arn import MANAGED_ACCOUNT, parse_arn
from kiln.model.shapes import Shape, TagKey, TagMap, new_request_id, parse_shape
from kiln.services.common.owners import as_caller, in_region, require_visible
from kiln.services.common.unit import unit_of_work

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


class TagResourceRequest(Shape):
    resourceArn: str
    tags: TagMap


class UntagResourceRequest(Shape):
    resourceArn: str
    tagKeys: Annotated[list[TagKey], Field(min_length=1, max_length=50)]


def _builtin() -> dict[str, Callable[[], type[Any]]]:
    from kiln.db.tables import pipelines, resources, workflows

    return {
        **{f"workflow/{kind}": lambda: workflows.WorkflowRow for kind in ("build", "test", "distribution")},
        "image-pipeline": lambda: pipelines.ImagePipelineRow,
        "component": lambda: resources.ComponentRow,
        "image-recipe": lambda: resources.ImageRecipeRow,
        "infrastructure-configuration": lambda: resources.InfrastructureConfigurationRow,
        "distribution-configuration": lambda: resources.DistributionConfigurationRow,
    }


def _row(db: Session, arn: str, caller: str | None = None, *, change: bool = False, region: str | None = None
         ) -> Any:
    """The tagged resource; another account's is not found (Amazon-managed ones may be read, not changed),
    and with ``region`` one of another region is not found either (a short form names the caller's own
    resource there), as a regional endpoint answers."""
    from sqlalchemy import select

    parsed = as_caller(arn, parse_arn(arn, field="resourceArn", allow_short=True), caller, region)
    tables = _builtin()
    if parsed.resource_type not in tables:
        raise NotFound(f"{parsed.resource_type} resources cannot be tagged here", location="resourceArn")
    if parsed.account != MANAGED_ACCOUNT and not in_region(str(parsed), region):
        raise NotFound(f"{parsed} does not exist in region {region}", location="resourceArn")
    require_visible(parsed.account, caller, parsed.resource_type, str(parsed), "resourceArn",
                    readable=() if change else (MANAGED_ACCOUNT,))
    table = tables[parsed.resource_type]()
    row = db.scalars(select(table).where(table.arn == str(parsed))).first()
    if row is None:
        raise NotFound(f"{parsed} does not exist", location="resourceArn")
    return row


def _store(row: Any, tags: dict[str, str]) -> None:
    row.tags = tags or None
    body = getattr(row, "body", None)
    if isinstance(body, dict):  # Get* answers from the stored body
        row.body = {**{k: v for k, v in body.items() if k != "tags"}, **({"tags": tags} if tags else {})}


def tag_resource(body: dict[str, Any], *, caller: str | None = None, db: Session | None = None,
                 region: str | None = None) -> dict[str, Any]:
    request = parse_shape(TagResourceRequest, body)
    with unit_of_work(db) as work:
        row = _row(work, request.resourceArn, caller, change=True, region=region)
        _store(row, {**(row.tags or {}), **request.tags})
    return {}


def untag_resource(body: dict[str, Any], *, caller: str | None = None, db: Session | None = None,
                   region: str | None = None) -> dict[str, Any]:
    request = parse_shape(UntagResourceRequest, body)
    with unit_of_work(db) as work:
        row = _row(work, request.resourceArn, caller, change=True, region=region)
        _store(row, {k: v for k, v in (row.tags or {}).items() if k not in request.tagKeys})
    return {}


def list_tags_for_resource(arn: str, *, caller: str | None = None, db: Session | None = None,
                           region: str | None = None) -> dict[str, Any]:
    with unit_of_work(db) as work:
        return {"requestId": new_request_id(), "tags": dict(_row(work, arn, caller, region=region).tags or {})}
