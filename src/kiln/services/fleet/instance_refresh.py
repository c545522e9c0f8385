"""Instance refresh: StartInstanceRefresh, DescribeInstanceRefreshes, CancelInstanceRefresh, and
the one step each reconcile pass takes (:func:`advance`).

Everything a refresh knows is in its row: the instances this phase must replace (fixed when it
begins), the replacements already found healthy, checkpoints, status. A step derives the rest from
the group's live instances, so a pass killed at any point (even mid-launch) is finished by the next
one with nothing launched twice and nothing left behind.

A step, when no replacement is still warming up: it terminates as many old instances as keep the
healthy count at or above ``ceil(desired * MinHealthyPercentage / 100)``, and the pass launches their
replacements from the refresh's configuration. When that leaves no room (e.g. 100 %), it launches
one replacement first (capacity desired + 1) and terminates an old instance once that one is
healthy. A replacement is healthy once its process is alive, ``InstanceWarmup`` seconds have passed
since its launch, and, when its launch template version tags instances with
``kiln:HealthCheckCommand``, that command (run with ``/bin/sh -c`` inside it) exits 0. A replacement
whose process ends, or whose command fails after warm-up, fails the refresh; with AutoRollback the
refresh then replaces the replacements with the previous configuration (RollbackInProgress →
RollbackSuccessful). Not modelled: MaxHealthyPercentage above 100 (accepted, launches stay
terminate-first), BakeTime, alarms, warm pools, standby and scale-in protected instances.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from kiln.db.base import utcnow
from kiln.db.tables.autoscaling import AutoScalingGroupRow, InstanceRefreshRow
from kiln.errors import KilnError
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.services.common.unit import unit_of_work
from kiln.services.fleet import asg_members, autoscaling_model
from kiln.services.fleet.autoscaling import (
    active_refresh,
    find_group,
    pass_running,
    resolve_template,
)
from kiln.services.fleet.autoscaling_errors import (
    ActiveInstanceRefreshNotFound,
    InstanceRefreshInProgress,
    IrreversibleInstanceRefresh,
    ValidationError,
)
from kiln.services.fleet.launch_templates import DEFAULT, LATEST, TemplateRef

if TYPE_CHECKING:
    from kiln.runtime.records import Instance

HEALTH_CHECK_TAG = "kiln:HealthCheckCommand"
HEALTH_CHECK_TIMEOUT = 30.0  # seconds
DEFAULT_MIN_HEALTHY = 90
DEFAULT_CHECKPOINT_DELAY = 3600
SUPPORTED_PREFERENCES = ("MinHealthyPercentage", "MaxHealthyPercentage", "InstanceWarmup", "CheckpointPercentages",
                         "CheckpointDelay", "SkipMatching", "AutoRollback", "StandbyInstances",
                         "ScaleInProtectedInstances")


@dataclass(frozen=True)
class Config:
    """A launch template and version as a group or refresh names it (the version maybe an alias)."""

    template_id: str
    version: str

    @classmethod
    def of(cls, configuration: Mapping[str, Any]) -> Config:
        spec = configuration["LaunchTemplate"]
        return cls(spec["LaunchTemplateId"], str(spec.get("Version") or DEFAULT))

    def __str__(self) -> str:
        return f"{self.template_id} version {self.version}"

    def as_configuration(self) -> dict[str, Any]:
        return {"LaunchTemplate": {"LaunchTemplateId": self.template_id, "Version": self.version}}


@dataclass
class Step:
    """What the pass does for a group with a refresh: launch missing capacity (plus ``extra``) from
    ``config`` and terminate ``terminate``. ``active`` False: the refresh ended in this step."""

    config: Config
    terminate: list[str] = field(default_factory=list)
    extra: int = 0
    active: bool = True


# --- requests --------------------------------------------------------------------------------------


def _check_preferences(preferences: Mapping[str, Any]) -> dict[str, Any]:
    prefs = autoscaling_model.check_structure("RefreshPreferences", dict(preferences), "Preferences",
                                              supported=SUPPORTED_PREFERENCES)
    checkpoints = prefs.get("CheckpointPercentages")
    if checkpoints is not None and (checkpoints != sorted(set(checkpoints)) or not checkpoints):
        raise ValidationError("CheckpointPercentages must be unique and in ascending order",
                              location="Preferences.CheckpointPercentages")
    if "CheckpointDelay" in prefs and not checkpoints:
        raise ValidationError("CheckpointDelay can only be given with CheckpointPercentages",
                              location="Preferences.CheckpointDelay")
    if "MaxHealthyPercentage" in prefs:
        low = prefs.get("MinHealthyPercentage")
        if low is None:
            raise ValidationError("MaxHealthyPercentage needs MinHealthyPercentage",
                                  location="Preferences.MaxHealthyPercentage")
        if prefs["MaxHealthyPercentage"] - low > 100:
            raise ValidationError("The difference between MaxHealthyPercentage and MinHealthyPercentage must be "
                                  "100 or less", location="Preferences.MaxHealthyPercentage")
    for member in ("StandbyInstances", "ScaleInProtectedInstances"):
        prefs.pop(member, None)  # kiln has neither standby nor scale-in protected instances
    return prefs


def start_instance_refresh(
    name: str,
    *,
    preferences: Mapping[str, Any] | None = None,
    desired_configuration: Mapping[str, Any] | None = None,
    strategy: str = "Rolling",
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    """``StartInstanceRefresh``: recorded Pending; reconcile passes carry it out. One active refresh
    per group (``InstanceRefreshInProgress``). AutoRollback needs a DesiredConfiguration, and neither
    the group nor it may name ``$Default``/``$Latest`` or use a ``resolve:ssm:`` image
    (``IrreversibleInstanceRefresh``), as the service requires."""
    if strategy != "Rolling":
        raise ValidationError(f"Strategy {strategy!r} is not supported by kiln; use Rolling", location="Strategy")
    prefs = _check_preferences(preferences or {})
    with unit_of_work() as db:
        group = find_group(db, name, account, region)
        if active_refresh(db, group.arn) is not None:
            raise InstanceRefreshInProgress(
                "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.",
                location="AutoScalingGroupName", hint=f"kiln asg cancel-instance-refresh {name}")
        desired = None
        if desired_configuration is not None:
            spec = autoscaling_model.check_structure(
                "DesiredConfiguration", dict(desired_configuration), "DesiredConfiguration",
                supported=("LaunchTemplate",)).get("LaunchTemplate")
            if spec is None:
                raise ValidationError("DesiredConfiguration needs a LaunchTemplate",
                                      location="DesiredConfiguration.LaunchTemplate")
            template, version, _ = resolve_template(db, spec, account, region, "DesiredConfiguration.LaunchTemplate")
            desired = Config(template.id, version)
        previous = Config(group.template_id, group.template_version)
        if prefs.get("AutoRollback"):
            _check_reversible(db, previous, desired, account, region)
        target = desired or previous
        number = version_number_now(target, account, region, db)
        live = [i for i in asg_members.members(account, region, name) if i.state in ("pending", "running")]
        skip = bool(prefs.get("SkipMatching"))
        to_replace = [i.id for i in live if not (skip and asg_members.launched_from(i) == (target.template_id, number))]
        now = utcnow()
        refresh = InstanceRefreshRow(
            id=str(uuid.uuid4()), group_arn=group.arn, status="Pending", status_reason=None, strategy=strategy,
            preferences=prefs, desired_configuration=desired.as_configuration() if desired else None,
            previous_configuration=previous.as_configuration(), to_replace=to_replace, healthy=[],
            phase_started_at=now, percentage_complete=0, instances_to_update=len(to_replace), checkpoints_passed=0,
            checkpoint_reached_at=None, rollback_details=None, start_time=now, end_time=None,
        )
        db.add(refresh)
        return {"InstanceRefreshId": refresh.id}


def _check_reversible(db: Any, previous: Config, desired: Config | None, account: str, region: str) -> None:
    from kiln.services.fleet.launch_templates import version_row

    if desired is None:
        raise IrreversibleInstanceRefresh(
            "AutoRollback needs a DesiredConfiguration to roll back from", location="Preferences.AutoRollback")
    for which, config in (("the group", previous), ("DesiredConfiguration", desired)):
        if config.version in (DEFAULT, LATEST):
            raise IrreversibleInstanceRefresh(
                f"AutoRollback cannot be used when {which} uses {config.version}; name a version number",
                location="Preferences.AutoRollback")
        from kiln.services.fleet.launch_templates import find

        template = find(db, TemplateRef(launch_template_id=config.template_id), account, region)
        image = str(version_row(db, template, config.version).data.get("ImageId", ""))
        if image.startswith("resolve:ssm:"):
            raise IrreversibleInstanceRefresh(
                f"AutoRollback cannot be used when {which}'s launch template uses {image}",
                location="Preferences.AutoRollback")


def version_number_now(config: Config, account: str, region: str, db: Any = None) -> int:
    """The version number ``config`` names now."""
    from kiln.services.fleet.launch_templates import find, version_number

    with unit_of_work(db) as session:
        template = find(session, TemplateRef(launch_template_id=config.template_id), account, region)
        return version_number(session, template, config.version)


def _shape(row: InstanceRefreshRow, group_name: str) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "InstanceRefreshId": row.id,
        "AutoScalingGroupName": group_name,
        "Status": row.status,
        "StartTime": row.start_time,
        "PercentageComplete": row.percentage_complete,
        "InstancesToUpdate": row.instances_to_update,
        "Preferences": row.preferences,
        "Strategy": row.strategy,
    }
    if row.status_reason:
        shape["StatusReason"] = row.status_reason
    if row.end_time:
        shape["EndTime"] = row.end_time
    if row.desired_configuration:
        shape["DesiredConfiguration"] = row.desired_configuration
    if row.rollback_details:
        details = dict(row.rollback_details)
        details["RollbackStartTime"] = datetime.fromisoformat(details["RollbackStartTime"])
        shape["RollbackDetails"] = details
    return shape


def describe_instance_refreshes(
    name: str, *, instance_refresh_ids: list[str] | None = None,
    account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    """``DescribeInstanceRefreshes``: the group's refreshes, newest first."""
    with unit_of_work() as db:
        group = find_group(db, name, account, region)
        query = select(InstanceRefreshRow).where(InstanceRefreshRow.group_arn == group.arn)
        if instance_refresh_ids:
            query = query.where(InstanceRefreshRow.id.in_(instance_refresh_ids))
        rows = sorted(db.scalars(query), key=lambda row: row.start_time, reverse=True)
        return {"InstanceRefreshes": [_shape(row, group.name) for row in rows]}


