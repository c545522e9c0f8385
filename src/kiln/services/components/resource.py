"""Components: create, get, list, delete, and resolve references (with ``x`` wildcards) to one build.

Versions are immutable: creating an existing name+version again with the same content returns the
existing build (so ``kiln apply`` is idempotent); different content is refused. A new version gets
build 1, as in Image Builder.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.db.base import utcnow
from kiln.errors import Forbidden, InvalidInput, NotFound
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.model.arn import MANAGED_ACCOUNT, Arn, arn_name, make_arn, parse_arn
from kiln.model.component import Component, ComponentSummary, ComponentVersion, CreateComponentRequest
from kiln.model.shapes import (
    LatestVersionReferences,
    format_date,
    new_client_token,
    new_request_id,
    parse_shape,
)
from kiln.model.versions import Version, VersionFilter, parse_version
from kiln.services.common import versioned
from kiln.services.common.kinds import ApplyContext, KindHandler, Ref, no_references
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
from kiln.services.components.documents import (
    analyse_document,
    check_supported_os_versions,
    component_type,
    declared_parameters,
)
from kiln.services.components.sources import load_component_data

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kiln.db.tables.resources import ComponentRow


def _rows(db: Session, account: str | None, arn_name: str | None = None) -> list[ComponentRow]:
    from kiln.db.tables.resources import ComponentRow

    return versioned.version_rows(db, ComponentRow, account, arn_name)


def _version_of(row: ComponentRow) -> tuple[Version, int]:
    return Version(row.major, row.minor, row.patch), row.build


def _retag(row: ComponentRow, tags: dict[str, str]) -> None:
    row.tags = tags


def latest_references(db: Session, row: ComponentRow) -> LatestVersionReferences:
    """Newest build overall, within the same major, the same minor and the same patch."""
    return versioned.latest_references(_rows(db, row.account, row.arn_name), row, _version_of)


def to_component(row: ComponentRow) -> Component:
    return Component.model_validate(
        {
            "arn": row.arn,
            "name": row.name,
            "version": row.version,
            "description": row.description,
            "changeDescription": row.change_description,
            "type": row.type,
            "platform": row.platform,
            "supportedOsVersions": row.supported_os_versions,
            "state": {"status": "ACTIVE"},
            "parameters": row.parameters or None,
            "owner": row.owner,
            "data": row.data,
            "kmsKeyId": row.kms_key_id,
            "encrypted": True,
            "dateCreated": format_date(row.date_created),
            "tags": row.tags or None,
        }
    )


def to_component_version(row: ComponentRow) -> ComponentVersion:
    return ComponentVersion.model_validate(
        {
            "arn": row.arn.rsplit("/", 1)[0],
            "name": row.name,
            "version": row.version,
            "description": row.description,
            "platform": row.platform,
            "supportedOsVersions": row.supported_os_versions,
            "type": row.type,
            "owner": row.owner,
            "dateCreated": format_date(row.date_created),
            "status": "ACTIVE",
        }
    )


def put_component(
    db: Session,
    request: CreateComponentRequest,
    *,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
    base_dir: Path | None = None,
    where: str | None = None,
    endpoint_url: str | None = None,
) -> tuple[ComponentRow, str]:
    """Create the component unless an identical one exists: (row, "created" | "unchanged" | "updated");
    "updated" means only its tags changed."""
    from kiln.db.tables.resources import ComponentRow

    field = f"{where}: " if where else ""
    check_supported_os_versions(request.platform, request.supportedOsVersions, field)
    data = (
        request.data
        if request.data is not None
        else load_component_data(request.uri or "", base_dir=base_dir, endpoint_url=endpoint_url)
    )
    document = analyse_document(
        data, where=f"{field}{'data' if request.data is not None else 'uri'}", platform=request.platform
    )
    version = parse_version(request.semanticVersion)
    # Tags are not part of a version's content: they may change on an immutable resource.
    content = content_of(request.dump(), "data", "uri", "tags")
    content["documentHash"] = content_hash(data)
    digest = content_hash(content)

    arn = make_arn("component", request.name, version, 1, region=region, account=account)
    answer = versioned.answer_without_new_row(
        db, ComponentRow, request, digest, arn, _rows(db, account, arn.name), _retag,
        label="component", version=version, account=account, where=where,
    )
    if answer is not None:
        return answer
    row = ComponentRow(
        **versioned.key_columns(arn, account, request.name, version),
        build=1,
        platform=request.platform,
        type=component_type(document),
        owner=owner_of(account),
        description=request.description,
        change_description=request.changeDescription,
        data=data,
        data_hash=content_hash(data),
        uri=request.uri,
        supported_os_versions=request.supportedOsVersions,
        parameters=declared_parameters(document),
        tags=request.tags,
        kms_key_id=request.kmsKeyId,
        content_hash=digest,
        client_token=request.clientToken or new_client_token(),
        date_created=utcnow(),
    )
    db.add(row)
    db.flush()
    return row, "created"


def create_component(
    body: dict[str, Any] | CreateComponentRequest,
    *,
    db: Session | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
    base_dir: Path | None = None,
    endpoint_url: str | None = None,
) -> dict[str, Any]:
    """CreateComponent: the response body (componentBuildVersionArn, latestVersionReferences);
    ``endpoint_url``: the S3 endpoint for an ``s3://`` uri (default: from the environment)."""
    request = parse_shape(CreateComponentRequest, body)
    request, token = with_client_token(request)
    with unit_of_work(db) as work:
        row, _ = put_component(
            work, request, account=account, region=region, base_dir=base_dir, endpoint_url=endpoint_url
        )
        references = latest_references(work, row)
        return {
            "requestId": new_request_id(),
            "clientToken": token,
            "componentBuildVersionArn": row.arn,
            "latestVersionReferences": references.dump(),
        }


