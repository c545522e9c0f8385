"""Lifecycle policies and executions in the database: Image Builder's Create/Update/Get/List/Delete
LifecyclePolicy and Get/List LifecycleExecution(s|Resources), returning the API shapes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kiln.db.base import utcnow
from kiln.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.model.lifecycle import (
    EXECUTION_ID,
    LIFECYCLE_POLICY_ARN,
    CreateLifecyclePolicyRequest,
    ExecutionState,
    ExecutionStatus,
    LifecycleExecution,
    LifecycleExecutionResource,
    LifecyclePolicy,
    LifecyclePolicySummary,
    PolicyStatus,
    ResourceAction,
    ResourceActionName,
    ResourceState,
    ResourceStatus,
    SnapshotResource,
    UpdateLifecyclePolicyRequest,
    normalized_name,
    parse,
    policy_arn,
)
from kiln.services.common.kinds import KindHandler, Ref, no_references

_BODY_FIELDS = ("executionRole", "policyDetails", "resourceSelection")
_ACTIVE = [
    s.value for s in (ExecutionStatus.IN_PROGRESS, ExecutionStatus.PENDING, ExecutionStatus.CANCELLING)
]


def _row_to_policy(row: Any) -> LifecyclePolicy:
    return LifecyclePolicy.model_validate(
        {
            "arn": row.arn,
            "name": row.name,
            "description": row.description,
            "status": row.status,
            "resourceType": row.resource_type,
            **row.body,
            "dateCreated": row.date_created,
            "dateUpdated": row.date_updated,
            "dateLastRun": row.date_last_run,
            "tags": row.tags or None,
        }
    )


def _body(request: CreateLifecyclePolicyRequest | UpdateLifecyclePolicyRequest) -> dict[str, Any]:
    data = request.model_dump(mode="json", exclude_none=True)
    return {k: data[k] for k in _BODY_FIELDS}


def scope(arn: str) -> tuple[str, str]:
    """(account, region) of a lifecycle policy (or image) ARN: where it lives and whose it is."""
    parts = arn.split(":", 5)
    return parts[4], parts[3]


def where(arn: str) -> str:
    """``in account A, region R``: how every refusal about a policy names its place."""
    account, region = scope(arn)
    return f"in account {account}, region {region}"


def _check_regions(
    request: CreateLifecyclePolicyRequest | UpdateLifecyclePolicyRequest, account: str, region: str
) -> None:
    """The policy's own region, and every region an exclusion rule names, must exist in kiln."""
    from kiln.services.accounts.regions import list_regions

    known = {r["RegionName"] for r in list_regions()}
    if region not in known:
        raise InvalidInput(
            f"lifecycle policy {_request_name(request)} in account {account}: region {region} does not exist",
            location="--region",
            hint=f"kiln region create {region}",
        )
    for i, detail in enumerate(request.policyDetails):
        amis = detail.exclusionRules.amis if detail.exclusionRules else None
        for j, name in enumerate((amis.regions or []) if amis else []):
            if name not in known:
                raise InvalidInput(
                    f"lifecycle policy {_request_name(request)} in account {account}, region {region}: "
                    f"exclusion region {name} does not exist",
                    location=f"policyDetails[{i}].exclusionRules.amis.regions[{j}]",
                    hint=f"kiln region create {name}, or remove it from the exclusion",
                )


def _request_name(request: CreateLifecyclePolicyRequest | UpdateLifecyclePolicyRequest) -> str:
    return getattr(request, "name", None) or getattr(request, "lifecyclePolicyArn", "")


def _check_arn(arn: str) -> None:
    if not LIFECYCLE_POLICY_ARN.match(arn):
        raise InvalidInput(
            f"{arn!r} is not a lifecycle policy ARN",
            location="lifecyclePolicyArn",
            hint="expected arn:aws:imagebuilder:<region>:<account>:lifecycle-policy/<name>",
        )