def cancel_instance_refresh(
    name: str, *, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION
) -> dict[str, Any]:
    """``CancelInstanceRefresh``: the replacements made so far stay. Cancelled at once when no pass is
    working on the group, else Cancelling until that pass ends."""
    with unit_of_work() as db:
        group = find_group(db, name, account, region)
        refresh = active_refresh(db, group.arn)
        if refresh is None or refresh.status == "RollbackInProgress":
            raise ActiveInstanceRefreshNotFound(
                f"No in progress or pending Instance Refresh found for Auto Scaling group {name}",
                location="AutoScalingGroupName")
        busy = pass_running(group.arn)
        refresh.status = "Cancelling" if busy else "Cancelled"
        if not busy:
            refresh.end_time = utcnow()
        return {"InstanceRefreshId": refresh.id}


# --- the step a reconcile pass takes ---------------------------------------------------------------


def _update(refresh_id: str, expected: str, **values: Any) -> bool:
    """Write ``values`` unless the refresh left ``expected`` meanwhile (a cancel); True if written."""
    with unit_of_work() as db:
        row = db.get(InstanceRefreshRow, refresh_id)
        if row is None or row.status != expected:
            return False
        for key, value in values.items():
            setattr(row, key, value)
        return True


def health_check(instance: Instance) -> str | None:
    """None when the instance passes its health check, else why not."""
    from kiln.services.ec2.instances import exec_command

    if not asg_members.healthy(instance):
        return f"instance {instance.id} is not running"
    command = instance.tags.get(HEALTH_CHECK_TAG)
    if not command:
        return None
    try:
        result = exec_command(instance.id, ["/bin/sh", "-c", command], timeout=HEALTH_CHECK_TIMEOUT, account=None)
    except KilnError as error:
        return f"health check of {instance.id} could not run: {error}"
    if result["TimedOut"]:
        return f"health check of {instance.id} ({command}) timed out after {HEALTH_CHECK_TIMEOUT:.0f} s"
    if result["ExitCode"] != 0:
        return f"health check of {instance.id} ({command}) exited {result['ExitCode']}"
    return None


