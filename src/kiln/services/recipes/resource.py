"""Image recipes: create, get, list, delete; components resolved and their parameters checked.

A recipe is immutable like a component. Its ``components`` keep the references as written (full
ARNs, ``x`` wildcards allowed) so builds pick the newest matching component when they run; the
short form ``component/NAME/VERSION`` is stored as the full ARN it means.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kiln.db.base import utcnow
from kiln.errors import InvalidInput, NotFound
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.model.arn import MANAGED_ACCOUNT, arn_name, make_arn, parse_arn
from kiln.model.parent import ParentImage, parse_parent_image
from kiln.model.recipe import CreateImageRecipeRequest, ImageRecipe, ImageRecipeSummary
from kiln.model.shapes import (
    LatestVersionReferences,
    format_date,
    new_client_token,
    new_request_id,
    parse_shape,
)
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
from kiln.services.components.resource import expand_component_reference, resolve_component

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kiln.db.tables.resources import ComponentRow, ImageRecipeRow


def _rows(db: Session, account: str | None = None, arn_name: str | None = None) -> list[ImageRecipeRow]:
    from kiln.db.tables.resources import ImageRecipeRow

    return versioned.version_rows(db, ImageRecipeRow, account, arn_name)


def _version_of(row: ImageRecipeRow) -> tuple[Version, int]:
    return Version(row.major, row.minor, row.patch), 0


def _check_parameters(component: ComponentRow, given: list[dict[str, Any]], field: str) -> None:
    declared = {detail["name"]: detail for detail in component.parameters or []}
    names = []
    for index, parameter in enumerate(given):
        name = parameter["name"]
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise InvalidInput(
                f"component {component.name} {component.version} declares no parameter {name!r} "
                f"(declared: {known})",
                location=f"{field}.parameters[{index}].name",
            )
        if name in names:
            raise InvalidInput(
                f"parameter {name!r} is given twice", location=f"{field}.parameters[{index}].name"
            )
        names.append(name)
        _check_allowed(component, name, parameter.get("value") or [], f"{field}.parameters[{index}].value")
    missing = [
        name for name, detail in declared.items() if "defaultValue" not in detail and name not in names
    ]
    if missing:
        raise InvalidInput(
            f"component {component.name} {component.version} needs a value for "
            f"{', '.join(missing)} (no default)",
            location=f"{field}.parameters",
        )


def _allowed_values(component: ComponentRow, name: str) -> list[str] | None:
    """The ``allowedValues`` the component's document gives parameter ``name`` (as text), if any."""
    import yaml

    try:
        document = yaml.safe_load(component.data) or {}
    except yaml.YAMLError:
        return None
    for entry in document.get("parameters") or [] if isinstance(document, dict) else []:
        spec = entry.get(name) if isinstance(entry, dict) else None
        if isinstance(spec, dict) and isinstance(spec.get("allowedValues"), list):
            # as the document means them: YAML's true is "true", not Python's "True"
            return [str(value).lower() if isinstance(value, bool) else str(value) for value in spec["allowedValues"]]
    return None


def _check_allowed(component: ComponentRow, name: str, values: list[str], location: str) -> None:
    """A value the recipe gives must be one of the parameter's ``allowedValues`` (AWSTOE refuses it at
    run time; Image Builder's recipe names it now)."""
    allowed = _allowed_values(component, name)
    if allowed is None:
        return
    for value in values:
        if value not in allowed:
            raise InvalidInput(
                f"component {component.name} {component.version}: {value!r} is not an allowed value of "
                f"parameter {name!r} (allowed: {', '.join(allowed)})",
                location=location,
            )


def resolve_components(
    db: Session, request: CreateImageRecipeRequest, where: str = "", *, account: str = DEFAULT_ACCOUNT,
    region: str | None = None,
) -> list[dict[str, Any]]:
    """The recipe's component list with full ARNs, each checked to resolve and take its parameters."""
    prefix = f"{where}: " if where else ""
    resolved: list[dict[str, Any]] = []
    has_build = False
    for index, configuration in enumerate(request.components or []):
        field = f"{prefix}components[{index}]"
        full = expand_component_reference(
            db, configuration.componentArn, field=f"{field}.componentArn", account=account, region=region
        )
        try:
            if parse_arn(full, resource_type="component").account not in (account, MANAGED_ACCOUNT):
                # Image Builder shares no components across accounts here: another's is not found.
                raise NotFound(f"no component matches {full}", location=f"{field}.componentArn")
            component = resolve_component(full, db=db, field=f"{field}.componentArn")
        except NotFound as error:
            raise InvalidInput(error.message, location=error.location, hint=error.hint) from None
        given = [parameter.dump() for parameter in configuration.parameters or []]
        _check_parameters(component, given, field)
        has_build = has_build or component.type == "BUILD"
        entry: dict[str, Any] = {"componentArn": full}
        if given:
            entry["parameters"] = given
        resolved.append(entry)
    if not resolved:
        raise InvalidInput("a recipe needs at least one component", location=f"{prefix}components")
    if not has_build:
        raise InvalidInput(
            "a recipe needs at least one build component (a document with a build phase)",
            location=f"{prefix}components",
        )
    return resolved


