"""Container recipes: create, get, list, delete (CreateContainerRecipe and friends).

A container recipe is immutable like an image recipe. Its Dockerfile template is checked when the
recipe is created (``dockerfile.parse``) and kept as given; ``dockerfileTemplateUri`` is read then
(``file:`` or ``s3:``, as component URIs) and answered as ``dockerfileTemplateData``, as Image Builder
does. ``instanceConfiguration``, ``platformOverride``, ``imageOsVersionOverride`` and ``kmsKeyId`` are
kept and answered but change nothing: kiln builds in its own sandboxes, unencrypted.

``parentImage`` is an AMI id, an Image Builder image ARN (with ``x`` wildcards; the newest AVAILABLE
image's container output, or its AMI), ``oci:<ref>`` (an image of the region's OCI layout by its ref
name, e.g. a container image kiln built, ``oci:web:1.0.0-1``), or anything an image recipe's parent
may be (an SSM parameter, a bootstrap source).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.db.base import utcnow
from kiln.errors import InvalidInput, NotFound
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.model.arn import arn_name, make_arn, parse_arn
from kiln.model.container_recipe import ContainerRecipe, ContainerRecipeSummary, CreateContainerRecipeRequest
from kiln.model.parent import parse_parent_image
from kiln.model.shapes import format_date, new_client_token, new_request_id, parse_shape
from kiln.model.versions import Version, VersionFilter, newest, parse_version
from kiln.services.common import versioned
from kiln.services.common.kinds import ApplyContext, KindHandler, Ref, ref_from_arn
from kiln.services.common.owners import as_caller, in_region, require_visible
from kiln.services.common.references import refuse_if_in_use
from kiln.services.common.unit import (
    content_hash,
    content_of,
    filter_entries,
    owner_of,
    unit_of_work,
    with_client_token,
)
from kiln.services.container_recipes import dockerfile
from kiln.services.recipes.resource import resolve_components

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kiln.db.tables.containers import ContainerRecipeRow

OCI_PREFIX = "oci:"
# ECR's repository names; the name and the tag make the image's ref name in the OCI layout.
REPOSITORY_NAME = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")


def _rows(db: Session, account: str | None = None, name: str | None = None) -> list[ContainerRecipeRow]:
    from kiln.db.tables.containers import ContainerRecipeRow

    return versioned.version_rows(db, ContainerRecipeRow, account, name)


def _version_of(row: ContainerRecipeRow) -> tuple[Version, int]:
    return Version(row.major, row.minor, row.patch), 0


def check_parent(value: str, field: str = "parentImage") -> None:
    """A parent a container build can start from (resolved at build time)."""
    if value.strip().startswith(OCI_PREFIX):
        if not value.strip()[len(OCI_PREFIX):]:
            raise InvalidInput(f"parentImage {value!r} names no image", location=field,
                               hint="oci:<ref name in the region's OCI layout>, e.g. oci:web:1.0.0-1")
        return
    parse_parent_image(value, field=field)


def template_of(request: CreateContainerRecipeRequest, where: str, base_dir: Path | None = None) -> str:
    """The Dockerfile template: the inline data, or what the uri holds (exactly one of them)."""
    from kiln.services.components.sources import load_component_data

    prefix = f"{where}: " if where else ""
    if (request.dockerfileTemplateData is None) == (request.dockerfileTemplateUri is None):
        raise InvalidInput("give exactly one of dockerfileTemplateData or dockerfileTemplateUri",
                           location=f"{prefix}dockerfileTemplateData")
    if request.dockerfileTemplateData is not None:
        return request.dockerfileTemplateData
    try:
        return load_component_data(request.dockerfileTemplateUri or "", base_dir=base_dir)
    except InvalidInput as error:
        error.location = f"{prefix}dockerfileTemplateUri"
        raise


def put_container_recipe(
    db: Session,
    request: CreateContainerRecipeRequest,
    *,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
    where: str | None = None,
    base_dir: Path | None = None,
) -> tuple[ContainerRecipeRow, str]:
    """Create the recipe unless an identical one exists: (row, "created" | "unchanged" | "updated")."""
    from kiln.db.tables.containers import ContainerRecipeRow

    prefix = f"{where}: " if where else ""
    check_parent(request.parentImage, f"{prefix}parentImage")
    if not REPOSITORY_NAME.match(request.targetRepository.repositoryName) or \
            len(request.targetRepository.repositoryName) > 256:
        raise InvalidInput(
            f"{request.targetRepository.repositoryName!r} is not a repository name",
            location=f"{prefix}targetRepository.repositoryName",
            hint="lower-case letters and digits separated by . _ - or /, e.g. team/web (at most 256)",
        )
    template = template_of(request, where or "", base_dir)
    field = "dockerfileTemplateData" if request.dockerfileTemplateData is not None else "dockerfileTemplateUri"
    dockerfile.parse(template, f"{prefix}{field}")
    components = resolve_components(db, request, where or "", account=account)  # type: ignore[arg-type]
    version = parse_version(request.semanticVersion)
    body = content_of(request.dump())
    body["components"] = components
    body.pop("dockerfileTemplateUri", None)
    body["dockerfileTemplateData"] = template
    digest = content_hash(content_of(body, "tags"))

    arn = make_arn("container-recipe", request.name, version, region=region, account=account)
    answer = versioned.answer_without_new_row(
        db, ContainerRecipeRow, request, digest, arn, _rows(db, account, arn.name), _retag,
        label="container recipe", version=version, account=account, where=where,
    )
    if answer is not None:
        return answer
    row = ContainerRecipeRow(
        **versioned.key_columns(arn, account, request.name, version),
        platform=request.platformOverride or "Linux",
        owner=owner_of(account),
        parent_image=request.parentImage,
        repository_name=request.targetRepository.repositoryName,
        components=components,
        dockerfile=template,
        working_directory=request.workingDirectory,
        tags=request.tags,
        body=body,
        content_hash=digest,
        client_token=request.clientToken or new_client_token(),
        date_created=utcnow(),
    )
    db.add(row)
    db.flush()
    return row, "created"


def _retag(row: ContainerRecipeRow, tags: dict[str, str]) -> None:
    row.tags = tags
    row.body = {**row.body, "tags": tags}


def create_container_recipe(
    body: dict[str, Any] | CreateContainerRecipeRequest,
    *,
    db: Session | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    """CreateContainerRecipe: the response body (containerRecipeArn, latestVersionReferences)."""
    request = parse_shape(CreateContainerRecipeRequest, body)
    request, token = with_client_token(request)
    with unit_of_work(db) as work:
        row, _ = put_container_recipe(work, request, account=account, region=region)
        return {
            "requestId": new_request_id(),
            "clientToken": token,
            "containerRecipeArn": row.arn,
            "latestVersionReferences": _latest(work, row),
        }


def _latest(db: Session, row: ContainerRecipeRow) -> dict[str, Any]:
    return versioned.latest_references(_rows(db, row.account, row.arn_name), row, _version_of).dump()


def to_container_recipe(row: ContainerRecipeRow) -> dict[str, Any]:
    # The request's overrides are not part of the ContainerRecipe shape (platformOverride is its platform).
    body = {key: value for key, value in row.body.items() if key in ContainerRecipe.model_fields}
    return ContainerRecipe.model_validate({
        **body, "arn": row.arn, "platform": row.platform, "owner": row.owner, "version": row.version,
        "encrypted": False, "dateCreated": format_date(row.date_created),
    }).dump()


def find_container_recipe(
    db: Session, arn: str, field: str = "containerRecipeArn", caller: str | None = None, region: str | None = None
) -> ContainerRecipeRow:
    """The recipe an ARN names (a version filter: the newest match); with ``caller``, only its own."""
    parsed = parse_arn(arn, resource_type="container-recipe", field=field, allow_short=True)
    parsed = as_caller(arn, parsed, caller, region)
    require_visible(parsed.account, caller, "container recipe", str(parsed), field)
    found = newest(_rows(db, parsed.account, parsed.name), parsed.version or VersionFilter((None, None, None)),
                   _version_of)
    if found is None:
        raise NotFound(f"container recipe {parsed} does not exist", location=field,
                       hint="list them with `kiln container-recipe list`")
    return found


def get_container_recipe(
    arn: str, *, db: Session | None = None, caller: str | None = None, region: str | None = None
) -> dict[str, Any]:
    with unit_of_work(db) as work:
        row = find_container_recipe(work, arn, caller=caller, region=region)
        return {"requestId": new_request_id(), "containerRecipe": to_container_recipe(row),
                "latestVersionReferences": _latest(work, row)}


def get_container_recipe_policy(
    arn: str, *, db: Session | None = None, caller: str | None = None, region: str | None = None
) -> dict[str, Any]:
    """GetContainerRecipePolicy: kiln shares no container recipes, so no recipe has a policy."""
    with unit_of_work(db) as work:
        row = find_container_recipe(work, arn, caller=caller, region=region)
    raise NotFound(f"container recipe {row.arn} has no resource policy", location="containerRecipeArn")


def list_container_recipes(
    *,
    owner: str = "Self",
    name: str | None = None,
    filters: list[dict[str, Any]] | None = None,
    db: Session | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str | None = None,
) -> dict[str, Any]:
    """ListContainerRecipes; ``filters`` on containerType, name, parentImage, platform."""
    if owner not in ("Self", "Amazon", "Shared", "ThirdParty", "AWSMarketplace"):
        raise InvalidInput(f"unknown owner {owner!r}", location="owner", hint="use Self or Amazon")
    with unit_of_work(db) as work:
        rows = _rows(work, account) if owner == "Self" else []
        rows = [row for row in rows if (name is None or row.name == name) and in_region(row.arn, region)]
        rows.sort(key=lambda row: (row.arn_name, _version_of(row)))
        entries = [
            ContainerRecipeSummary.model_validate({
                "arn": row.arn, "name": row.name, "platform": row.platform, "owner": row.owner,
                "parentImage": row.parent_image, "dateCreated": format_date(row.date_created),
                "tags": row.tags or None,
            }).dump()
            for row in rows
        ]
        allowed = ("containerType", "name", "parentImage", "platform")
        return {"requestId": new_request_id(),
                "containerRecipeSummaryList": filter_entries(entries, filters, allowed)}


def delete_container_recipe(
    arn: str, *, db: Session | None = None, caller: str | None = None, region: str | None = None
) -> dict[str, Any]:
    parsed = parse_arn(arn, resource_type="container-recipe", field="containerRecipeArn", allow_short=True)
    parsed = as_caller(arn, parsed, caller, region)
    if parsed.exact_version is None:
        raise InvalidInput("DeleteContainerRecipe needs a concrete version (…/container-recipe/NAME/1.0.0)",
                           location="containerRecipeArn")
    with unit_of_work(db) as work:
        row = find_container_recipe(work, str(parsed), caller=caller)
        refuse_if_in_use(work, parse_arn(row.arn))
        work.delete(row)
        return {"requestId": new_request_id(), "containerRecipeArn": row.arn}


def _apply(db: Session, request: Any, ctx: ApplyContext, where: str) -> tuple[str, str]:
    row, status = put_container_recipe(db, request, account=ctx.account, region=ctx.region, where=where,
                                       base_dir=ctx.base_dir)
    return row.arn, status


APPLY_KIND = KindHandler(
    "ContainerRecipe",
    CreateContainerRecipeRequest,
    lambda r: Ref("container-recipe", arn_name(r.name), r.semanticVersion),
    lambda r: [ref_from_arn(c.componentArn, "component") for c in r.components or []],
    _apply,
)
