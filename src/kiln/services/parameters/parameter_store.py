"""SSM Parameter Store for every front end: PutParameter, GetParameter, GetParameterHistory,
DescribeParameters / GetParametersByPath, LabelParameterVersion, DeleteParameter.

Parameters belong to an account and a region; another account's are not there for it. Each write is
a new version (1, 2, …; the newest ``MAX_VERSIONS`` kept); changing an existing parameter needs
``overwrite``. ``aws:ec2:image`` values must be AMIs the account may use in that region (its own,
public or shared) and available: SSM checks that after answering, kiln before writing (see
``errors.InvalidImageParameterValue``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select

from kiln.db.base import utcnow
from kiln.db.tables.parameters import ParameterLabelRow, ParameterRow, ParameterVersionRow
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.services.common.unit import unit_of_work
from kiln.services.parameters import names
from kiln.services.parameters.errors import (
    InvalidImageParameterValue,
    ParameterAlreadyExists,
    ParameterMaxVersionLimitExceeded,
    ParameterNotFound,
    ParameterVersionLabelLimitExceeded,
    ParameterVersionNotFound,
    ValidationException,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

MAX_VERSIONS = 100
MAX_LABELS_PER_VERSION = 10
MAX_DESCRIPTION = 1024
TIER = "Standard"
CHANGE_EVENT = "Parameter Store Change"
AMI_ID = re.compile(r"^ami-([0-9a-f]{8}|[0-9a-f]{17})$")
PARAMETER_ARN = re.compile(r"^arn:aws:ssm:(?P<region>[^:]+):(?P<account>\d{12}):parameter/(?P<rest>.+)$")


def parameter_arn(name: str, account: str, region: str) -> str:
    return f"arn:aws:ssm:{region}:{account}:parameter/{name.lstrip('/')}"


def _user(account: str) -> str:
    return f"arn:aws:iam::{account}:root"


def _row(db: Session, name: str, account: str, region: str) -> ParameterRow | None:
    return db.scalars(
        select(ParameterRow).where(
            ParameterRow.account_id == account, ParameterRow.region == region, ParameterRow.name == name
        )
    ).first()


def _existing(db: Session, name: str, account: str, region: str) -> ParameterRow:
    row = _row(db, name, account, region)
    if row is None:
        raise ParameterNotFound(
            f"parameter {name} does not exist for account {account} in region {region}",
            hint=f"`kiln parameter list --region {region}` shows this account's parameters",
        )
    return row


def _version(db: Session, row: ParameterRow, version: int) -> ParameterVersionRow:
    found = db.get(ParameterVersionRow, (row.id, version))
    if found is None:
        raise ParameterVersionNotFound(f"parameter {row.name} has no version {version}",
                                       hint=f"`kiln parameter history {row.name}` lists its versions")
    return found


def _labels(db: Session, row: ParameterRow) -> dict[int, list[str]]:
    by_version: dict[int, list[str]] = {}
    for label in db.scalars(
        select(ParameterLabelRow).where(ParameterLabelRow.parameter_id == row.id).order_by(ParameterLabelRow.label)
    ):
        by_version.setdefault(label.version, []).append(label.label)
    return by_version


def _image_problem(value: str, account: str, region: str) -> str | None:
    """Why ``value`` cannot be an ``aws:ec2:image`` parameter of ``account`` in ``region`` (None: it can):
    the AMI must exist there, be the account's, public or shared with it, and be available."""
    from kiln.errors import NotFound
    from kiln.services.ec2.images import describe_image

    if not AMI_ID.match(value):
        return f"{value!r} is not an AMI id (ami- followed by 8 or 17 hex digits)"
    try:
        state = describe_image(value, region, account=account)["State"]
    except NotFound:
        return f"AMI {value} does not exist in region {region} or is not shared with account {account}"
    if state != "available":
        return f"AMI {value} in region {region} is {state}, not available"
    return None


def put_parameter(
    name: str,
    value: str,
    *,
    parameter_type: str | None = None,
    data_type: str | None = None,
    description: str | None = None,
    overwrite: bool = False,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
    db: Session | None = None,
) -> int:
    """SSM ``PutParameter``; returns the new version. A new parameter is ``String`` of data type
    ``text`` unless told; an overwrite keeps the type, data type and description it does not change,
    and cannot change the data type to or from ``aws:ec2:image``."""
    from kiln.services.accounts.regions import require_region

    name = names.check_name(name)
    require_region(region)
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise ValidationException(f"a description has at most {MAX_DESCRIPTION} characters", location="Description")
    if not value:
        raise ValidationException("a parameter value cannot be empty", location="Value")
    if parameter_type is not None:
        names.check_type(parameter_type)
    with unit_of_work(db) as session:
        row = _row(session, name, account, region)
        current = None if row is None else _version(session, row, row.latest_version)
        if row is not None and not overwrite:
            raise ParameterAlreadyExists(
                f"parameter {name} already exists (version {row.latest_version}) for account {account} "
                f"in region {region}",
                hint="add --overwrite to write a new version",
            )
        kind = parameter_type or (current.type if current else "String")
        data = data_type or (current.data_type if current else "text")
        names.check_data_type(data, kind)
        if current is not None and names.IMAGE_DATA_TYPE in (data, current.data_type) and data != current.data_type:
            raise ValidationException(
                f"parameter {name} is {current.data_type}; its data type cannot change to or from "
                f"{names.IMAGE_DATA_TYPE}",
                location="DataType",
            )
        problem = _image_problem(value, account, region) if data == names.IMAGE_DATA_TYPE else None
        if problem is None:
            return _write(session, row, name, value, kind, data, description, current, account, region)
        operation = "Create" if row is None else "Update"
    # As SSM reports a failed check: an event (kept even though nothing is written), then kiln's refusal.
    from kiln.services.common.events import record_event

    record_event(CHANGE_EVENT, parameter_arn(name, account, region), {
        "operation": operation, "name": name, "type": kind, "dataType": data,
        "exception": "Unable to Describe Resource",
    }, db)
    raise InvalidImageParameterValue(
        f"parameter {name}: {problem}; nothing was written",
        location="Value",
        hint=f"`kiln image list --region {region}` shows the AMIs this account may use",
    )


