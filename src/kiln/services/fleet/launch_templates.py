"""EC2 launch templates for every front end: CreateLaunchTemplate, CreateLaunchTemplateVersion,
ModifyLaunchTemplate, DescribeLaunchTemplates, DescribeLaunchTemplateVersions, DeleteLaunchTemplate,
DeleteLaunchTemplateVersions, in EC2's shapes and error codes.

A template belongs to an account and a region (its name is unique there); to any other account it
does not exist. Versions are numbered from 1, never reusing a number; ``$Default`` is the version the
owner chose (a new version does not move it), ``$Latest`` the highest number that still exists. A
version's ``ImageId`` is an AMI id or ``resolve:ssm:<parameter>[:version|:label]``; either must name an
AMI the account may use in the region when the version is created (kiln checks it then, EC2 at launch),
and the template keeps the string: a parameter is resolved again at each launch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from kiln.db.base import utcnow
from kiln.db.tables.fleet import LaunchTemplateRow, LaunchTemplateVersionRow
from kiln.ec2_errors import (
    IdempotentParameterMismatch,
    InvalidLaunchTemplateIdMalformed,
    InvalidLaunchTemplateIdNotFound,
    InvalidLaunchTemplateIdVersionNotFound,
    InvalidLaunchTemplateNameAlreadyExists,
    InvalidLaunchTemplateNameMalformed,
    InvalidLaunchTemplateNameNotFound,
    InvalidParameterCombination,
    InvalidParameterValue,
    MissingParameter,
)
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.model.ids import is_id, new_id
from kiln.services.common.unit import content_hash, unit_of_work
from kiln.services.fleet import template_data

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

NAME = re.compile(r"^[a-zA-Z0-9().\-/_]{3,128}$")
MAX_DESCRIPTION = 255
DEFAULT, LATEST = "$Default", "$Latest"


@dataclass(frozen=True)
class TemplateRef:
    """A launch template as a request names it: by id or by name (exactly one)."""

    launch_template_id: str | None = None
    launch_template_name: str | None = None

    @classmethod
    def parse(cls, value: str) -> TemplateRef:
        """``lt-…`` is an id, anything else a name (what the CLI's TEMPLATE argument takes)."""
        return cls(launch_template_id=value) if value.startswith("lt-") else cls(launch_template_name=value)


def _user(account: str) -> str:
    return f"arn:aws:iam::{account}:root"


def _check_name(name: str, field: str = "LaunchTemplateName") -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidLaunchTemplateNameMalformed(
            f"launch template name {name!r} must be 3 to 128 characters of letters, digits and ( ) . - / _",
            location=field,
        )
    return name


def _check_description(description: str | None) -> None:
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise InvalidParameterValue(f"a version description has at most {MAX_DESCRIPTION} characters",
                                    location="VersionDescription")


def find(db: Session, ref: TemplateRef, account: str, region: str) -> LaunchTemplateRow:
    """The template ``ref`` names, of ``account`` in ``region``; else EC2's refusal."""
    template_id, name = ref.launch_template_id, ref.launch_template_name
    if template_id and name:
        raise InvalidParameterCombination("give the launch template's id or its name, not both",
                                          location="LaunchTemplateId").at(account=account, region=region)
    if not template_id and not name:
        raise MissingParameter("the request must name a launch template (LaunchTemplateId or LaunchTemplateName)",
                               location="LaunchTemplateId").at(account=account, region=region)
    hint = f"`kiln launch-template describe --region {region}` lists this account's templates"
    if template_id:
        if not is_id(template_id, "lt"):
            raise InvalidLaunchTemplateIdMalformed(
                f"The launch template ID '{template_id}' is malformed (lt- and 17 hex digits)",
                location="LaunchTemplateId").at(account=account, region=region)
        row = db.get(LaunchTemplateRow, template_id)
        if row is None or row.account_id != account or row.region != region:
            raise InvalidLaunchTemplateIdNotFound(
                f"The specified launch template, with template ID {template_id}, does not exist.", hint=hint
            ).at(account=account, region=region)
        return row
    _check_name(name or "")
    found = db.scalars(select(LaunchTemplateRow).where(
        LaunchTemplateRow.account_id == account, LaunchTemplateRow.region == region, LaunchTemplateRow.name == name
    )).first()
    if found is None:
        raise InvalidLaunchTemplateNameNotFound(
            f"The specified launch template, with template name {name}, does not exist.", hint=hint
        ).at(account=account, region=region)
    return found


def _latest(db: Session, row: LaunchTemplateRow) -> int:
    return int(db.scalar(select(func.max(LaunchTemplateVersionRow.version))
                         .where(LaunchTemplateVersionRow.template_id == row.id)) or 0)


def _latest_numbers(db: Session, account: str, region: str) -> dict[str, int]:
    """Every template's ``$Latest`` of the account in the region, in one query."""
    query = (select(LaunchTemplateVersionRow.template_id, func.max(LaunchTemplateVersionRow.version))
             .join(LaunchTemplateRow, LaunchTemplateRow.id == LaunchTemplateVersionRow.template_id)
             .where(LaunchTemplateRow.account_id == account, LaunchTemplateRow.region == region)
             .group_by(LaunchTemplateVersionRow.template_id))
    return {template_id: int(number) for template_id, number in db.execute(query)}


def version_number(db: Session, row: LaunchTemplateRow, version: str | int | None, *, field: str = "Version") -> int:
    """The number ``version`` (``$Default`` when None, ``$Latest``, or a number) names; it must exist."""
    text = DEFAULT if version is None else str(version)
    if text == DEFAULT:
        number = row.default_version
    elif text == LATEST:
        number = _latest(db, row)
    elif text.isdigit():
        number = int(text)
    else:
        raise InvalidParameterValue(f"version {text!r} is not a number, $Default or $Latest", location=field)
    if db.get(LaunchTemplateVersionRow, (row.id, number)) is None:
        raise InvalidLaunchTemplateIdVersionNotFound(
            f"Could not find launch template version {text} of {row.id} ({row.name})",
            hint=f"`kiln launch-template describe-versions {row.id}` lists its versions",
        ).at(account=row.account_id, region=row.region)
    return number


def version_row(db: Session, row: LaunchTemplateRow, version: str | int | None) -> LaunchTemplateVersionRow:
    found = db.get(LaunchTemplateVersionRow, (row.id, version_number(db, row, version)))
    assert found is not None
    return found


def check_image(data: dict[str, Any], account: str, region: str, db: Session,
                 action: str = "CreateLaunchTemplateVersion") -> str | None:
    """The AMI the data's ImageId names now, which ``account`` must be able to see in ``region``
    (``InvalidAMIID.NotFound`` otherwise) and its allowed images settings allow for ``action``; None
    without an ImageId."""
    from kiln.services.ec2.allowed_images import check_use
    from kiln.services.ec2.callers import principal
    from kiln.services.parameters.resolve import is_reference, resolve_image_parameter
    from kiln.store import api

    image_id = data.get("ImageId")
    if image_id is None:
        return None
    field = f"{template_data.FIELD}.ImageId"
    ami = resolve_image_parameter(image_id, account=account, region=region, field=field, db=db) \
        if is_reference(image_id) else image_id
    check_use(api.get_image(ami, region, principal(account)), action, account=account, region=region)
    return str(ami)


def _template_shape(db: Session, row: LaunchTemplateRow, latest: int | None = None) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "LaunchTemplateId": row.id,
        "LaunchTemplateName": row.name,
        "CreateTime": row.created_at,
        "CreatedBy": row.created_by,
        "DefaultVersionNumber": row.default_version,
        "LatestVersionNumber": _latest(db, row) if latest is None else latest,
    }
    if row.tags:
        shape["Tags"] = [{"Key": key, "Value": value} for key, value in sorted(row.tags.items())]
    return shape