def _check_watermarks(names: list[str] | None, where: str) -> None:
    """``amiWatermarks``: 1 to 5 distinct watermark names, each as AttachImageWatermark takes it."""
    from kiln.store.watermarks import MAX_PER_IMAGE, NAME

    if names is None:
        return
    if not 1 <= len(names) <= MAX_PER_IMAGE:
        raise InvalidInput(f"give 1 to {MAX_PER_IMAGE} watermark names", location=where)
    for index, name in enumerate(names):
        if not NAME.match(name):
            raise InvalidInput("a watermark name is 3-128 letters, digits, spaces and ( ) [ ] . / - ' @ _",
                               location=f"{where}[{index}]")
        if name in names[:index]:
            raise InvalidInput(f"watermark {name!r} is named twice", location=f"{where}[{index}]")


def put_recipe(
    db: Session,
    request: CreateImageRecipeRequest,
    *,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
    where: str | None = None,
) -> tuple[ImageRecipeRow, str]:
    """Create the recipe unless an identical one exists: (row, "created" | "unchanged" | "updated");
    "updated" means only its tags changed."""
    from kiln.db.tables.resources import ImageRecipeRow

    prefix = f"{where}: " if where else ""
    parse_parent_image(request.parentImage, field=f"{prefix}parentImage")
    _check_watermarks(request.amiWatermarks, f"{prefix}amiWatermarks")
    components = resolve_components(db, request, where or "", account=account)
    version = parse_version(request.semanticVersion)
    body = content_of(request.dump())
    body["components"] = components
    # Tags are not part of a version's content: they may change on an immutable resource.
    digest = content_hash(content_of(body, "tags"))

    arn = make_arn("image-recipe", request.name, version, region=region, account=account)
    answer = versioned.answer_without_new_row(
        db, ImageRecipeRow, request, digest, arn, _rows(db, account, arn.name), _retag,
        label="image recipe", version=version, account=account, where=where,
    )
    if answer is not None:
        return answer
    row = ImageRecipeRow(
        **versioned.key_columns(arn, account, request.name, version),
        platform="Linux",
        owner=owner_of(account),
        description=request.description,
        parent_image=request.parentImage,
        components=components,
        block_device_mappings=body.get("blockDeviceMappings"),
        working_directory=request.workingDirectory,
        tags=request.tags,
        ami_tags=request.amiTags,
        body=body,
        content_hash=digest,
        client_token=request.clientToken or new_client_token(),
        date_created=utcnow(),
    )
    db.add(row)
    db.flush()
    return row, "created"


def _retag(row: ImageRecipeRow, tags: dict[str, str]) -> None:
    row.tags = tags
    row.body = {**row.body, "tags": tags}


def latest_references(db: Session, row: ImageRecipeRow) -> LatestVersionReferences:
    return versioned.latest_references(_rows(db, row.account, row.arn_name), row, _version_of)


def to_image_recipe(row: ImageRecipeRow) -> ImageRecipe:
    body = {key: value for key, value in row.body.items() if key not in ("semanticVersion",)}
    return ImageRecipe.model_validate(
        {
            **body,
            "arn": row.arn,
            "type": "AMI",
            "platform": row.platform,
            "owner": row.owner,
            "version": row.version,
            "dateCreated": format_date(row.date_created),
        }
    )


def to_summary(row: ImageRecipeRow) -> ImageRecipeSummary:
    return ImageRecipeSummary.model_validate(
        {
            "arn": row.arn,
            "name": row.name,
            "platform": row.platform,
            "owner": row.owner,
            "parentImage": row.parent_image,
            "dateCreated": format_date(row.date_created),
            "tags": row.tags or None,
        }
    )


