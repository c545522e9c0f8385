"""Workflows: CreateWorkflow, GetWorkflow, ListWorkflows, ListWorkflowBuildVersions, DeleteWorkflow,
and resolving a ``workflowArn`` (version with ``x`` wildcards, or build) to one workflow build.

Versions are immutable, as for components: the same name+version with the same content answers the
existing build (``kiln apply`` is idempotent); different content is refused. ARNs:
``arn:aws:imagebuilder:<region>:<account>:workflow/<build|test|distribution>/<name>/<version>/<build>``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.db.base import utcnow
from kiln.errors import Forbidden, InvalidInput, NotFound
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.model.arn import MANAGED_ACCOUNT, Arn, arn_name, make_arn, parse_arn
from kiln.model.shapes import LatestVersionReferences, format_date, new_client_token, new_request_id, parse_shape
from kiln.model.versions import Version, VersionFilter, newest, parse_version
from kiln.model.workflow import CreateWorkflowRequest
from kiln.services.common import versioned
from kiln.services.common.kinds import ApplyContext, KindHandler, Ref, no_references, ref_from_arn
from kiln.services.common.owners import as_caller, in_region, require_visible, visible
from kiln.services.common.references import refuse_if_in_use
from kiln.services.common.unit import (
    content_hash,
    content_of,
    filter_entries,
    owner_of,
    unit_of_work,
    with_client_token,
)
from kiln.services.components.sources import load_component_data
from kiln.services.workflows.document import check_document, declared_parameters

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kiln.db.tables.workflows import WorkflowRow

TYPES = ("BUILD", "TEST", "DISTRIBUTION")


def resource_type(workflow_type: str) -> str:
    return f"workflow/{workflow_type.lower()}"


def _rows(db: Session, account: str | None, workflow_type: str | None = None,
          name: str | None = None) -> list[WorkflowRow]:
    from sqlalchemy import select

    from kiln.db.tables.workflows import WorkflowRow

    query = select(WorkflowRow)
    if account is not None:
        query = query.where(WorkflowRow.account == account)
    if workflow_type is not None:
        query = query.where(WorkflowRow.type == workflow_type)
    if name is not None:
        query = query.where(WorkflowRow.arn_name == name)
    return list(db.scalars(query.order_by(WorkflowRow.id)))


def _version_of(row: WorkflowRow) -> tuple[Version, int]:
    return Version(row.major, row.minor, row.patch), row.build


def _retag(row: WorkflowRow, tags: dict[str, str]) -> None:
    row.tags = tags


def latest_references(db: Session, row: WorkflowRow) -> LatestVersionReferences:
    return versioned.latest_references(_rows(db, row.account, row.type, row.arn_name), row, _version_of)


def to_workflow(row: WorkflowRow) -> dict[str, Any]:
    """The Workflow shape of GetWorkflow."""
    shape: dict[str, Any] = {
        "arn": row.arn, "name": row.name, "version": row.version, "type": row.type, "owner": row.owner,
        "data": row.data, "dateCreated": format_date(row.date_created),
        "parameters": row.parameters or [],
    }
    for key, value in (("description", row.description), ("changeDescription", row.change_description),
                       ("kmsKeyId", row.kms_key_id), ("tags", row.tags)):
        if value:
            shape[key] = value
    return shape


def _summary(row: WorkflowRow) -> dict[str, Any]:
    shape = {key: value for key, value in to_workflow(row).items() if key not in ("data", "parameters", "kmsKeyId")}
    return shape


def _version_entry(row: WorkflowRow) -> dict[str, Any]:
    entry = {"arn": row.arn.rsplit("/", 1)[0], "name": row.name, "version": row.version, "type": row.type,
             "owner": row.owner, "dateCreated": format_date(row.date_created)}
    if row.description:
        entry["description"] = row.description
    return entry


def put_workflow(
    db: Session, request: CreateWorkflowRequest, *, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION,
    base_dir: Path | None = None, where: str | None = None, owner: str | None = None,
) -> tuple[WorkflowRow, str]:
    """Create the workflow unless an identical one exists: (row, "created" | "unchanged" | "updated")."""
    from kiln.db.tables.workflows import WorkflowRow

    field = f"{where}: " if where else ""
    data = request.data if request.data is not None else load_component_data(request.uri or "", base_dir=base_dir)
    document = check_document(data, workflow_type=request.type,
                              where=f"{field}{'data' if request.data is not None else request.uri}")
    version = parse_version(request.semanticVersion)
    content = content_of(request.dump(), "data", "uri", "tags")
    content["documentHash"] = content_hash(data)
    digest = content_hash(content)
    arn = make_arn(resource_type(request.type), request.name, version, 1, region=region, account=account)
    answer = versioned.answer_without_new_row(
        db, WorkflowRow, request, digest, arn, _rows(db, account, request.type, arn.name), _retag,
        label="workflow", version=version, account=account, where=where,
    )
    if answer is not None:
        return answer
    row = WorkflowRow(
        **versioned.key_columns(arn, account, request.name, version),
        build=1, type=request.type, owner=owner or owner_of(account), description=request.description,
        change_description=request.changeDescription, data=data, uri=request.uri,
        parameters=declared_parameters(document), tags=request.tags, kms_key_id=request.kmsKeyId,
        content_hash=digest, client_token=request.clientToken or new_client_token(), date_created=utcnow(),
    )
    db.add(row)
    db.flush()
    return row, "created"


def create_workflow(
    body: dict[str, Any] | CreateWorkflowRequest, *, db: Session | None = None, account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION, base_dir: Path | None = None,
) -> dict[str, Any]:
    """CreateWorkflow: ``{clientToken, workflowBuildVersionArn}``."""
    request = parse_shape(CreateWorkflowRequest, body)
    request, token = with_client_token(request)
    with unit_of_work(db) as work:
        row, _ = put_workflow(work, request, account=account, region=region, base_dir=base_dir)
        return {"requestId": new_request_id(), "clientToken": token, "workflowBuildVersionArn": row.arn,
                "latestVersionReferences": latest_references(work, row).dump()}


def resolve_workflow(
    reference: str, *, db: Session | None = None, field: str = "workflowArn", caller: str | None = None,
    region: str | None = None,
) -> WorkflowRow:
    """The workflow build a reference means now: a build ARN, or the newest build of the newest
    version matching a version ARN with ``x`` wildcards; the caller's own or an Amazon-managed one."""
    with unit_of_work(db) as work:
        arn = parse_arn(reference, resource_type=None, field=field, allow_short=True)
        if not arn.resource_type.startswith("workflow/"):
            raise InvalidInput(f"{reference!r} is not a workflow ARN", location=field)
        if not reference.strip().startswith("arn:") and caller is not None:
            arn = Arn(arn.resource_type, arn.name, arn.version, arn.build, region=region or arn.region,
                      account=caller)
            if not _rows(work, caller, arn.resource_type.split("/")[1].upper(), arn.name):
                arn = Arn(arn.resource_type, arn.name, arn.version, arn.build, region=arn.region,
                          account=MANAGED_ACCOUNT)
        workflow_type = arn.resource_type.split("/")[1].upper()
        candidates = (_rows(work, arn.account, workflow_type, arn.name)
                      if visible(arn.account, caller, (MANAGED_ACCOUNT,)) else [])
        if arn.build is not None:
            candidates = [row for row in candidates if row.build == arn.build]
        found = newest(candidates, arn.version or VersionFilter((None, None, None)), _version_of)
        if found is None:
            raise NotFound(f"no workflow matches {arn}", location=field,
                           hint="list workflows with: kiln workflow list --owner Self (or Amazon)")
        return found


