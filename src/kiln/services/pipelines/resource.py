"""Image pipelines: Create/Update/Get/List/Delete, ListImagePipelineImages, references, tags, ``kind``.

A pipeline is mutable and unversioned in Image Builder. kiln keeps a configuration revision,
``version``: 1 at creation, +1 each time UpdateImagePipeline (or ``kiln apply``) changes the stored
configuration; builds carry it as the ``kiln:PipelineVersion`` tag so an image says which pipeline
configuration made it. Any update resets ``consecutiveFailures``; an update that leaves ``status``
out keeps the current status (it does not re-enable an automatically disabled pipeline).

Starting executions lives in :mod:`kiln.services.pipelines.runs`.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from kiln.db.base import utcnow
from kiln.errors import AlreadyExists, InvalidInput, NotFound
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.model.arn import arn_name, make_arn, parse_arn
from kiln.model.pipeline import (
    APPROVAL_KEY,
    DEFAULT_START_CONDITION,
    DEFAULT_TESTS_TIMEOUT,
    MUTABLE_FIELDS,
    CreateImagePipelineRequest,
    ImagePipeline,
    ImagePipelineDocument,
    UpdateImagePipelineRequest,
)
from kiln.model.shapes import format_date, new_client_token, new_request_id, parse_shape
from kiln.services.common.kinds import ApplyContext, KindHandler, Ref, ref_from_arn
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

    from kiln.db.tables.pipelines import ImagePipelineRow

PIPELINE_FILTERS = (
    "description",
    "distributionConfigurationArn",
    "imageRecipeArn",
    "infrastructureConfigurationArn",
    "name",
    "status",
)
IMAGE_FILTERS = ("name", "version")


def _table() -> type[ImagePipelineRow]:
    from kiln.db.tables.pipelines import ImagePipelineRow

    return ImagePipelineRow


# --- stored configuration ------------------------------------------------------------------------


def recipe_of(db: Session, body: dict[str, Any], field: str | None = None) -> Any:
    """The recipe a pipeline builds: its container recipe (containerRecipeArn) or image recipe."""
    if body.get("containerRecipeArn"):
        from kiln.services.container_recipes.resource import find_container_recipe

        return find_container_recipe(db, body["containerRecipeArn"], field=field or "containerRecipeArn")
    from kiln.services.recipes.resource import find_recipe

    return find_recipe(db, body["imageRecipeArn"], field=field or "imageRecipeArn")


def _normalise(
    db: Session, body: dict[str, Any], where: str | None, account: str = DEFAULT_ACCOUNT
) -> dict[str, Any]:
    """Full ARNs (a short form names ``account``'s resource), referenced resources checked (the
    account's own or Amazon-managed), schedule checked, Image Builder's defaults filled in."""
    from kiln.services.builds.plan import check_usable, own_arn
    from kiln.services.configurations.distribution import find_distribution_configuration
    from kiln.services.configurations.infrastructure import find_infrastructure_configuration
    from kiln.services.pipelines import cron as pipeline_cron

    def at(field: str) -> str:
        return f"{where}: {field}" if where else field

    body = dict(body)
    recipe_field, recipe_type = (("containerRecipeArn", "container-recipe") if body.get("containerRecipeArn")
                                 else ("imageRecipeArn", "image-recipe"))
    kinds = {recipe_field: (recipe_type, recipe_type.replace("-", " ")),
             "infrastructureConfigurationArn": ("infrastructure-configuration", "infrastructure configuration"),
             "distributionConfigurationArn": ("distribution-configuration", "distribution configuration")}
    for key, (resource_type, what) in kinds.items():
        if body.get(key):
            body[key] = own_arn(body[key], resource_type, account)
            check_usable(body[key], account, at(key), what)
    body[recipe_field] = str(parse_arn(body[recipe_field], resource_type=recipe_type, allow_short=True))
    recipe_of(db, body, field=at(recipe_field))
    body["infrastructureConfigurationArn"] = str(
        find_infrastructure_configuration(db, body["infrastructureConfigurationArn"]).arn
    )
    if body.get("distributionConfigurationArn"):
        body["distributionConfigurationArn"] = str(
            find_distribution_configuration(db, body["distributionConfigurationArn"]).arn
        )
    if body.get("workflows"):
        from kiln.services.workflows.configure import check_configurations

        body["workflows"] = check_configurations(body["workflows"], db=db, account=account, field=at("workflows"),
                                                 container=bool(body.get("containerRecipeArn")))
    tests = {"imageTestsEnabled": True, "timeoutMinutes": DEFAULT_TESTS_TIMEOUT}
    body["imageTestsConfiguration"] = {**tests, **(body.get("imageTestsConfiguration") or {})}
    body.setdefault("enhancedImageMetadataEnabled", True)
    schedule = body.get("schedule")
    if schedule:
        schedule = {"pipelineExecutionStartCondition": DEFAULT_START_CONDITION, **schedule}
        body["schedule"] = schedule
        try:
            pipeline_cron.zone(schedule.get("timezone"))
            if schedule.get("scheduleExpression"):
                pipeline_cron.parse(schedule["scheduleExpression"])
        except InvalidInput as error:
            error.location = at(error.location or "schedule")
            raise
    return body


def _find(
    db: Session, arn: str, field: str = "imagePipelineArn", caller: str | None = None, region: str | None = None
) -> ImagePipelineRow:
    """The pipeline ``arn`` names; with ``caller``, only one of that account (a short form names the
    caller's; another account's is not found, its owner never told); with ``region``, only one there
    (a full ARN's own region must agree)."""
    from sqlalchemy import select

    parsed = parse_arn(arn, resource_type="image-pipeline", field=field, allow_short=True)
    parsed = as_caller(arn, parsed, caller, region)
    if not in_region(str(parsed), region):  # told from the ARN alone, whether or not it exists elsewhere
        raise NotFound(f"image pipeline {parsed} does not exist in region {region}", location=field,
                       hint="list pipelines with `kiln pipeline list`")
    table = _table()
    row = db.scalars(select(table).where(table.arn == str(parsed))).first()
    if row is None:
        raise NotFound(f"image pipeline {parsed} does not exist", location=field,
                       hint="list pipelines with `kiln pipeline list`")
    require_visible(row.account, caller, "image pipeline", str(parsed), field,
                    hint="list pipelines with `kiln pipeline list`")
    return row


def find_pipeline(
    db: Session, arn: str, *, caller: str | None = None, region: str | None = None
) -> ImagePipelineRow:
    """The pipeline row an ARN (or ``image-pipeline/NAME``) names (of ``caller`` and in ``region``
    when given); NotFound otherwise."""
    return _find(db, arn, caller=caller, region=region)


def _config(row: ImagePipelineRow) -> dict[str, Any]:
    return {key: value for key, value in row.body.items() if key not in ("status", "tags")}


def _new_config(row: ImagePipelineRow, body: dict[str, Any]) -> dict[str, Any]:
    return {**{key: value for key, value in body.items() if key not in ("status", "tags")}, "name": row.name}


def _differs(row: ImagePipelineRow, body: dict[str, Any]) -> bool:
    status = body.get("status")
    return content_hash(_new_config(row, body)) != content_hash(_config(row)) or bool(
        status and status != row.status
    )


def _apply_update(row: ImagePipelineRow, body: dict[str, Any]) -> bool:
    """Bring ``row`` to ``body`` (status kept when not given); True when the configuration changed."""
    status = body.get("status")
    new_config = _new_config(row, body)
    changed = content_hash(new_config) != content_hash(_config(row))
    if changed:
        row.version += 1
    if status and status != row.status:
        row.status = status
        changed = True
    if row.status == "ENABLED":
        row.status_reason = None
    row.body = {**new_config, "status": row.status, **({"tags": row.tags} if row.tags else {})}
    row.consecutive_failures = 0
    row.date_updated = utcnow()
    return changed


def put_pipeline(
    db: Session,
    request: CreateImagePipelineRequest,
    *,
    on_exists: str = "error",
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
    where: str | None = None,
) -> tuple[ImagePipelineRow, str]:
    """Create, or with ``on_exists="update"`` bring an existing pipeline in line (``kiln apply``).

    Returns (row, "created" | "unchanged" | "updated").
    """
    from sqlalchemy import select

    table = _table()
    body = _normalise(db, content_of(request.dump()), where, account)
    token = request.clientToken
    given = {key: value for key, value in body.items() if key != "status"}
    given["tags"] = given.get("tags")
    previous = replayed(
        db, table, token, content_hash(given), lambda row: content_hash({**_config(row), "tags": row.tags}),
        account=account,
    )
    if previous is not None:
        return previous, "unchanged"
    arn = str(make_arn("image-pipeline", body["name"], region=region, account=account))
    existing = db.scalars(select(table).where(table.arn == arn)).first()
    if existing is not None:
        if on_exists != "update":
            raise AlreadyExists(
                f"image pipeline {arn} already exists", location=where,
                hint="change it with `kiln pipeline update` or `kiln apply`",
            )
        tags = body.get("tags")
        if tags == existing.tags and not _differs(existing, body):
            return existing, "unchanged"
        if getattr(request, "dryRun", None):
            raise DryRunOperation(f"dry run: {arn} would be updated")
        existing.tags = tags
        _apply_update(existing, body)
        db.flush()
        return existing, "updated"
    status = body.get("status") or "ENABLED"
    body["status"] = status
    now = utcnow()
    row = table(
        arn=arn,
        account=account,
        name=body["name"],
        body=body,
        tags=body.get("tags"),
        status=status,
        version=1,
        consecutive_failures=0,
        client_token=token or new_client_token(),
        date_created=now,
    )
    db.add(row)
    db.flush()
    return row, "created"


# --- the API calls -------------------------------------------------------------------------------


def create_image_pipeline(
    body: dict[str, Any] | CreateImagePipelineRequest,
    *,
    db: Session | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    request = parse_shape(CreateImagePipelineRequest, body)
    request, token = with_client_token(request)
    with unit_of_work(db) as work:
        row, _ = put_pipeline(work, request, account=account, region=region)
        return {"requestId": new_request_id(), "clientToken": token, "imagePipelineArn": row.arn}


def update_image_pipeline(
    body: dict[str, Any] | UpdateImagePipelineRequest, *, db: Session | None = None, caller: str | None = None,
    region: str | None = None,
) -> dict[str, Any]:
    """UpdateImagePipeline: replaces every mutable field (PUT semantics); name and tags stay."""
    request = parse_shape(UpdateImagePipelineRequest, body)
    token = request.clientToken or new_client_token()
    with unit_of_work(db) as work:
        row = _find(work, request.imagePipelineArn, caller=caller, region=region)
        given = content_of(request.dump(), "imagePipelineArn")
        body_in = {key: value for key, value in given.items() if key in MUTABLE_FIELDS}
        _apply_update(row, _normalise(work, body_in, None, row.account))
        work.flush()
        return {"requestId": new_request_id(), "clientToken": token, "imagePipelineArn": row.arn}


def to_shape(db: Session, row: ImagePipelineRow) -> dict[str, Any]:
    """The ImagePipeline shape: stored body plus dates, status, counters and the next run."""
    from kiln.db.tables.images import ImageBuild

    shape: dict[str, Any] = {
        **{key: value for key, value in row.body.items() if key != "tags"},
        "arn": row.arn,
        "name": row.name,
        "status": row.status,
        "dateCreated": format_date(row.date_created),
        "consecutiveFailures": row.consecutive_failures,
    }
    if row.tags:
        shape["tags"] = dict(row.tags)
    if row.date_updated:
        shape["dateUpdated"] = format_date(row.date_updated)
    with contextlib.suppress(NotFound):
        shape["platform"] = recipe_of(db, row.body).platform
    if row.date_last_run:
        shape["dateLastRun"] = format_date(row.date_last_run)
    if row.last_image_arn:
        image = db.get(ImageBuild, row.last_image_arn)
        if image is not None:
            shape["lastRunStatus"] = image.status
    next_run = next_run_time(row)
    if next_run is not None:
        shape["dateNextRun"] = format_date(next_run)
    ImagePipeline.model_validate(shape)  # the answer keeps to the published shape
    return shape


def extra_fields(row: ImagePipelineRow) -> dict[str, Any]:
    """kiln's additions to GetImagePipeline (outside the Image Builder shape)."""
    extra: dict[str, Any] = {"kilnPipelineVersion": row.version}
    if row.status_reason:
        extra["kilnStatusReason"] = row.status_reason
    return extra


def next_run_time(row: ImagePipelineRow) -> Any:
    """When the schedule fires next (None without a schedule or when disabled)."""
    from kiln.services.pipelines import cron as pipeline_cron
    schedule = row.body.get("schedule") or {}
    if row.status != "ENABLED" or not schedule.get("scheduleExpression"):
        return None
    return pipeline_cron.next_after(schedule["scheduleExpression"], schedule.get("timezone"), utcnow())


def get_image_pipeline(
    arn: str, *, db: Session | None = None, caller: str | None = None, region: str | None = None
) -> dict[str, Any]:
    with unit_of_work(db) as work:
        row = _find(work, arn, caller=caller, region=region)
        return {"requestId": new_request_id(), "imagePipeline": {**to_shape(work, row), **extra_fields(row)}}


class InvalidPaginationToken(InvalidInput):
    code = "InvalidPaginationTokenException"


def page(entries: list[dict[str, Any]], max_results: int | None, next_token: str | None,
         key: str) -> dict[str, Any]:
    """``{key: one page, nextToken?}``: Image Builder's maxResults (1..25) / nextToken paging."""
    start = 0
    if next_token is not None:
        if not next_token.isdigit() or int(next_token) > len(entries):
            raise InvalidPaginationToken(f"nextToken {next_token!r} is not valid", location="nextToken")
        start = int(next_token)
    if max_results is None:
        return {key: entries[start:]}
    if not 1 <= max_results <= 25:
        raise InvalidInput("maxResults must be between 1 and 25", location="maxResults")
    chunk = entries[start:start + max_results]
    more = start + max_results < len(entries)
    return {key: chunk, **({"nextToken": str(start + max_results)} if more else {})}


def list_image_pipelines(
    *,
    filters: list[dict[str, Any]] | None = None,
    max_results: int | None = None,
    next_token: str | None = None,
    db: Session | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str | None = None,
) -> dict[str, Any]:
    """ListImagePipelines (the account's in ``region``, or in every region); ``filters`` on description,
    the three configuration ARNs, name, status."""
    from sqlalchemy import select

    table = _table()
    with unit_of_work(db) as work:
        rows = work.scalars(select(table).where(table.account == account).order_by(table.name))
        entries = filter_entries([to_shape(work, row) for row in rows if in_region(row.arn, region)], filters,
                                 PIPELINE_FILTERS)
        return {"requestId": new_request_id(), **page(entries, max_results, next_token, "imagePipelineList")}


def delete_image_pipeline(
    arn: str, *, db: Session | None = None, caller: str | None = None, region: str | None = None
) -> dict[str, Any]:
    """DeleteImagePipeline; refused while one of its builds runs. Its execution records go with it."""
    from sqlalchemy import delete

    from kiln.db.tables.pipelines import PipelineExecutionRow

    with unit_of_work(db) as work:
        row = _find(work, arn, caller=caller, region=region)
        refuse_if_in_use(work, parse_arn(row.arn))
        work.execute(delete(PipelineExecutionRow).where(PipelineExecutionRow.pipeline_arn == row.arn))
        work.delete(row)
        return {"requestId": new_request_id(), "imagePipelineArn": row.arn}


def list_image_pipeline_images(
    arn: str,
    *,
    filters: list[dict[str, Any]] | None = None,
    max_results: int | None = None,
    next_token: str | None = None,
    caller: str | None = None,
    region: str | None = None,
) -> dict[str, Any]:
    """ListImagePipelineImages: the images the pipeline built, oldest first; filters on name, version."""
    from kiln.db.engine import session
    from kiln.services.builds import records as images
    with session() as db:
        pipeline_arn = _find(db, arn, caller=caller, region=region).arn
    summaries = []
    for image in images.list_images(pipeline_arn=pipeline_arn):
        summary = {key: image[key] for key in (
            "arn", "name", "type", "version", "platform", "osVersion", "state", "dateCreated",
            "outputResources", "tags", "buildType", "imageSource", "deprecationTime", "lifecycleExecutionId",
        ) if key in image}
        summary["owner"] = parse_arn(pipeline_arn).account
        summaries.append(summary)
    if filters:
        for item in filters:  # the version filter names the semantic version, without the build
            if item.get("name") == "version":
                wanted = {str(value) for value in item.get("values") or []}
                summaries = [s for s in summaries if s["version"] in wanted or s["version"].split("/")[0] in wanted]
        others = [item for item in filters if item.get("name") != "version"]
        summaries = filter_entries(summaries, others, IMAGE_FILTERS)
    return {"requestId": new_request_id(), **page(summaries, max_results, next_token, "imageSummaryList")}


# --- who uses what -------------------------------------------------------------------------------




# --- kiln apply ----------------------------------------------------------------------------------


def request_of(document: ImagePipelineDocument, region: str, where: str | None = None) -> CreateImagePipelineRequest:
    """The CreateImagePipeline body a ``kiln apply`` document stands for: with ``kiln:approval: true``, its
    workflows switched to the managed approval workflow (:mod:`kiln.services.workflows.managed_approval`)."""
    from kiln.services.workflows.managed_approval import with_approval

    body = document.model_dump(mode="json", exclude={"approval"}, exclude_none=True)
    if document.approval:
        at = f"{where}: {APPROVAL_KEY}" if where else APPROVAL_KEY
        body["workflows"] = with_approval(body.get("workflows"), region, where=at,
                                          container=bool(body.get("containerRecipeArn")))
    return parse_shape(CreateImagePipelineRequest, body, where=where)


def switch_approval(body: dict[str, Any], region: str, *, approval: bool = False,
                    where: str = "--approval") -> dict[str, Any]:
    """A command line's CreateImagePipeline/UpdateImagePipeline (or CreateImage) body with the approval switch
    applied: ``--approval``, or the body's own ``kiln:approval`` (an apply document given as the body)."""
    from kiln.services.workflows.managed_approval import with_approval

    body = dict(body)
    given = body.pop(APPROVAL_KEY, None)
    if given is not None and not isinstance(given, bool):
        raise InvalidInput(f"{APPROVAL_KEY} is true or false, not {given!r}", location=APPROVAL_KEY)
    if approval or given:
        body["workflows"] = with_approval(body.get("workflows"), region, where=where if approval else APPROVAL_KEY,
                                          container=bool(body.get("containerRecipeArn")))
    return body


def _apply(db: Session, request: Any, ctx: ApplyContext, where: str) -> tuple[str, str]:
    if isinstance(request, ImagePipelineDocument):
        request = request_of(request, ctx.region, where)
    row, status = put_pipeline(db, request, on_exists="update", account=ctx.account, region=ctx.region, where=where)
    return row.arn, status


def _references(request: CreateImagePipelineRequest) -> list[Ref]:
    refs = [ref_from_arn(request.infrastructureConfigurationArn, "infrastructure-configuration")]
    if request.imageRecipeArn:
        refs.append(ref_from_arn(request.imageRecipeArn, "image-recipe"))
    if request.containerRecipeArn:
        refs.append(ref_from_arn(request.containerRecipeArn, "container-recipe"))
    if request.distributionConfigurationArn:
        refs.append(ref_from_arn(request.distributionConfigurationArn, "distribution-configuration"))
    from kiln.services.workflows.resource import workflow_references

    return refs + workflow_references(request.workflows)


APPLY_KIND = KindHandler(
    "ImagePipeline", ImagePipelineDocument, lambda r: Ref("image-pipeline", arn_name(r.name)), _references, _apply
)