def create_policy(
    body: Mapping[str, Any] | CreateLifecyclePolicyRequest,
    *,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> str:
    """CreateLifecyclePolicy in ``account`` and ``region``: returns the new ARN (the same ARN again for a
    repeated clientToken). The policy acts on that account's images built in that region."""
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.lifecycle import LifecyclePolicyRow

    request = (
        body
        if isinstance(body, CreateLifecyclePolicyRequest)
        else parse(CreateLifecyclePolicyRequest, dict(body))
    )
    _check_regions(request, account, region)
    arn = policy_arn(request.name, account=account, region=region)
    with session() as db:
        existing = db.scalars(select(LifecyclePolicyRow).where(LifecyclePolicyRow.arn == arn)).first()
        if existing is not None:
            if existing.client_token == request.clientToken:
                return arn
            raise AlreadyExists(
                f"lifecycle policy {arn} already exists {where(arn)}",
                hint="names differing only in case, spaces or underscores are the same name; use update",
            )
        if request.dryRun:
            return arn
        db.add(
            LifecyclePolicyRow(
                arn=arn,
                name=request.name,
                description=request.description,
                status=(request.status or PolicyStatus.ENABLED).value,
                resource_type=request.resourceType.value,
                body=_body(request),
                tags=dict(request.tags or {}),
                client_token=request.clientToken,
                date_created=utcnow(),
            )
        )
    return arn


def update_policy(
    body: Mapping[str, Any] | UpdateLifecyclePolicyRequest, *, caller: str | None = None, region: str | None = None
) -> str:
    """UpdateLifecyclePolicy: a full replacement; the name and resource type cannot change."""
    from kiln.db.engine import session

    request = (
        body
        if isinstance(body, UpdateLifecyclePolicyRequest)
        else parse(UpdateLifecyclePolicyRequest, dict(body))
    )
    check_caller(request.lifecyclePolicyArn, caller, region)
    with session() as db:
        row = _find(db, request.lifecyclePolicyArn)
        _check_regions(request, *scope(row.arn))
        if row.resource_type != request.resourceType.value:
            raise InvalidInput(
                f"lifecycle policy {row.arn} {where(row.arn)}: resourceType cannot change "
                f"(policy is {row.resource_type})",
                location="resourceType",
            )
        row.description = request.description
        row.status = (request.status or PolicyStatus.ENABLED).value
        row.body = _body(request)
        row.client_token = request.clientToken
        row.date_updated = utcnow()
        return row.arn


def _find(db: Any, arn: str) -> Any:
    from sqlalchemy import select

    from kiln.db.tables.lifecycle import LifecyclePolicyRow

    _check_arn(arn)
    row = db.scalars(select(LifecyclePolicyRow).where(LifecyclePolicyRow.arn == arn)).first()
    if row is None:
        raise NotFound(
            f"lifecycle policy {arn} not found {where(arn)}",
            hint="kiln lifecycle list --account ACCOUNT --region REGION shows the policies",
        )
    return row


def resolve_arn(name_or_arn: str, *, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION) -> str:
    """Accept a policy's ARN or its name in ``account`` and ``region`` (the CLI's convenience)."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    return policy_arn(name_or_arn, account=account, region=region)


def check_caller(arn: str, caller: str | None, region: str | None = None) -> None:
    """Another account's policy, or (with ``region``) one whose ARN is of another region, is refused
    in the very words of one that does not exist."""
    _check_arn(arn)
    owner, home = scope(arn)
    if (caller is not None and owner != caller) or (region is not None and home != region):
        raise NotFound(
            f"lifecycle policy {arn} not found in account {caller or owner}, region {region or home}",
            hint="kiln lifecycle list --account ACCOUNT --region REGION shows the policies",
        )


def _resolved(arn: str, caller: str | None, region: str | None) -> str:
    """The policy's ARN, a bare name taken as the caller's (in ``region``), refused when it is another
    account's or (with ``region``) of another region."""
    arn = resolve_arn(arn, account=caller or DEFAULT_ACCOUNT, region=region or DEFAULT_REGION)
    check_caller(arn, caller, region)
    return arn


def get_policy(arn: str, *, caller: str | None = None, region: str | None = None) -> LifecyclePolicy:
    """GetLifecyclePolicy; with ``region``, a policy of another region is not found (a regional endpoint)."""
    from kiln.db.engine import session

    arn = _resolved(arn, caller, region)
    with session() as db:
        return _row_to_policy(_find(db, arn))


def list_policies(
    *,
    name: str | None = None,
    status: str | None = None,
    resource_type: str | None = None,
    account: str | None = None,
    region: str | None = None,
) -> list[LifecyclePolicySummary]:
    """ListLifecyclePolicies with its ``name`` / ``status`` / ``resourceType`` filters, ordered by ARN;
    with ``account`` and ``region``, only the policies there (None: every account's, every region's)."""
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.lifecycle import LifecyclePolicyRow

    query = select(LifecyclePolicyRow).order_by(LifecyclePolicyRow.arn)
    if name is not None:
        query = query.where(LifecyclePolicyRow.name == name)
    if status is not None:
        query = query.where(LifecyclePolicyRow.status == status.upper())
    if resource_type is not None:
        query = query.where(LifecyclePolicyRow.resource_type == resource_type.upper())
    with session() as db:
        out = []
        for row in db.scalars(query):
            owner, home = scope(row.arn)
            if (account is not None and owner != account) or (region is not None and home != region):
                continue
            policy = _row_to_policy(row)
            out.append(
                LifecyclePolicySummary.model_validate(
                    policy.model_dump(exclude={"policyDetails", "resourceSelection"})
                )
            )
        return out


def delete_policy(arn: str, *, caller: str | None = None, region: str | None = None) -> str:
    """DeleteLifecyclePolicy; refused while an execution of it is in progress (with ``region``, a policy
    of another region is not found)."""
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.lifecycle import LifecycleExecutionRow

    arn = _resolved(arn, caller, region)
    with session() as db:
        row = _find(db, arn)
        running = db.scalars(
            select(LifecycleExecutionRow.id).where(
                LifecycleExecutionRow.policy_arn == arn,
                LifecycleExecutionRow.status.in_(_ACTIVE),
            )
        ).first()
        if running is not None:
            raise Conflict(
                f"lifecycle policy {arn} {where(arn)} has execution {running} in progress",
                hint="wait or cancel it",
            )
        db.delete(row)
    return arn


def put_policy(
    body: Mapping[str, Any], *, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION
) -> tuple[str, str]:
    """For ``kiln apply``: create the policy in ``account`` and ``region``, or update it when its
    definition changed.

    Returns the ARN and what happened: ``created``, ``updated`` or ``unchanged``.
    """
    request = parse(CreateLifecyclePolicyRequest, dict(body))
    arn = policy_arn(request.name, account=account, region=region)
    try:
        current = get_policy(arn)
    except NotFound:
        return create_policy(request, account=account, region=region), "created"
    wanted = {
        **_body(request),
        "description": request.description,
        "status": (request.status or PolicyStatus.ENABLED).value,
    }
    have = current.model_dump(mode="json", exclude_none=True)
    have_body = {k: have.get(k) for k in _BODY_FIELDS} | {
        "description": current.description,
        "status": current.status.value,
    }
    if wanted == have_body:
        return arn, "unchanged"
    if request.resourceType is not current.resourceType:
        raise InvalidInput(
            f"lifecycle policy {arn} {where(arn)}: resourceType cannot change "
            f"(policy is {current.resourceType.value})",
            location="resourceType",
        )
    update = request.model_dump(mode="json", exclude_none=True, exclude={"name", "tags", "dryRun"})
    update_policy({**update, "lifecyclePolicyArn": arn})
    return arn, "updated"


def cancel_execution(execution_id: str, *, caller: str | None = None, region: str | None = None) -> str:
    """CancelLifecycleExecution: the run stops before its next step (nothing done is undone)."""
    from kiln.db.engine import session
    from kiln.db.tables.lifecycle import LifecycleExecutionRow

    get_execution(execution_id, caller=caller, region=region)
    with session() as db:
        row = db.get(LifecycleExecutionRow, execution_id)
        assert row is not None
        if row.status in (ExecutionStatus.SUCCESS.value, ExecutionStatus.FAILED.value):
            raise Conflict(
                f"lifecycle execution {execution_id} of {row.policy_arn} {where(row.policy_arn)} "
                f"already ended ({row.status})"
            )
        if row.status in (ExecutionStatus.IN_PROGRESS.value, ExecutionStatus.PENDING.value):
            row.status = ExecutionStatus.CANCELLING.value
            row.reason = "cancellation requested"
    return execution_id


def mark_last_run(arn: str, when: datetime) -> None:
    from kiln.db.engine import session

    with session() as db:
        _find(db, arn).date_last_run = when


POLICY_FILTERS = ("name", "resourceType", "status")


def list_policy_summaries(
    *, account: str, region: str, filters: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """ListLifecyclePolicies of ``account`` in ``region`` with Image Builder's ``filters`` (name,
    resourceType, status), as JSON-ready summaries."""
    from kiln.services.common.unit import filter_entries

    entries = [
        summary.model_dump(mode="json", exclude_none=True)
        for summary in list_policies(account=account, region=region)
    ]
    return filter_entries(entries, filters, POLICY_FILTERS)


# ------------------------------------------------------------------------------------------ executions


def _execution(row: Any) -> LifecycleExecution:
    return LifecycleExecution(
        lifecycleExecutionId=row.id,
        lifecyclePolicyArn=row.policy_arn,
        resourcesImpactedSummary={"hasImpactedResources": bool(row.has_impacted_resources)},
        state=ExecutionState(status=ExecutionStatus(row.status), reason=row.reason),
        startTime=row.start_time,
        endTime=row.end_time,
    )


def get_execution(
    execution_id: str, *, caller: str | None = None, region: str | None = None
) -> LifecycleExecution:
    """GetLifecycleExecution; another account's execution, or (with ``region``) one of a policy in
    another region, is refused as if it did not exist."""
    from kiln.db.engine import session
    from kiln.db.tables.lifecycle import LifecycleExecutionRow

    if not EXECUTION_ID.match(execution_id):
        raise InvalidInput(
            f"{execution_id!r} is not a lifecycle execution id", location="lifecycleExecutionId"
        )
    with session() as db:
        row = db.get(LifecycleExecutionRow, execution_id)
        if row is None:
            raise NotFound(
                f"lifecycle execution {execution_id} not found" + (f" in account {caller}" if caller else "")
            )
        owner, home = scope(row.policy_arn)
        if (caller is not None and owner != caller) or (region is not None and home != region):
            raise NotFound(
                f"lifecycle execution {execution_id} not found in account {caller or owner}, region {region or home}"
            )
        return _execution(row)


def list_executions(policy: str, *, caller: str | None = None, region: str | None = None
                    ) -> list[LifecycleExecution]:
    """ListLifecycleExecutions for a policy, newest first; another account's policy (with ``region``, one
    of another region) is not found."""
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.lifecycle import LifecycleExecutionRow

    arn = _resolved(policy, caller, region)
    with session() as db:
        _find(db, arn)
        rows = db.scalars(
            select(LifecycleExecutionRow)
            .where(LifecycleExecutionRow.policy_arn == arn)
            .order_by(LifecycleExecutionRow.start_time.desc(), LifecycleExecutionRow.id)
        )
        return [_execution(r) for r in rows]


def list_execution_resources(
    execution_id: str, parent_resource_id: str | None = None, *, caller: str | None = None,
    region: str | None = None,
) -> list[LifecycleExecutionResource]:
    """ListLifecycleExecutionResources: images without a parent; an image's AMIs (with snapshots) with one."""
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.lifecycle import LifecycleExecutionResourceRow as R

    get_execution(execution_id, caller=caller, region=region)
    with session() as db:
        rows = list(db.scalars(select(R).where(R.execution_id == execution_id).order_by(R.seq)))
    snapshots: dict[str, list[SnapshotResource]] = {}
    for row in rows:
        if row.kind == "snapshot" and row.parent_resource_id:
            snapshots.setdefault(row.parent_resource_id, []).append(
                SnapshotResource(
                    snapshotId=row.resource_id,
                    state=ResourceState(status=ResourceStatus(row.status), reason=row.status_reason),
                )
            )
    wanted = "image" if parent_resource_id is None else "ami"
    out = []
    for row in rows:
        if row.kind != wanted or (
            parent_resource_id is not None and row.parent_resource_id != parent_resource_id
        ):
            continue
        out.append(
            LifecycleExecutionResource(
                accountId=row.account_id or "",
                resourceId=row.resource_id,
                state=ResourceState(status=ResourceStatus(row.status), reason=row.status_reason),
                action=ResourceAction(name=ResourceActionName(row.action), reason=row.action_reason),
                region=row.region or "",
                snapshots=snapshots.get(row.resource_id) if row.kind == "ami" else None,
                imageUris=row.image_uris or None,
                startTime=row.start_time,
                endTime=row.end_time,
            )
        )
    return out


def _apply(db: Any, request: CreateLifecyclePolicyRequest, context: Any, where: str) -> tuple[str, str]:
    # put_policy opens its own unit of work, which joins apply's transaction (kiln.db.engine.session).
    return put_policy(request.model_dump(mode="json", exclude_none=True), account=context.account,
                      region=context.region)


APPLY_KIND = KindHandler(
    "LifecyclePolicy",
    CreateLifecyclePolicyRequest,  # type: ignore[arg-type]
    lambda request: Ref("lifecycle-policy", normalized_name(request.name)),
    no_references,
    _apply,
)