def _version_shape(
    db: Session, row: LaunchTemplateRow, version: LaunchTemplateVersionRow, *, resolve_alias: bool = False
) -> dict[str, Any]:
    data = dict(version.data)
    if resolve_alias and str(data.get("ImageId", "")).startswith(template_data.SSM_PREFIX):
        from kiln.services.parameters.resolve import resolve_image_parameter

        data["ImageId"] = resolve_image_parameter(data["ImageId"], account=row.account_id, region=row.region, db=db)
    shape: dict[str, Any] = {
        "LaunchTemplateId": row.id,
        "LaunchTemplateName": row.name,
        "VersionNumber": version.version,
    }
    if version.description:
        shape["VersionDescription"] = version.description
    shape.update({
        "CreateTime": version.created_at,
        "CreatedBy": version.created_by,
        "DefaultVersion": version.version == row.default_version,
        "LaunchTemplateData": data,
    })
    return shape


def _add_version(
    db: Session, row: LaunchTemplateRow, data: dict[str, Any], description: str | None, token: str | None,
    account: str,
) -> LaunchTemplateVersionRow:
    row.last_number += 1
    version = LaunchTemplateVersionRow(
        template_id=row.id, version=row.last_number, description=description, data=data,
        image_id=data.get("ImageId"), client_token=token, created_at=utcnow(), created_by=_user(account),
    )
    db.add(version)
    db.flush()
    return version


