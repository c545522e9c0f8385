"""Amazon EC2 Auto Scaling groups for every front end: CreateAutoScalingGroup,
UpdateAutoScalingGroup, DescribeAutoScalingGroups, DeleteAutoScalingGroup, SetDesiredCapacity, in
Auto Scaling's shapes and error codes (botocore's ``autoscaling`` model).

A group belongs to an account and a region (its name is unique there) and launches from a launch
template version: a number, ``$Default`` or ``$Latest``, the alias resolved at each launch. Its
sizes obey MinSize <= DesiredCapacity <= MaxSize. Changing a group changes no instance: the reconcile
pass (``asg_reconcile``) brings the instances to the desired capacity, and an instance refresh
(``instance_refresh``) replaces them onto a new configuration.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from kiln.db.base import utcnow
from kiln.db.tables.autoscaling import AutoScalingGroupRow, InstanceRefreshRow
from kiln.ec2_errors import Ec2Error, InvalidLaunchTemplateIdVersionNotFound
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.schedule.claims import bump_jobs_version
from kiln.services.common.unit import unit_of_work
from kiln.services.fleet import asg_members, autoscaling_model
from kiln.services.fleet.autoscaling_errors import (
    GroupAlreadyExists,
    GroupNotFound,
    ResourceInUse,
    ScalingActivityInProgress,
    ValidationError,
)
from kiln.services.fleet.launch_templates import DEFAULT, TemplateRef, check_image, find, version_row

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kiln.db.tables.fleet import LaunchTemplateRow
    from kiln.runtime.records import Instance

DELETING = "Delete in progress"
ACTIVE_REFRESH = ("Pending", "InProgress", "Cancelling", "RollbackInProgress")
HEALTH_CHECK_TYPES = ("EC2",)  # kiln has no load balancers; EC2 status checks are the process's life
LEASE_PREFIX = "asg:"
LEASE_TTL = 900.0  # seconds a reconcile pass (or a deletion) may hold a group; a dead holder loses it at once
FULLY_FORMED = "You must use a valid fully-formed launch template."


def lease_name(arn: str) -> str:
    return LEASE_PREFIX + arn


def pass_running(arn: str) -> bool:
    """A live reconcile pass holds the group's lease (one killed -9 does not count)."""
    from kiln.schedule.leases import holder_alive, holder_of

    holder = holder_of(lease_name(arn))
    return holder is not None and holder_alive(holder)


def _check_name(name: Any, field: str = "AutoScalingGroupName") -> str:
    member = autoscaling_model.shape("CreateAutoScalingGroupType").members["AutoScalingGroupName"]
    return str(autoscaling_model.check_value(member, name, field))


def find_group(db: Session, name: str, account: str, region: str, *, deleting_ok: bool = False) -> AutoScalingGroupRow:
    """The group ``name`` of ``account`` in ``region``; a group being deleted is not found either."""
    row = db.scalars(select(AutoScalingGroupRow).where(
        AutoScalingGroupRow.account_id == account, AutoScalingGroupRow.region == region,
        AutoScalingGroupRow.name == name)).first()
    if row is None or (row.status == DELETING and not deleting_ok):
        raise GroupNotFound(name)
    return row


def resolve_template(
    db: Session, spec: Any, account: str, region: str, field: str = "LaunchTemplate", *, action: str | None = None
) -> tuple[LaunchTemplateRow, str, int]:
    """``LaunchTemplateSpecification`` → (template, version as given, the number it names now). A
    template or version that does not exist, a version without an ImageId, or (with ``action``: a
    group being created or changed) an image the account's allowed images settings refuse, is the
    service's ``ValidationError`` around EC2's words."""
    autoscaling_model.check_structure("LaunchTemplateSpecification", spec, field)
    version = spec.get("Version") or DEFAULT
    ref = TemplateRef(spec.get("LaunchTemplateId"), spec.get("LaunchTemplateName"))
    try:
        template = find(db, ref, account, region)
        found = version_row(db, template, version)
    except Ec2Error as error:
        where = f"{field}.Version" if isinstance(error, InvalidLaunchTemplateIdVersionNotFound) else field
        raise ValidationError(f"{FULLY_FORMED} {error.message}", location=where, hint=error.hint) from None
    if not found.data.get("ImageId"):
        raise ValidationError(f"{FULLY_FORMED} Version {found.version} of {template.id} has no ImageId",
                              location=f"{field}.Version")
    if action is not None:
        try:
            check_image(found.data, account, region, db, action)
        except Ec2Error as error:
            raise ValidationError(f"{FULLY_FORMED} {error.message}", location=field, hint=error.hint) from None
    return template, str(version), found.version