def advance(
    group: AutoScalingGroupRow, alive: list[Instance], dead: list[Instance], now: datetime
) -> Step | None:
    """One step of the group's active refresh (None without one): health checks of the replacements,
    then the next batch. ``alive``: the group's running and starting instances; ``dead``: the others,
    which the pass terminates."""
    with unit_of_work() as db:
        row = active_refresh(db, group.arn)
        if row is None:
            return None
        db.expunge(row)
    if row.status == "Cancelling":
        _update(row.id, "Cancelling", status="Cancelled", end_time=now)
        return None
    if row.status == "Pending" and _update(row.id, "Pending", status="InProgress"):
        row.status = "InProgress"
    rolling_back = row.status == "RollbackInProgress"
    group_config = Config(group.template_id, group.template_version)
    config = Config.of(row.previous_configuration) if rolling_back else (
        Config.of(row.desired_configuration) if row.desired_configuration else group_config)
    try:
        number = version_number_now(config, group.account_id, group.region)
    except KilnError as error:  # the template or version is gone: nothing left to launch from
        return _end(row, "RollbackFailed" if rolling_back else "Failed", f"cannot launch from {config}: {error}",
                    group_config, now)

    def matches(instance: Instance) -> bool:
        return asg_members.launched_from(instance) == (config.template_id, number)

    def replacement(instance: Instance) -> bool:
        return matches(instance) and instance.id not in row.to_replace and instance.launch_time >= row.phase_started_at

    # A launch abandoned by a killed pass is not a failed replacement: the pass terminates it and
    # launches again. A replacement that was running and whose process ended is.
    failure = next((f"replacement {i.id} stopped running ({i.state_reason or i.state})"
                    for i in dead if replacement(i) and not _abandoned_launch(i)), None)
    unhealthy: list[str] = []
    healthy_ids = list(row.healthy)
    warmup = _warmup(row.preferences, group)
    for instance in alive:
        if failure or not replacement(instance) or instance.id in healthy_ids or not asg_members.healthy(instance):
            continue
        if asg_members.seconds_since_launch(instance, now) < warmup:
            continue
        reason = health_check(instance)
        if reason is None:
            healthy_ids.append(instance.id)
        else:
            failure, unhealthy = reason, [instance.id]
    if failure:
        return _failed(row, failure, unhealthy, alive, matches, group_config, now)

    old = [i for i in alive if i.id in row.to_replace or not matches(i)]
    old_ids = {i.id for i in old}
    done_new = [i for i in alive if i.id not in old_ids and asg_members.healthy(i)
                and (i.id in healthy_ids or i.launch_time < row.phase_started_at)]
    done_ids = {i.id for i in done_new}
    pending = [i for i in alive if i.id not in old_ids and i.id not in done_ids]
    total = len(row.to_replace)
    alive_ids = {i.id for i in alive}
    replaced = sum(1 for i in row.to_replace if i not in alive_ids)
    in_phase = sum(1 for i in done_new if i.launch_time >= row.phase_started_at)
    done = 1.0 if total == 0 else min(replaced, in_phase) / total
    percent = math.floor(100 * done)
    if rolling_back:  # a rollback's progress counts back from where the refresh was toward 0
        percent = math.floor((row.rollback_details or {}).get("PercentageCompleteOnRollback", 0) * (1 - done))
    progress = {"healthy": healthy_ids, "percentage_complete": percent, "instances_to_update": len(old)}
    if not old and not pending and len(done_new) >= group.desired_capacity:
        if not rolling_back and row.desired_configuration:
            _apply_configuration(group.arn, config)
        status = "RollbackSuccessful" if rolling_back else "Successful"
        _update(row.id, row.status, status=status, end_time=now, status_reason=None, **progress)
        return Step(config, active=False)
    if not _update(row.id, row.status, **progress):
        return None  # cancelled meanwhile
    if pending:
        return Step(config)
    if not rolling_back and (wait := _checkpoint(row, config, percent, now)) is not None:
        return wait
    minimum = math.ceil(group.desired_capacity * row.preferences.get("MinHealthyPercentage", DEFAULT_MIN_HEALTHY) / 100)
    room = len(old) + len(done_new) - minimum
    checkpoints = row.preferences.get("CheckpointPercentages") or []
    if not rolling_back and row.checkpoints_passed < len(checkpoints):
        up_to_checkpoint = math.ceil(checkpoints[row.checkpoints_passed] * total / 100) - replaced
        if up_to_checkpoint <= 0:
            return Step(config)  # the checkpoint's replacements are still to be counted healthy
        room = min(room, up_to_checkpoint)
    if room <= 0:
        return Step(config, extra=1)
    return Step(config, terminate=[i.id for i in termination_order(old, config.template_id, number, now)[:room]])