def expand_component_reference(
    db: Session, reference: str, *, field: str = "componentArn", account: str = DEFAULT_ACCOUNT,
    region: str | None = None,
) -> str:
    """A full ARN for ``reference``; the short form ``component/NAME/VERSION`` means the caller's own
    component of that name (``account``, ``region``) when one exists, else the Amazon-managed one."""
    arn = parse_arn(reference, resource_type="component", field=field, allow_short=True)
    if reference.strip().startswith("arn:"):
        return str(arn)
    arn = Arn(arn.resource_type, arn.name, arn.version, arn.build, region=region or arn.region, account=account)
    if not _rows(db, arn.account, arn.name) and _rows(db, MANAGED_ACCOUNT, arn.name):
        arn = Arn(
            arn.resource_type, arn.name, arn.version, arn.build, region=arn.region, account=MANAGED_ACCOUNT
        )
    return str(arn)


def resolve_component(
    arn_or_filter: str, *, db: Session | None = None, field: str = "componentArn", caller: str | None = None,
    region: str | None = None,
) -> ComponentRow:
    """The component build a reference means now: exact build ARN, or the newest version (and newest
    build) matching a version ARN with right-aligned ``x`` wildcards. With ``caller``, only that
    account's or an Amazon-managed one (another account's is not found)."""
    from kiln.model.versions import newest

    with unit_of_work(db) as work:
        if caller is None:
            full = expand_component_reference(work, arn_or_filter, field=field)
        else:
            full = expand_component_reference(work, arn_or_filter, field=field, account=caller, region=region)
        arn = parse_arn(full, resource_type="component", field=field)
        # Another account's answers as a missing one does: nothing matches.
        candidates = _rows(work, arn.account, arn.name) if visible(arn.account, caller, (MANAGED_ACCOUNT,)) else []
        version_filter = arn.version or VersionFilter((None, None, None))
        if arn.build is not None:
            candidates = [row for row in candidates if row.build == arn.build]
        found = newest(candidates, version_filter, _version_of)
        if found is None:
            raise NotFound(
                f"no component matches {full}",
                location=field,
                hint="list components with: kiln component list --owner Self (or Amazon)",
            )
        return found


def get_component(
    arn: str, *, db: Session | None = None, caller: str | None = None, region: str | None = None
) -> dict[str, Any]:
    """GetComponent: a build ARN, or a version ARN (wildcards allowed) resolved to the newest build
    (the caller's own or an Amazon-managed one, when ``caller`` is given)."""
    with unit_of_work(db) as work:
        row = resolve_component(arn, db=work, field="componentBuildVersionArn", caller=caller, region=region)
        return {
            "requestId": new_request_id(),
            "component": to_component(row).dump(),
            "latestVersionReferences": latest_references(work, row).dump(),
        }