def _write(
    session: Session, row: ParameterRow | None, name: str, value: str, kind: str, data: str,
    description: str | None, current: ParameterVersionRow | None, account: str, region: str,
) -> int:
    now = utcnow()
    if row is None:
        row = ParameterRow(account_id=account, region=region, name=name, latest_version=0, created_at=now)
        session.add(row)
        session.flush()
    version = row.latest_version + 1
    _drop_oldest(session, row, version)
    session.add(ParameterVersionRow(
        parameter_id=row.id, version=version, type=kind, data_type=data, value=value,
        description=description if description is not None else (current.description if current else None),
        modified_at=now, modified_by=_user(account),
    ))
    row.latest_version = version
    return version


def _drop_oldest(db: Session, row: ParameterRow, new_version: int) -> None:
    """Keep the newest ``MAX_VERSIONS`` with the new one; a labelled oldest version blocks the write."""
    kept = db.scalar(select(func.count()).where(ParameterVersionRow.parameter_id == row.id)) or 0
    if kept < MAX_VERSIONS:
        return
    oldest = db.scalar(select(func.min(ParameterVersionRow.version)).where(ParameterVersionRow.parameter_id == row.id))
    labels = _labels(db, row).get(oldest or 0)
    if labels:
        raise ParameterMaxVersionLimitExceeded(
            f"You attempted to create a new version of {row.name} by calling the PutParameter API with the "
            f"overwrite flag. Version {oldest}, the oldest version, can't be deleted because it has a label "
            f"associated with it ({', '.join(labels)}). Move the label to another version of the parameter, "
            "and try again.",
            hint=f"kiln parameter label {row.name} --version {new_version - 1} {labels[0]}",
        )
    db.execute(delete(ParameterVersionRow).where(
        ParameterVersionRow.parameter_id == row.id, ParameterVersionRow.version == oldest
    ))


def _shape(row: ParameterRow, version: ParameterVersionRow, selector: str | None = None) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "Name": row.name,
        "Type": version.type,
        "Value": version.value,
        "Version": version.version,
    }
    if selector:
        shape["Selector"] = selector
    shape.update({
        "LastModifiedDate": version.modified_at,
        "ARN": parameter_arn(row.name, row.account_id, row.region),
        "DataType": version.data_type,
    })
    return shape


def get_parameter(
    selector: str, *, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION, db: Session | None = None
) -> dict[str, Any]:
    """SSM ``GetParameter``: ``name`` (the latest version), ``name:3`` or ``name:label``, or the same
    after the parameter's ARN; an unknown version or label is ``ParameterVersionNotFound``, never the
    latest instead."""
    with unit_of_work(db) as session:
        if selector.startswith("arn:"):
            selector = _from_arn(session, selector, account, region)
        name, number, label = names.split_selector(selector)
        row = _existing(session, name, account, region)
        if label is not None:
            found = session.get(ParameterLabelRow, (row.id, label))
            if found is None:
                raise ParameterVersionNotFound(f"parameter {name} has no version labelled {label!r}",
                                               hint=f"`kiln parameter history {name}` shows its labels")
            number = found.version
        version = _version(session, row, row.latest_version if number is None else number)
        suffix = selector.strip()[len(name):] if ":" in selector else None
        return _shape(row, version, suffix)


def _from_arn(db: Session, arn: str, account: str, region: str) -> str:
    """``arn:aws:ssm:<region>:<account>:parameter/<name>[:selector]`` → ``name[:selector]``, for the
    caller's own parameters (kiln shares none across accounts or regions)."""
    found = PARAMETER_ARN.match(arn)
    if found is None:
        raise ValidationException(f"{arn!r} is not a parameter ARN (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME)",
                                  location="Name")
    if (found["account"], found["region"]) != (account, region):
        raise ParameterNotFound(f"parameter {arn} is not one of account {account} in region {region}",
                                hint="kiln does not share parameters across accounts or regions")
    name, sep, tail = found["rest"].partition(":")
    # The ARN drops a hierarchical name's leading '/': /golden/web and golden/web share an ARN form.
    if _row(db, "/" + name, account, region) is not None or "/" in name:
        name = "/" + name
    return name + sep + tail