def create_launch_template(
    name: str,
    data: Mapping[str, Any],
    *,
    version_description: str | None = None,
    tags: Mapping[str, str] | None = None,
    client_token: str | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    """EC2 ``CreateLaunchTemplate``: the template with version 1, its default and latest."""
    from kiln.services.accounts.regions import require_region

    _check_name(name)
    _check_description(version_description)
    data = template_data.check(dict(data))
    require_region(region)
    with unit_of_work() as db:
        if client_token:
            earlier = db.scalars(select(LaunchTemplateRow).where(
                LaunchTemplateRow.account_id == account, LaunchTemplateRow.client_token == client_token)).first()
            if earlier is not None:
                first = db.get(LaunchTemplateVersionRow, (earlier.id, 1))
                if earlier.name != name or first is None or content_hash(first.data) != content_hash(data):
                    raise IdempotentParameterMismatch(
                        f"client token {client_token!r} was used to create {earlier.id} with other parameters",
                        location="ClientToken").at(account=account, region=region)
                return {"LaunchTemplate": _template_shape(db, earlier)}
        taken = db.scalars(select(LaunchTemplateRow.id).where(
            LaunchTemplateRow.account_id == account, LaunchTemplateRow.region == region,
            LaunchTemplateRow.name == name)).first()
        if taken is not None:
            raise InvalidLaunchTemplateNameAlreadyExists(
                f"Launch template name already in use: {name} is {taken}", location="LaunchTemplateName",
                hint="create a new version of it instead: kiln launch-template create-version",
            ).at(account=account, region=region)
        check_image(data, account, region, db)
        row = LaunchTemplateRow(
            id=new_id("lt"), account_id=account, region=region, name=name, default_version=1, last_number=0,
            tags=dict(tags or {}), client_token=client_token, created_at=utcnow(), created_by=_user(account),
        )
        db.add(row)
        db.flush()
        _add_version(db, row, data, version_description, client_token, account)
        return {"LaunchTemplate": _template_shape(db, row)}


def create_launch_template_version(
    ref: TemplateRef,
    data: Mapping[str, Any],
    *,
    source_version: str | None = None,
    version_description: str | None = None,
    resolve_alias: bool = False,
    client_token: str | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    """EC2 ``CreateLaunchTemplateVersion``: number latest+1 (never reused); ``source_version``'s data
    overridden by the given members, or only the given ones. The default version stays."""
    _check_description(version_description)
    given = template_data.check(dict(data))
    with unit_of_work() as db:
        row = find(db, ref, account, region)
        if client_token:
            earlier = db.scalars(select(LaunchTemplateVersionRow).where(
                LaunchTemplateVersionRow.template_id == row.id,
                LaunchTemplateVersionRow.client_token == client_token)).first()
            if earlier is not None:
                return {"LaunchTemplateVersion": _version_shape(db, row, earlier, resolve_alias=resolve_alias)}
        if source_version is not None:
            source = version_row(db, row, source_version)
            given = template_data.check(template_data.inherit(source.data, given))
        check_image(given, account, region, db)
        version = _add_version(db, row, given, version_description, client_token, account)
        return {"LaunchTemplateVersion": _version_shape(db, row, version, resolve_alias=resolve_alias)}


def modify_launch_template(
    ref: TemplateRef, *, default_version: str, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION
) -> dict[str, Any]:
    """EC2 ``ModifyLaunchTemplate``: set the default version (a number, or ``$Latest``)."""
    with unit_of_work() as db:
        row = find(db, ref, account, region)
        row.default_version = version_number(db, row, default_version, field="DefaultVersion")
        return {"LaunchTemplate": _template_shape(db, row)}


def _tag_filter(tags: dict[str, str], name: str, values: list[str]) -> bool:
    if name == "tag-key":
        return any(key in values for key in tags)
    return tags.get(name.removeprefix("tag:")) in values


def describe_launch_templates(
    *,
    launch_template_ids: Sequence[str] = (),
    launch_template_names: Sequence[str] = (),
    filters: Mapping[str, Sequence[str]] | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    """EC2 ``DescribeLaunchTemplates``: the named ones (an unknown id or name is an error, not an
    empty answer) or all of the account's in the region; filters ``launch-template-name``,
    ``tag:<key>``, ``tag-key``."""
    for name in filters or {}:
        if name not in ("launch-template-name", "tag-key") and not name.startswith("tag:"):
            raise InvalidParameterValue(f"unknown filter {name!r}; use launch-template-name, tag:<key>, tag-key",
                                        location="Filter")
    with unit_of_work() as db:
        if launch_template_ids or launch_template_names:
            rows = [find(db, TemplateRef(launch_template_id=i), account, region) for i in launch_template_ids]
            rows += [find(db, TemplateRef(launch_template_name=n), account, region) for n in launch_template_names]
        else:
            rows = list(db.scalars(select(LaunchTemplateRow).where(
                LaunchTemplateRow.account_id == account, LaunchTemplateRow.region == region
            ).order_by(LaunchTemplateRow.name)))
        for name, values in (filters or {}).items():
            if name == "launch-template-name":
                rows = [row for row in rows if row.name in values]
            else:
                rows = [row for row in rows if _tag_filter(row.tags, name, list(values))]
        latest = _latest_numbers(db, account, region)
        return {"LaunchTemplates": [_template_shape(db, row, latest.get(row.id, 0)) for row in rows]}


def describe_launch_template_versions(
    ref: TemplateRef | None = None,
    *,
    versions: Sequence[str] = (),
    min_version: int | None = None,
    max_version: int | None = None,
    filters: Mapping[str, Sequence[str]] | None = None,
    resolve_alias: bool = False,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    """EC2 ``DescribeLaunchTemplateVersions``. With a template: the versions asked for (numbers,
    ``$Default``, ``$Latest``; an unknown one is ``InvalidLaunchTemplateId.VersionNotFound``) or all,
    within ``min_version``..``max_version``. Without: every template of the account in the region,
    and ``versions`` may hold only ``$Default`` and ``$Latest``. Filters: ``image-id``,
    ``instance-type``, ``is-default-version``. ``resolve_alias`` shows the AMI a ``resolve:ssm:``
    ImageId names now."""
    known_filters = ("image-id", "instance-type", "is-default-version")
    for name in filters or {}:
        if name not in known_filters:
            raise InvalidParameterValue(f"unknown filter {name!r}; use {', '.join(known_filters)}", location="Filter")
    with unit_of_work() as db:
        if ref is None:
            if set(versions) - {DEFAULT, LATEST}:
                raise InvalidParameterValue(
                    "without a launch template, Versions may hold only $Default and $Latest", location="Versions")
            templates = list(db.scalars(select(LaunchTemplateRow).where(
                LaunchTemplateRow.account_id == account, LaunchTemplateRow.region == region
            ).order_by(LaunchTemplateRow.name)))
        else:
            templates = [find(db, ref, account, region)]
        latest = _latest_numbers(db, account, region)
        wanted = {row.id: _numbers(row, versions, latest.get(row.id, 0)) for row in templates}
        rows = _version_rows(db, [row.id for row in templates] if ref is not None else None, wanted, account, region)
        kept: dict[str, list[int]] = {}
        for template_id, number in sorted(rows):
            kept.setdefault(template_id, []).append(number)
        found = []
        for row in templates:
            numbers = wanted[row.id]
            for number in kept.get(row.id, []) if numbers is None else numbers:
                if (row.id, number) not in rows:
                    raise InvalidLaunchTemplateIdVersionNotFound(
                        f"Could not find launch template version {number} of {row.id} ({row.name})",
                        hint=f"`kiln launch-template describe-versions {row.id}` lists its versions",
                    ).at(account=account, region=region)
                if (min_version is not None and number < min_version) or (max_version is not None
                                                                          and number > max_version):
                    continue
                shape = _version_shape(db, row, rows[(row.id, number)], resolve_alias=resolve_alias)
                if _version_matches(shape, filters or {}):
                    found.append(shape)
        return {"LaunchTemplateVersions": found}


def _numbers(row: LaunchTemplateRow, versions: Sequence[str], latest: int) -> list[int] | None:
    """The version numbers ``versions`` name for ``row`` (None: all of them), not yet checked to exist."""
    if not versions:
        return None
    numbers = set()
    for text in versions:
        if text == DEFAULT:
            numbers.add(row.default_version)
        elif text == LATEST:
            numbers.add(latest)
        elif str(text).isdigit():
            numbers.add(int(text))
        else:
            raise InvalidParameterValue(f"version {text!r} is not a number, $Default or $Latest", location="Versions")
    return sorted(numbers)


def _version_rows(
    db: Session, template_ids: list[str] | None, wanted: dict[str, list[int] | None], account: str, region: str
) -> dict[tuple[str, int], LaunchTemplateVersionRow]:
    """The versions asked for, in one query: of the given templates, or of all the account's in the region."""
    query = select(LaunchTemplateVersionRow)
    if template_ids is not None:
        query = query.where(LaunchTemplateVersionRow.template_id.in_(template_ids))
    else:
        query = query.join(LaunchTemplateRow, LaunchTemplateRow.id == LaunchTemplateVersionRow.template_id).where(
            LaunchTemplateRow.account_id == account, LaunchTemplateRow.region == region)
    if wanted and all(numbers is not None for numbers in wanted.values()):
        query = query.where(LaunchTemplateVersionRow.version.in_(
            {number for numbers in wanted.values() for number in numbers or ()}))
    rows = {(version.template_id, version.version): version for version in db.scalars(query)}
    return {key: version for key, version in rows.items()
            if wanted.get(key[0]) is None or key[1] in (wanted[key[0]] or ())}


def _version_matches(shape: dict[str, Any], filters: Mapping[str, Sequence[str]]) -> bool:
    data = shape["LaunchTemplateData"]
    fields = {"image-id": data.get("ImageId"), "instance-type": data.get("InstanceType"),
              "is-default-version": str(shape["DefaultVersion"]).lower()}
    return all(fields[name] in values for name, values in filters.items())


def delete_launch_template(
    ref: TemplateRef, *, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION
) -> dict[str, Any]:
    """EC2 ``DeleteLaunchTemplate``: the template and every version; answers what was deleted."""
    from sqlalchemy import delete

    with unit_of_work() as db:
        row = find(db, ref, account, region)
        shape = _template_shape(db, row)
        db.execute(delete(LaunchTemplateVersionRow).where(LaunchTemplateVersionRow.template_id == row.id))
        db.delete(row)
        return {"LaunchTemplate": shape}


def delete_launch_template_versions(
    ref: TemplateRef, versions: Sequence[str], *, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION
) -> dict[str, Any]:
    """EC2 ``DeleteLaunchTemplateVersions``: each version deleted or reported with EC2's
    ``ResponseError`` code; the default version is never deleted (delete the template instead)."""
    if not 1 <= len(versions) <= 200:
        raise InvalidParameterValue("give 1 to 200 versions", location="LaunchTemplateVersion")
    deleted: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    with unit_of_work() as db:
        row = find(db, ref, account, region)
        for text in versions:
            item: dict[str, Any] = {"LaunchTemplateId": row.id, "LaunchTemplateName": row.name}
            version = db.get(LaunchTemplateVersionRow, (row.id, int(text))) if str(text).isdigit() else None
            if version is None:
                item["ResponseError"] = {"Code": "launchTemplateVersionDoesNotExist",
                                         "Message": f"version {text} of {row.id} does not exist"}
            elif version.version == row.default_version:
                item["VersionNumber"] = version.version
                item["ResponseError"] = {"Code": "unexpectedError",
                                         "Message": f"version {text} is the default version of {row.id}; "
                                                    "make another version the default or delete the template"}
            else:
                item["VersionNumber"] = version.version
                db.delete(version)
                db.flush()
                deleted.append(item)
                continue
            failed.append(item)
    return {"SuccessfullyDeletedLaunchTemplateVersions": deleted,
            "UnsuccessfullyDeletedLaunchTemplateVersions": failed}


def add_image_version(
    ref: TemplateRef,
    image_id: str,
    *,
    set_default: bool = True,
    description: str | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    """What Image Builder's ``launchTemplateConfigurations`` does after a build: a new version made
    from the default one with ``ImageId`` set to the new AMI, made the default when ``set_default``
    (its default, as Image Builder's), all in one transaction. Answers like CreateLaunchTemplateVersion."""
    with unit_of_work():
        created = create_launch_template_version(
            ref, {"ImageId": image_id}, source_version=DEFAULT, version_description=description,
            account=account, region=region,
        )
        if set_default:
            number = str(created["LaunchTemplateVersion"]["VersionNumber"])
            modify_launch_template(ref, default_version=number, account=account, region=region)
            created["LaunchTemplateVersion"]["DefaultVersion"] = True
        return created