def list_components(
    *,
    owner: str = "Self",
    name: str | None = None,
    by_name: bool = False,
    filters: list[dict[str, Any]] | None = None,
    db: Session | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str | None = None,
) -> dict[str, Any]:
    """ListComponents: one entry per version (``byName``: only the newest version of each name), the
    account's in ``region`` (or every region; managed ones are in all); ``filters`` on description,
    name, platform, supportedOsVersion, type, version."""
    if owner not in ("Self", "Amazon", "Shared", "ThirdParty", "AWSMarketplace"):
        raise InvalidInput(f"unknown owner {owner!r}", location="owner", hint="use Self or Amazon")
    with unit_of_work(db) as work:
        scope = {"Self": account, "Amazon": MANAGED_ACCOUNT}.get(owner)
        rows = _rows(work, scope) if scope else []
        rows = [row for row in rows if row.account == MANAGED_ACCOUNT or in_region(row.arn, region)]
        if name:
            rows = [row for row in rows if row.name == name]
        newest_build: dict[tuple[str, str, str], ComponentRow] = {}
        for row in rows:
            key = (row.account, row.arn_name, row.version)
            if key not in newest_build or row.build > newest_build[key].build:
                newest_build[key] = row
        chosen = sorted(newest_build.values(), key=lambda row: (row.arn_name, _version_of(row)))
        if by_name:
            latest: dict[tuple[str, str], ComponentRow] = {}
            for row in chosen:
                latest[(row.account, row.arn_name)] = row
            chosen = list(latest.values())
        entries = [to_component_version(row).dump() for row in chosen]
        allowed = ("description", "name", "platform", "supportedOsVersion", "type", "version")
        return {
            "requestId": new_request_id(),
            "componentVersionList": filter_entries(entries, filters, allowed),
        }


def delete_component(
    arn: str, *, db: Session | None = None, caller: str | None = None, region: str | None = None
) -> dict[str, Any]:
    """DeleteComponent (build ARN): refused for managed components and for components in use; with
    ``caller``, another account's is not found."""
    from sqlalchemy import select

    from kiln.db.tables.resources import ComponentRow

    parsed = parse_arn(arn, resource_type="component", field="componentBuildVersionArn", allow_short=True)
    parsed = as_caller(arn, parsed, caller, region)
    if parsed.build is None:
        raise InvalidInput(
            "DeleteComponent needs a build version ARN (…/component/NAME/1.0.0/1)",
            location="componentBuildVersionArn",
        )
    if parsed.account == MANAGED_ACCOUNT:
        raise Forbidden(f"{parsed} is an Amazon-managed component and cannot be deleted")
    require_visible(parsed.account, caller, "component", str(parsed), "componentBuildVersionArn")
    with unit_of_work(db) as work:
        row = work.scalars(select(ComponentRow).where(ComponentRow.arn == str(parsed))).first()
        if row is None:
            raise NotFound(f"component {parsed} does not exist", location="componentBuildVersionArn")
        refuse_if_in_use(work, parsed)
        work.delete(row)
        return {"requestId": new_request_id(), "componentBuildVersionArn": row.arn}


def list_component_build_versions(
    component_version_arn: str, *, db: Session | None = None, caller: str | None = None
) -> dict[str, Any]:
    """ListComponentBuildVersions: every build of one version (``…/component/NAME/1.0.0``); with
    ``caller``, of the caller's or an Amazon-managed component only."""
    parsed = parse_arn(
        component_version_arn, resource_type="component", field="componentVersionArn", allow_short=True
    )
    parsed = as_caller(component_version_arn, parsed, caller)
    version = parsed.exact_version
    if version is None or parsed.build is not None:
        raise InvalidInput(
            "give a component version ARN (…/component/NAME/1.0.0)", location="componentVersionArn"
        )
    with unit_of_work(db) as work:
        # Another account's answers as a version without builds does: empty.
        owned = _rows(work, parsed.account, parsed.name) if visible(parsed.account, caller, (MANAGED_ACCOUNT,)) else []
        rows = [row for row in owned if _version_of(row)[0] == version]
        summaries = [
            ComponentSummary.model_validate(
                {
                    "arn": row.arn,
                    "name": row.name,
                    "version": row.version,
                    "platform": row.platform,
                    "supportedOsVersions": row.supported_os_versions,
                    "state": {"status": "ACTIVE"},
                    "type": row.type,
                    "owner": row.owner,
                    "description": row.description,
                    "changeDescription": row.change_description,
                    "dateCreated": format_date(row.date_created),
                    "tags": row.tags or None,
                }
            ).dump()
            for row in sorted(rows, key=lambda row: row.build)
        ]
        return {"requestId": new_request_id(), "componentSummaryList": summaries}


def _apply(db: Session, request: Any, ctx: ApplyContext, where: str) -> tuple[str, str]:
    row, status = put_component(db, request, account=ctx.account, region=ctx.region, base_dir=ctx.base_dir, where=where)
    return row.arn, status


APPLY_KIND = KindHandler(
    "Component",
    CreateComponentRequest,
    lambda r: Ref("component", arn_name(r.name), r.semanticVersion),
    no_references,
    _apply,
)