def get_workflow(arn: str, *, db: Session | None = None, caller: str | None = None,
                 region: str | None = None) -> dict[str, Any]:
    """GetWorkflow: ``{workflow}``."""
    with unit_of_work(db) as work:
        row = resolve_workflow(arn, db=work, field="workflowBuildVersionArn", caller=caller, region=region)
        return {"requestId": new_request_id(), "workflow": to_workflow(row),
                "latestVersionReferences": latest_references(work, row).dump()}


def list_workflows(
    *, owner: str = "Self", by_name: bool = False, filters: list[dict[str, Any]] | None = None,
    db: Session | None = None, account: str = DEFAULT_ACCOUNT, region: str | None = None,
) -> dict[str, Any]:
    """ListWorkflows: one WorkflowVersion per version (``byName``: the newest of each name); filters
    on name, version, type."""
    if owner not in ("Self", "Amazon", "Shared", "ThirdParty", "AWSMarketplace"):
        raise InvalidInput(f"unknown owner {owner!r}", location="owner", hint="use Self or Amazon")
    with unit_of_work(db) as work:
        scope = {"Self": account, "Amazon": MANAGED_ACCOUNT}.get(owner)
        rows = [row for row in (_rows(work, scope) if scope else [])
                if row.account == MANAGED_ACCOUNT or in_region(row.arn, region)]
        newest_build: dict[tuple[str, str, str, str], WorkflowRow] = {}
        for row in rows:
            key = (row.account, row.type, row.arn_name, row.version)
            if key not in newest_build or row.build > newest_build[key].build:
                newest_build[key] = row
        chosen = sorted(newest_build.values(), key=lambda row: (row.type, row.arn_name, _version_of(row)))
        if by_name:
            latest: dict[tuple[str, str, str], WorkflowRow] = {}
            for row in chosen:
                latest[(row.account, row.type, row.arn_name)] = row
            chosen = list(latest.values())
        entries = [_version_entry(row) for row in chosen]
        return {"requestId": new_request_id(),
                "workflowVersionList": filter_entries(entries, filters, ("name", "version", "type"))}