def get_parameter_history(
    name: str, *, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION
) -> list[dict[str, Any]]:
    """SSM ``GetParameterHistory``: every kept version, oldest first, with its labels."""
    name = names.check_name(name)
    with unit_of_work() as session:
        row = _existing(session, name, account, region)
        labels = _labels(session, row)
        versions = session.scalars(
            select(ParameterVersionRow).where(ParameterVersionRow.parameter_id == row.id)
            .order_by(ParameterVersionRow.version)
        )
        return [
            {
                "Name": row.name,
                "Type": version.type,
                "LastModifiedDate": version.modified_at,
                "LastModifiedUser": version.modified_by,
                **({"Description": version.description} if version.description else {}),
                "Value": version.value,
                "Version": version.version,
                "Labels": labels.get(version.version, []),
                "Tier": TIER,
                "DataType": version.data_type,
            }
            for version in versions
        ]


def describe_parameters(
    *,
    path: str | None = None,
    recursive: bool = True,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> list[dict[str, Any]]:
    """SSM ``DescribeParameters`` (``ParameterMetadata``) of the account in the region, by name;
    ``path`` keeps those under it (``GetParametersByPath``: all levels, or direct children only)."""
    if path is not None:
        if not path.startswith("/"):
            raise ValidationException(f"path {path!r} must begin with '/'", location="Path")
        if path != "/":
            names.check_name(path.rstrip("/"), "Path")
    with unit_of_work() as session:
        rows = session.scalars(
            select(ParameterRow).where(ParameterRow.account_id == account, ParameterRow.region == region)
            .order_by(ParameterRow.name)
        ).all()
        found = []
        for row in rows:
            if path is not None and not _under(row.name, path, recursive):
                continue
            latest = _version(session, row, row.latest_version)
            found.append({
                "Name": row.name,
                "ARN": parameter_arn(row.name, account, region),
                "Type": latest.type,
                "LastModifiedDate": latest.modified_at,
                "LastModifiedUser": latest.modified_by,
                **({"Description": latest.description} if latest.description else {}),
                "Version": latest.version,
                "Tier": TIER,
                "DataType": latest.data_type,
                "Value": latest.value,  # kiln's own: what GetParametersByPath would answer
            })
        return found


def _under(name: str, path: str, recursive: bool) -> bool:
    prefix = path.rstrip("/") + "/"
    if not name.startswith(prefix):
        return False
    return recursive or "/" not in name[len(prefix):]


def label_parameter_version(
    name: str,
    labels: list[str],
    *,
    version: int | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    """SSM ``LabelParameterVersion``: the labels go on ``version`` (default: the latest), moving from
    any other version that had them. Invalid labels come back in ``InvalidLabels`` (and are not
    applied), as SSM answers."""
    name = names.check_name(name)
    if not 1 <= len(labels) <= MAX_LABELS_PER_VERSION:
        raise ValidationException(f"give 1 to {MAX_LABELS_PER_VERSION} labels", location="Labels")
    invalid = [label for label in labels if names.label_problem(label)]
    valid = [label for label in dict.fromkeys(labels) if label not in invalid]
    with unit_of_work() as session:
        row = _existing(session, name, account, region)
        target = _version(session, row, row.latest_version if version is None else version).version
        on_target = set(_labels(session, row).get(target, [])) | set(valid)
        if len(on_target) > MAX_LABELS_PER_VERSION:
            raise ParameterVersionLabelLimitExceeded(
                f"version {target} of {name} would have {len(on_target)} labels; the limit is "
                f"{MAX_LABELS_PER_VERSION}",
                location="Labels",
            )
        for label in valid:
            existing = session.get(ParameterLabelRow, (row.id, label))
            if existing is None:
                session.add(ParameterLabelRow(parameter_id=row.id, label=label, version=target))
            else:
                existing.version = target
        return {"InvalidLabels": invalid, "ParameterVersion": target}


def unlabel_parameter_version(
    name: str, version: int, labels: list[str], *, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION
) -> dict[str, Any]:
    """SSM ``UnlabelParameterVersion``: labels not on that version come back in ``InvalidLabels``."""
    name = names.check_name(name)
    with unit_of_work() as session:
        row = _existing(session, name, account, region)
        _version(session, row, version)
        removed, invalid = [], []
        for label in labels:
            found = session.get(ParameterLabelRow, (row.id, label))
            if found is not None and found.version == version:
                session.delete(found)
                removed.append(label)
            else:
                invalid.append(label)
        return {"RemovedLabels": removed, "InvalidLabels": invalid}


def delete_parameter(name: str, *, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION) -> None:
    """SSM ``DeleteParameter``: every version and label goes."""
    name = names.check_name(name)
    with unit_of_work() as session:
        row = _existing(session, name, account, region)
        session.execute(delete(ParameterLabelRow).where(ParameterLabelRow.parameter_id == row.id))
        session.execute(delete(ParameterVersionRow).where(ParameterVersionRow.parameter_id == row.id))
        session.delete(row)
