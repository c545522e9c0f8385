"""The reconcile pass: each Auto Scaling group's instances brought to its desired capacity.

For each group, under the lease ``asg:<group arn>`` (so two passes never work on one group): finish a
deletion left half done; terminate the instances that are not healthy (their process ended: EC2's
status check as kiln can make it) so that they are replaced; take one step of an active instance
refresh; launch from the launch template (or the refresh's configuration) until the group has its
desired capacity, or terminate extras in the default termination policy's order.

Idle cost: one query lists every live instance with its tags; a group whose instances are all
running with live processes, exactly at desired capacity, with no refresh and no deletion pending is
passed over without taking its lease or opening a transaction of its own.

``scheduler_jobs`` gives ``kiln scheduler`` one job, every minute: the scheduler process itself checks
whether any group has work (``pass_needed``, a few milliseconds) and only then starts a worker
process for the pass, so an idle fleet never pays a worker's start-up (about a second of CPU).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from kiln.db.base import utcnow
from kiln.db.tables.autoscaling import AutoScalingGroupRow, InstanceRefreshRow
from kiln.errors import KilnError
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.runtime.records import Instance
from kiln.services.common.unit import unit_of_work
from kiln.services.fleet import asg_members, instance_refresh
from kiln.services.fleet.autoscaling import ACTIVE_REFRESH, DELETING, LEASE_TTL, find_group, finish_delete, lease_name
from kiln.services.fleet.instance_refresh import Config, Step

log = logging.getLogger("kiln.autoscaling")

JOB_KEY = "autoscaling:reconcile"
EVERY_MINUTE = "cron(* * * * ? *)"


@dataclass
class GroupReport:
    """What one pass did to one group."""

    group: str
    account: str
    region: str
    launched: list[str] = field(default_factory=list)
    terminated: list[str] = field(default_factory=list)
    refresh: str | None = None  # the refresh's status after this pass
    skipped: str | None = None  # why the pass left the group alone
    errors: list[str] = field(default_factory=list)

    def shape(self) -> dict[str, Any]:
        shape: dict[str, Any] = {"AutoScalingGroupName": self.group, "AccountId": self.account, "Region": self.region,
                                 "Launched": self.launched, "Terminated": self.terminated}
        if self.refresh:
            shape["InstanceRefreshStatus"] = self.refresh
        if self.skipped:
            shape["Skipped"] = self.skipped
        if self.errors:
            shape["Errors"] = self.errors
        return shape


def _idle(group: AutoScalingGroupRow, instances: list[Instance], refreshing: set[str]) -> bool:
    return (group.status is None and group.arn not in refreshing and len(instances) == group.desired_capacity
            and all(asg_members.healthy(instance) for instance in instances))


def _needing_work(
    name: str | None, account: str | None, region: str | None
) -> list[AutoScalingGroupRow]:
    """The groups (``name``, or all of ``account`` in ``region``; None: any) that are not idle."""
    with unit_of_work() as db:
        if name is not None:
            assert account is not None and region is not None
            groups = [find_group(db, name, account, region, deleting_ok=True)]
        else:
            query = select(AutoScalingGroupRow)
            if account is not None:
                query = query.where(AutoScalingGroupRow.account_id == account)
            if region is not None:
                query = query.where(AutoScalingGroupRow.region == region)
            groups = list(db.scalars(query.order_by(AutoScalingGroupRow.account_id, AutoScalingGroupRow.name)))
        refreshing = set(db.scalars(select(InstanceRefreshRow.group_arn).where(
            InstanceRefreshRow.status.in_(ACTIVE_REFRESH))))
        for group in groups:
            db.expunge(group)
    if not groups:
        return []
    by_group = asg_members.members_by_group(account)
    return [group for group in groups
            if not _idle(group, by_group.get((group.account_id, group.region, group.name), []), refreshing)]


def pass_needed() -> bool:
    """Whether any group of any account and region has work (what the scheduler asks in its own
    process each minute before starting a worker)."""
    return bool(_needing_work(None, None, None))


def reconcile(
    name: str | None = None, *, account: str | None = DEFAULT_ACCOUNT, region: str | None = DEFAULT_REGION,
    now: datetime | None = None,
) -> list[GroupReport]:
    """One pass over the group ``name`` (which must exist) or every group of ``account`` in
    ``region`` (None: of every account and region). Reports only the groups it acted on (or tried to)."""
    from kiln.schedule.leases import new_holder

    holder = new_holder()
    return [_reconcile_group(group.arn, holder, now) for group in _needing_work(name, account, region)]


def _reconcile_group(arn: str, holder: str, now: datetime | None) -> GroupReport:
    from kiln.schedule.leases import acquire, holder_of, release

    with unit_of_work() as db:
        group = db.get(AutoScalingGroupRow, arn)
        if group is None:
            return GroupReport(arn, "", "", skipped="deleted")
        db.expunge(group)
    report = GroupReport(group.name, group.account_id, group.region)
    if not acquire(lease_name(arn), holder, LEASE_TTL):
        report.skipped = f"another pass is working on it ({holder_of(lease_name(arn))})"
        return report
    try:
        _pass(arn, report, now or utcnow())
    except KilnError as error:
        report.errors.append(str(error))
    finally:
        release(lease_name(arn), holder)
    return report


def _pass(arn: str, report: GroupReport, now: datetime) -> None:
    from kiln.services.ec2.instances import terminate_instance

    with unit_of_work() as db:
        group = db.get(AutoScalingGroupRow, arn)  # read again under the lease
        if group is None:
            return
        db.expunge(group)
    if group.status == DELETING:
        report.terminated = finish_delete(arn, group.account_id, group.region, group.name)
        report.skipped = "deleted"
        return
    instances = asg_members.members(group.account_id, group.region, group.name)
    dead = [i for i in instances if not asg_members.healthy(i) and not asg_members.starting(i)]
    dead_ids = {i.id for i in dead}
    alive = [i for i in instances if i.id not in dead_ids]
    step = instance_refresh.advance(group, alive, dead, now)
    config = step.config if step is not None else Config(group.template_id, group.template_version)
    refreshing = step is not None and step.active
    for instance_id in [i.id for i in dead] + (step.terminate if step else []):
        terminate_instance(instance_id, force=True)
        report.terminated.append(instance_id)
    alive = [i for i in alive if i.id not in report.terminated]
    want = group.desired_capacity + (step.extra if step else 0)
    if len(alive) < want:
        _launch(group, config, want - len(alive), report, step if refreshing else None)
    elif len(alive) > group.desired_capacity and not refreshing:
        number = _current_number(config, group)
        extras = instance_refresh.termination_order(alive, config.template_id, number, now)
        for instance in extras[: len(alive) - group.desired_capacity]:
            terminate_instance(instance.id, force=True)
            report.terminated.append(instance.id)
    if step is not None:
        with unit_of_work() as db:
            latest = db.scalars(select(InstanceRefreshRow.status).where(InstanceRefreshRow.group_arn == arn)
                                .order_by(InstanceRefreshRow.start_time.desc())).first()
        report.refresh = latest


def _current_number(config: Config, group: AutoScalingGroupRow) -> int | None:
    try:
        return instance_refresh.version_number_now(config, group.account_id, group.region)
    except KilnError:
        return None


def _launch(group: AutoScalingGroupRow, config: Config, count: int, report: GroupReport, step: Step | None) -> None:
    """Launch ``count`` instances tagged with the group; a refused launch ends this pass's launches
    (the service records a failed scaling activity and tries again later), and fails an active refresh."""
    from kiln.services.fleet.launch import run_from_template
    from kiln.services.fleet.launch_templates import TemplateRef

    tags = {tag["Key"]: tag["Value"] for tag in group.tags if tag.get("PropagateAtLaunch", True)}
    tags[asg_members.GROUP_TAG] = group.name
    for _ in range(count):
        try:
            instance = run_from_template(TemplateRef(launch_template_id=config.template_id), config.version,
                                         tags=tags, account=group.account_id, region=group.region)
        except KilnError as error:
            reason = f"Launching a new EC2 instance failed: {error}"
            report.errors.append(reason)
            log.warning("group %s: %s", group.name, reason)
            if step is not None:
                instance_refresh.launch_failed(group.arn, reason)
            return
        report.launched.append(instance.id)


def scheduler_jobs() -> list[Any]:
    """One job while any group exists: a reconcile pass every minute, in a worker process."""
    from kiln.schedule.scheduler import Job

    with unit_of_work() as db:
        if db.scalars(select(AutoScalingGroupRow.arn).limit(1)).first() is None:
            return []
    return [Job(key=JOB_KEY, schedule=EVERY_MINUTE, timezone="UTC", target=run_due, needed=pass_needed)]


def run_due(key: str, due_iso: str) -> None:
    """In a scheduler worker: one pass over every group of every account and region."""
    for report in reconcile(account=None, region=None):
        if report.launched or report.terminated or report.errors:
            log.info("reconciled %s", report.shape())


def reconcile_request(
    name: str | None = None, *, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION
) -> dict[str, Any]:
    """``kiln asg reconcile``: one pass now, over one group or the account's groups in the region."""
    return {"Groups": [report.shape() for report in reconcile(name, account=account, region=region)]}