def _abandoned_launch(instance: Instance) -> bool:
    return instance.state == "pending" or instance.transition == "launch"


def _warmup(preferences: Mapping[str, Any], group: AutoScalingGroupRow) -> int:
    if preferences.get("InstanceWarmup") is not None:
        return int(preferences["InstanceWarmup"])
    if group.default_instance_warmup is not None:
        return group.default_instance_warmup
    return group.health_check_grace_period


def _checkpoint(row: InstanceRefreshRow, config: Config, percent: int, now: datetime) -> Step | None:
    """At a checkpoint: wait CheckpointDelay, then go on (a wait is a Step with no work). Reaching a
    last checkpoint below 100 ends the refresh there (Successful; the group's configuration stays)."""
    checkpoints = row.preferences.get("CheckpointPercentages") or []
    passed = row.checkpoints_passed
    if passed >= len(checkpoints) or percent < checkpoints[passed]:
        return None
    delay = row.preferences.get("CheckpointDelay", DEFAULT_CHECKPOINT_DELAY)
    if row.checkpoint_reached_at is None:
        _update(row.id, row.status, checkpoint_reached_at=now,
                status_reason=f"Waiting at checkpoint {checkpoints[passed]}% for {delay} s")
        if delay > 0:
            return Step(config, active=True)
    elif (now - row.checkpoint_reached_at).total_seconds() < delay:
        return Step(config, active=True)
    if passed + 1 == len(checkpoints) and checkpoints[-1] < 100:
        _update(row.id, row.status, status="Successful", end_time=now, checkpoints_passed=passed + 1,
                status_reason=f"Stopped at the last checkpoint, {checkpoints[-1]}%")
        return Step(Config.of(row.previous_configuration), active=False)
    _update(row.id, row.status, checkpoints_passed=passed + 1, checkpoint_reached_at=None, status_reason=None)
    row.checkpoints_passed, row.checkpoint_reached_at = passed + 1, None
    return None