def create_image_recipe(
    body: dict[str, Any] | CreateImageRecipeRequest,
    *,
    db: Session | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    """CreateImageRecipe: the response body (imageRecipeArn, latestVersionReferences)."""
    request = parse_shape(CreateImageRecipeRequest, body)
    request, token = with_client_token(request)
    with unit_of_work(db) as work:
        row, _ = put_recipe(work, request, account=account, region=region)
        return {
            "requestId": new_request_id(),
            "clientToken": token,
            "imageRecipeArn": row.arn,
            "latestVersionReferences": latest_references(work, row).dump(),
        }


def find_recipe(
    db: Session, arn: str, field: str = "imageRecipeArn", caller: str | None = None, region: str | None = None
) -> ImageRecipeRow:
    """The recipe an ARN names; a version filter picks the newest matching version. With ``caller``,
    only that account's (a short form names the caller's; another account's is not found)."""
    parsed = parse_arn(arn, resource_type="image-recipe", field=field, allow_short=True)
    parsed = as_caller(arn, parsed, caller, region)
    require_visible(parsed.account, caller, "image recipe", str(parsed), field)
    found = newest(
        _rows(db, parsed.account, parsed.name),
        parsed.version or VersionFilter((None, None, None)),
        _version_of,
    )
    if found is None:
        raise NotFound(f"image recipe {parsed} does not exist", location=field)
    return found


def get_image_recipe(
    arn: str, *, db: Session | None = None, caller: str | None = None, region: str | None = None
) -> dict[str, Any]:
    with unit_of_work(db) as work:
        row = find_recipe(work, arn, caller=caller, region=region)
        return {
            "requestId": new_request_id(),
            "imageRecipe": to_image_recipe(row).dump(),
            "latestVersionReferences": latest_references(work, row).dump(),
        }


def list_image_recipes(
    *,
    owner: str = "Self",
    name: str | None = None,
    filters: list[dict[str, Any]] | None = None,
    db: Session | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str | None = None,
) -> dict[str, Any]:
    """ListImageRecipes (the account's in ``region``, or in every region); ``filters`` on name,
    parentImage, platform."""
    if owner not in ("Self", "Amazon", "Shared", "ThirdParty", "AWSMarketplace"):
        raise InvalidInput(f"unknown owner {owner!r}", location="owner", hint="use Self or Amazon")
    with unit_of_work(db) as work:
        rows = _rows(work, account) if owner == "Self" else []
        rows = [row for row in rows if (name is None or row.name == name) and in_region(row.arn, region)]
        rows.sort(key=lambda row: (row.arn_name, _version_of(row)))
        entries = [to_summary(row).dump() for row in rows]
        allowed = ("name", "parentImage", "platform")
        return {
            "requestId": new_request_id(),
            "imageRecipeSummaryList": filter_entries(entries, filters, allowed),
        }


def delete_image_recipe(
    arn: str, *, db: Session | None = None, caller: str | None = None, region: str | None = None
) -> dict[str, Any]:
    parsed = parse_arn(arn, resource_type="image-recipe", field="imageRecipeArn", allow_short=True)
    parsed = as_caller(arn, parsed, caller, region)
    if parsed.exact_version is None:
        raise InvalidInput(
            "DeleteImageRecipe needs a concrete version (…/image-recipe/NAME/1.0.0)",
            location="imageRecipeArn",
        )
    with unit_of_work(db) as work:
        row = find_recipe(work, str(parsed), caller=caller)
        refuse_if_in_use(work, parse_arn(row.arn))
        work.delete(row)
        return {"requestId": new_request_id(), "imageRecipeArn": row.arn}


def resolve_parent(recipe: ImageRecipeRow | ImageRecipe | str) -> ParentImage:
    """What the recipe builds on: an AMI id or a bootstrap source as written, or an image ARN/filter
    that the build resolves to the newest matching AVAILABLE image."""
    if isinstance(recipe, str):
        value = recipe
    elif hasattr(recipe, "parent_image"):
        value = recipe.parent_image  # type: ignore[union-attr]
    else:
        value = recipe.parentImage  # type: ignore[union-attr]
    return parse_parent_image(value)




def resolve_recipe_components(
    recipe: ImageRecipeRow, *, db: Session | None = None
) -> list[tuple[ComponentRow, dict[str, list[str]]]]:
    """What a build runs, in order: each referenced component resolved to its newest matching build,
    with the parameter values the recipe gives (names → values; defaults stay with the document)."""
    with unit_of_work(db) as work:
        resolved = []
        for index, entry in enumerate(recipe.components):
            field = f"components[{index}].componentArn"
            component = resolve_component(entry["componentArn"], db=work, field=field)
            values = {item["name"]: list(item["value"]) for item in entry.get("parameters") or []}
            resolved.append((component, values))
        return resolved


def _apply(db: Session, request: Any, ctx: ApplyContext, where: str) -> tuple[str, str]:
    row, status = put_recipe(db, request, account=ctx.account, region=ctx.region, where=where)
    return row.arn, status


APPLY_KIND = KindHandler(
    "ImageRecipe",
    CreateImageRecipeRequest,
    lambda r: Ref("image-recipe", arn_name(r.name), r.semanticVersion),
    lambda r: [ref_from_arn(c.componentArn, "component") for c in r.components or []],
    _apply,
)