def list_workflow_build_versions(version_arn: str, *, db: Session | None = None,
                                 caller: str | None = None) -> dict[str, Any]:
    """ListWorkflowBuildVersions: every build of one version (``…/workflow/build/NAME/1.0.0``)."""
    parsed = parse_arn(version_arn, field="workflowVersionArn", allow_short=True)
    if not parsed.resource_type.startswith("workflow/") or parsed.exact_version is None or parsed.build is not None:
        raise InvalidInput("give a workflow version ARN (…/workflow/build/NAME/1.0.0)", location="workflowVersionArn")
    parsed = as_caller(version_arn, parsed, caller)
    with unit_of_work(db) as work:
        owned = (_rows(work, parsed.account, parsed.resource_type.split("/")[1].upper(), parsed.name)
                 if visible(parsed.account, caller, (MANAGED_ACCOUNT,)) else [])
        rows = [row for row in owned if _version_of(row)[0] == parsed.exact_version]
        return {"requestId": new_request_id(),
                "workflowSummaryList": [_summary(row) for row in sorted(rows, key=lambda row: row.build)]}


def delete_workflow(arn: str, *, db: Session | None = None, caller: str | None = None,
                    region: str | None = None) -> dict[str, Any]:
    """DeleteWorkflow (build ARN): refused for managed workflows and while a pipeline or an image
    being built uses it."""
    from sqlalchemy import select

    from kiln.db.tables.workflows import WorkflowRow

    parsed = parse_arn(arn, field="workflowBuildVersionArn", allow_short=True)
    if not parsed.resource_type.startswith("workflow/"):
        raise InvalidInput(f"{arn!r} is not a workflow ARN", location="workflowBuildVersionArn")
    parsed = as_caller(arn, parsed, caller, region)
    if parsed.build is None:
        raise InvalidInput("DeleteWorkflow needs a build version ARN (…/workflow/build/NAME/1.0.0/1)",
                           location="workflowBuildVersionArn")
    if parsed.account == MANAGED_ACCOUNT:
        raise Forbidden(f"{parsed} is an Amazon-managed workflow and cannot be deleted")
    require_visible(parsed.account, caller, "workflow", str(parsed), "workflowBuildVersionArn")
    with unit_of_work(db) as work:
        row = work.scalars(select(WorkflowRow).where(WorkflowRow.arn == str(parsed))).first()
        if row is None:
            raise NotFound(f"workflow {parsed} does not exist", location="workflowBuildVersionArn")
        refuse_if_in_use(work, parsed)
        work.delete(row)
        return {"requestId": new_request_id(), "workflowBuildVersionArn": row.arn}


def workflow_references(configurations: list[Any] | None) -> list[Ref]:
    """What a request's ``workflows`` refer to, for ``kiln apply``'s order (a Workflow document first)."""
    refs = []
    for entry in configurations or []:
        arn = entry.workflowArn if hasattr(entry, "workflowArn") else str(entry.get("workflowArn", ""))
        with contextlib.suppress(InvalidInput):
            refs.append(ref_from_arn(arn, parse_arn(arn, allow_short=True).resource_type))
    return refs


def _apply(db: Session, request: Any, ctx: ApplyContext, where: str) -> tuple[str, str]:
    row, status = put_workflow(db, request, account=ctx.account, region=ctx.region, base_dir=ctx.base_dir,
                               where=where)
    return row.arn, status


APPLY_KIND = KindHandler(
    "Workflow",
    CreateWorkflowRequest,
    lambda r: Ref(resource_type(r.type), arn_name(r.name), r.semanticVersion),
    no_references,
    _apply,
)