def _failed(row: InstanceRefreshRow, reason: str, unhealthy: list[str], alive: list[Instance], matches: Any,
            group_config: Config, now: datetime) -> Step:
    if row.status == "InProgress" and row.preferences.get("AutoRollback"):
        replacements = [i.id for i in alive if matches(i) and i.id not in row.to_replace]
        _update(row.id, "InProgress", status="RollbackInProgress", status_reason=f"Rolling back: {reason}",
                to_replace=replacements, healthy=[], phase_started_at=now, checkpoint_reached_at=None,
                rollback_details={"RollbackReason": reason, "RollbackStartTime": now.isoformat(),
                                  "PercentageCompleteOnRollback": row.percentage_complete,
                                  "InstancesToUpdateOnRollback": len(replacements)})
        return Step(Config.of(row.previous_configuration), terminate=unhealthy)
    status = "RollbackFailed" if row.status == "RollbackInProgress" else "Failed"
    step = _end(row, status, reason, group_config, now)
    step.terminate = unhealthy
    return step


def _end(row: InstanceRefreshRow, status: str, reason: str, group_config: Config, now: datetime) -> Step:
    _update(row.id, row.status, status=status, status_reason=reason, end_time=now)
    return Step(group_config, active=False)


def _apply_configuration(arn: str, config: Config) -> None:
    """On success the desired configuration becomes the group's."""
    with unit_of_work() as db:
        group = db.get(AutoScalingGroupRow, arn)
        if group is not None:
            group.template_id, group.template_version = config.template_id, config.version


def termination_order(instances: list[Instance], template_id: str, number: int | None, now: datetime) -> list[Instance]:
    """The default termination policy, simplified: instances not on the given launch template version
    first, oldest version first; then the one closest to its next (hourly) billing boundary; then by
    id. (kiln has one availability zone per region, so the zone balancing step never applies.)"""
    def key(instance: Instance) -> tuple[int, int, float, str]:
        launched_template, version = asg_members.launched_from(instance)
        current = launched_template == template_id and version == number
        into_hour = asg_members.seconds_since_launch(instance, now) % 3600
        return (1 if current else 0, version if version is not None else -1, -into_hour, instance.id)

    return sorted(instances, key=key)


def launch_failed(arn: str, reason: str) -> None:
    """A replacement could not be launched at all: the refresh (or its rollback) fails."""
    with unit_of_work() as db:
        row = active_refresh(db, arn)
        if row is not None:
            row.status = "RollbackFailed" if row.status == "RollbackInProgress" else "Failed"
            row.status_reason, row.end_time = reason, utcnow()