def _check_sizes(min_size: int, max_size: int, desired: int) -> None:
    for field, value in (("MinSize", min_size), ("MaxSize", max_size), ("DesiredCapacity", desired)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValidationError(f"{field} must be a whole number of instances, 0 or more (not {value!r})",
                                  location=field)
    if max_size < min_size:
        raise ValidationError(f"Max bound, {max_size}, must be greater than or equal to min bound, {min_size}",
                              location="MaxSize")
    if not min_size <= desired <= max_size:
        raise ValidationError(f"Desired capacity:{desired} must be between the specified min size:{min_size} "
                              f"and max size:{max_size}", location="DesiredCapacity")


def _check_tags(tags: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    checked = []
    tag_shape = autoscaling_model.shape("Tag")
    for index, tag in enumerate(tags):
        field = f"Tags.member.{index + 1}"
        if not isinstance(tag, Mapping) or "Key" not in tag:
            raise ValidationError("a tag is {Key, Value, PropagateAtLaunch}", location=field)
        for key in ("Key", "Value", "PropagateAtLaunch"):
            if key in tag:
                autoscaling_model.check_value(tag_shape.members[key], tag[key], f"{field}.{key}")
        if str(tag["Key"]).startswith("aws:"):
            raise ValidationError(f"Tag keys starting with 'aws:' are reserved ({tag['Key']})", location=f"{field}.Key")
        checked.append({"Key": tag["Key"], "Value": tag.get("Value", ""),
                        "PropagateAtLaunch": bool(tag.get("PropagateAtLaunch", True))})
    keys = [tag["Key"] for tag in checked]
    duplicate = next((key for key in keys if keys.count(key) > 1), None)
    if duplicate is not None:
        raise ValidationError(f"tag key {duplicate!r} is given twice", location="Tags")
    return checked


def _check_seconds(value: int | None, field: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValidationError(f"{field} is a number of seconds, 0 or more (not {value!r})", location=field)
    return value


def _arn(account: str, region: str, name: str) -> str:
    return f"arn:aws:autoscaling:{region}:{account}:autoScalingGroup:{uuid.uuid4()}:autoScalingGroupName/{name}"


def create_auto_scaling_group(
    name: str,
    *,
    launch_template: Mapping[str, Any],
    min_size: int,
    max_size: int,
    desired_capacity: int | None = None,
    tags: Sequence[Mapping[str, Any]] = (),
    health_check_type: str = "EC2",
    health_check_grace_period: int | None = None,
    default_instance_warmup: int | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    """``CreateAutoScalingGroup``: DesiredCapacity defaults to MinSize; no instance is launched here
    (the next reconcile pass launches them). Answers the group as DescribeAutoScalingGroups shows it."""
    from kiln.services.accounts.regions import require_region

    _check_name(name)
    desired = min_size if desired_capacity is None else desired_capacity
    _check_sizes(min_size, max_size, desired)
    checked_tags = _check_tags(tags)
    _check_health_check_type(health_check_type)
    _check_seconds(health_check_grace_period, "HealthCheckGracePeriod")
    _check_seconds(default_instance_warmup, "DefaultInstanceWarmup")
    require_region(region)
    with unit_of_work() as db:
        taken = db.scalars(select(AutoScalingGroupRow).where(
            AutoScalingGroupRow.account_id == account, AutoScalingGroupRow.region == region,
            AutoScalingGroupRow.name == name)).first()
        if taken is not None:
            raise GroupAlreadyExists(
                f"AutoScalingGroup by this name already exists - A group with the name {name} already exists",
                location="AutoScalingGroupName")
        template, version, _ = resolve_template(db, dict(launch_template), account, region,
                                                action="CreateAutoScalingGroup")
        row = AutoScalingGroupRow(
            arn=_arn(account, region, name), account_id=account, region=region, name=name,
            template_id=template.id, template_version=version, min_size=min_size, max_size=max_size,
            desired_capacity=desired, health_check_type=health_check_type,
            health_check_grace_period=health_check_grace_period or 0,
            default_instance_warmup=default_instance_warmup, tags=checked_tags, status=None, created_at=utcnow(),
        )
        db.add(row)
        db.flush()
        bump_jobs_version(db=db)  # the scheduler's reconcile job exists while any group does
        return group_shape(db, row, [])


def _check_health_check_type(value: str) -> None:
    if value not in HEALTH_CHECK_TYPES:
        raise ValidationError(f"HealthCheckType {value!r} is not one kiln checks; use {', '.join(HEALTH_CHECK_TYPES)}",
                              location="HealthCheckType")


def update_auto_scaling_group(
    name: str,
    *,
    launch_template: Mapping[str, Any] | None = None,
    min_size: int | None = None,
    max_size: int | None = None,
    desired_capacity: int | None = None,
    health_check_grace_period: int | None = None,
    default_instance_warmup: int | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    """``UpdateAutoScalingGroup``: only the members given change. A new MinSize above the desired
    capacity (or MaxSize below it) moves the desired capacity with it when none is given, as the
    service does. Existing instances are not replaced (that is what an instance refresh is for)."""
    _check_seconds(health_check_grace_period, "HealthCheckGracePeriod")
    _check_seconds(default_instance_warmup, "DefaultInstanceWarmup")
    with unit_of_work() as db:
        row = find_group(db, name, account, region)
        new_min = row.min_size if min_size is None else min_size
        new_max = row.max_size if max_size is None else max_size
        desired = desired_capacity
        if desired is None:
            desired = row.desired_capacity
            if min_size is not None and isinstance(min_size, int) and desired < min_size:
                desired = min_size
            if max_size is not None and isinstance(max_size, int) and desired > max_size:
                desired = max_size
        _check_sizes(new_min, new_max, desired)
        if launch_template is not None:
            template, version, _ = resolve_template(db, dict(launch_template), account, region,
                                                    action="UpdateAutoScalingGroup")
            row.template_id, row.template_version = template.id, version
        row.min_size, row.max_size, row.desired_capacity = new_min, new_max, desired
        if health_check_grace_period is not None:
            row.health_check_grace_period = health_check_grace_period
        if default_instance_warmup is not None:
            row.default_instance_warmup = default_instance_warmup
        return group_shape(db, row, asg_members.members(account, region, name))


def set_desired_capacity(
    name: str, desired_capacity: int, *, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION
) -> dict[str, Any]:
    """``SetDesiredCapacity``: within the group's MinSize and MaxSize."""
    if isinstance(desired_capacity, bool) or not isinstance(desired_capacity, int) or desired_capacity < 0:
        raise ValidationError(f"DesiredCapacity must be 0 or more (not {desired_capacity!r})",
                              location="DesiredCapacity")
    with unit_of_work() as db:
        row = find_group(db, name, account, region)
        if desired_capacity > row.max_size:
            raise ValidationError(f"New SetDesiredCapacity value {desired_capacity} is above max value "
                                  f"{row.max_size} for the AutoScalingGroup.", location="DesiredCapacity")
        if desired_capacity < row.min_size:
            raise ValidationError(f"New SetDesiredCapacity value {desired_capacity} is below min value "
                                  f"{row.min_size} for the AutoScalingGroup.", location="DesiredCapacity")
        row.desired_capacity = desired_capacity
        return group_shape(db, row, asg_members.members(account, region, name))


def describe_auto_scaling_groups(
    names: Sequence[str] = (), *, filters: Mapping[str, Sequence[str]] | None = None,
    account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    """``DescribeAutoScalingGroups``: the named groups (an unknown name is simply absent, as the
    service answers) or all of the account's in the region, with their instances; a group being
    deleted shows ``Status: Delete in progress``. Filters:
    ``tag:<key>``, ``tag-key``, ``tag-value``."""
    for name in filters or {}:
        if name not in ("tag-key", "tag-value") and not name.startswith("tag:"):
            raise ValidationError(f"unknown filter {name!r}; use tag:<key>, tag-key, tag-value", location="Filters")
    with unit_of_work() as db:
        query = select(AutoScalingGroupRow).where(
            AutoScalingGroupRow.account_id == account, AutoScalingGroupRow.region == region
        ).order_by(AutoScalingGroupRow.name)
        if names:
            query = query.where(AutoScalingGroupRow.name.in_(list(names)))
        rows = [row for row in db.scalars(query) if _tags_match(row.tags, filters or {})]
        by_group = asg_members.members_by_group(account) if rows else {}
        return {"AutoScalingGroups": [group_shape(db, row, by_group.get((account, region, row.name), []))
                                      for row in rows]}


def _tags_match(tags: list[dict[str, Any]], filters: Mapping[str, Sequence[str]]) -> bool:
    as_dict = {tag["Key"]: tag["Value"] for tag in tags}
    for name, values in filters.items():
        if name == "tag-key":
            ok = any(key in values for key in as_dict)
        elif name == "tag-value":
            ok = any(value in values for value in as_dict.values())
        else:
            ok = as_dict.get(name.removeprefix("tag:")) in values
        if not ok:
            return False
    return True


def active_refresh(db: Session, arn: str) -> InstanceRefreshRow | None:
    return db.scalars(select(InstanceRefreshRow).where(
        InstanceRefreshRow.group_arn == arn, InstanceRefreshRow.status.in_(ACTIVE_REFRESH))).first()


def group_shape(db: Session, row: AutoScalingGroupRow, instances: list[Instance]) -> dict[str, Any]:
    from kiln.db.tables.fleet import LaunchTemplateRow

    template = db.get(LaunchTemplateRow, row.template_id)
    refresh = active_refresh(db, row.arn)
    shape: dict[str, Any] = {
        "AutoScalingGroupName": row.name,
        "AutoScalingGroupARN": row.arn,
        "LaunchTemplate": {"LaunchTemplateId": row.template_id,
                           "LaunchTemplateName": template.name if template else None,
                           "Version": row.template_version},
        "MinSize": row.min_size,
        "MaxSize": row.max_size,
        "DesiredCapacity": row.desired_capacity,
        "DefaultCooldown": 300,
        "AvailabilityZones": [f"{row.region}a"],
        "HealthCheckType": row.health_check_type,
        "HealthCheckGracePeriod": row.health_check_grace_period,
        "Instances": [instance_shape(instance, refresh, template) for instance in instances],
        "CreatedTime": row.created_at,
        "Tags": [{"ResourceId": row.name, "ResourceType": "auto-scaling-group", **tag} for tag in row.tags],
        "TerminationPolicies": ["Default"],
        "NewInstancesProtectedFromScaleIn": False,
    }
    if row.default_instance_warmup is not None:
        shape["DefaultInstanceWarmup"] = row.default_instance_warmup
    if row.status:
        shape["Status"] = row.status
    return shape


def instance_shape(instance: Instance, refresh: InstanceRefreshRow | None, template: Any) -> dict[str, Any]:
    """An ``Instance`` of DescribeAutoScalingGroups. kiln reports a refresh's replacement ``Pending``
    until it has passed warm-up and its health check; then it is ``InService``."""
    template_id, number = asg_members.launched_from(instance)
    if instance.state == "running":
        waiting = (refresh is not None and instance.id not in refresh.to_replace and instance.id not in refresh.healthy
                   and instance.launch_time >= refresh.phase_started_at)
        state = "Pending" if waiting else "InService"
    elif instance.state == "pending":
        state = "Pending"
    else:
        state = "Terminating"
    return {
        "InstanceId": instance.id,
        "InstanceType": instance.instance_type,
        "AvailabilityZone": f"{instance.region}a",
        "LifecycleState": state,
        "HealthStatus": "Healthy" if asg_members.healthy(instance) or asg_members.starting(instance) else "Unhealthy",
        "LaunchTemplate": {"LaunchTemplateId": template_id,
                           "LaunchTemplateName": template.name if template is not None and template.id == template_id
                           else None,
                           "Version": str(number) if number is not None else None},
        "ImageId": instance.image_id,
        "ProtectedFromScaleIn": False,
    }


def delete_auto_scaling_group(
    name: str, *, force_delete: bool = False, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION
) -> dict[str, Any]:
    """``DeleteAutoScalingGroup``. Without ForceDelete: refused with ``ResourceInUse`` while the
    group has instances, ``ScalingActivityInProgress`` while an instance refresh is active or a
    reconcile pass is working on it. With ForceDelete: the group is marked ``Delete in progress``
    (invisible from then on), its instances are terminated, then the group and its refreshes go; a
    crash in between is finished by the next reconcile pass."""
    from kiln.schedule.leases import acquire, new_holder, release

    with unit_of_work() as db:
        row = find_group(db, name, account, region)
        arn = row.arn
        live = asg_members.members(account, region, name)
        if not force_delete:
            if active_refresh(db, arn) is not None or pass_running(arn):
                raise ScalingActivityInProgress(
                    "You cannot delete an AutoScalingGroup while there are scaling activities in progress for "
                    "that group.", location="AutoScalingGroupName", hint="wait, or use --force-delete")
            if live:
                raise ResourceInUse(
                    "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance "
                    f"request(s) still in the group. ({len(live)} instance(s): "
                    f"{', '.join(i.id for i in live[:5])})", location="AutoScalingGroupName",
                    hint="set its desired capacity to 0 and reconcile, or use --force-delete")
        row.status = DELETING
    # Under the group's lease, so no pass launches into a group being emptied; while a pass holds it,
    # the deletion finishes at the next pass (the group shows Status "Delete in progress" till then).
    holder = new_holder()
    if acquire(lease_name(arn), holder, LEASE_TTL):
        try:
            finish_delete(arn, account, region, name)
        finally:
            release(lease_name(arn), holder)
    return {}


def finish_delete(arn: str, account: str, region: str, name: str) -> list[str]:
    """Terminate the instances of a group marked for deletion, then delete it; returns the ids
    terminated (safe to repeat after a crash)."""
    from kiln.services.ec2.instances import terminate_instance

    terminated = []
    for instance in asg_members.members(account, region, name):
        terminate_instance(instance.id, force=True)
        terminated.append(instance.id)
    with unit_of_work() as db:
        row = db.get(AutoScalingGroupRow, arn)
        if row is not None:
            db.execute(InstanceRefreshRow.__table__.delete().where(InstanceRefreshRow.group_arn == arn))
            db.delete(row)
    return terminated
