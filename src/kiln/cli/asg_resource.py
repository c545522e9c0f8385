"""``kiln asg create|update|describe|delete|set-desired-capacity|reconcile|start-instance-refresh|
describe-instance-refreshes|cancel-instance-refresh`` (``kiln.services.fleet.autoscaling``,
``asg_reconcile``, ``instance_refresh``). The AWS CLI's names (``create-auto-scaling-group``…) work
too. A launch template is given as ID|NAME[,VERSION] (VERSION: a number, $Default or $Latest)."""

from __future__ import annotations

from typing import Any

import typer

from kiln.cli.options import DEFAULT_REGION, Account, Output, Region
from kiln.cli.output import emit, table

app = typer.Typer()

Group = typer.Argument(..., help="Auto Scaling group name.")
TEMPLATE_HELP = "Launch template ID|NAME[,VERSION]; VERSION is a number, $Default (default) or $Latest."


def _template(value: str) -> dict[str, Any]:
    template, _, version = value.partition(",")
    key = "LaunchTemplateId" if template.startswith("lt-") else "LaunchTemplateName"
    spec: dict[str, Any] = {key: template}
    if version:
        spec["Version"] = version
    return spec


def _tags(items: list[str]) -> list[dict[str, Any]]:
    from kiln.cli.resource_input import split_pair

    return [dict(zip(("Key", "Value"), split_pair(item, "--tag"), strict=True), PropagateAtLaunch=True)
            for item in items]


def _groups_table(groups: list[dict[str, Any]]) -> None:
    table(
        ["Name", "LaunchTemplate", "Version", "Min", "Max", "Desired", "InService", "Status"],
        [(g["AutoScalingGroupName"],
          g["LaunchTemplate"]["LaunchTemplateName"] or g["LaunchTemplate"]["LaunchTemplateId"],
          g["LaunchTemplate"]["Version"], g["MinSize"], g["MaxSize"], g["DesiredCapacity"],
          sum(1 for i in g["Instances"] if i["LifecycleState"] == "InService"), g.get("Status", ""))
         for g in groups],
    )


@app.command("create")
def create(
    name: str = Group,
    launch_template: str = typer.Option(..., "--launch-template", help=TEMPLATE_HELP),
    min_size: int = typer.Option(..., "--min-size"),
    max_size: int = typer.Option(..., "--max-size"),
    desired_capacity: int | None = typer.Option(None, "--desired-capacity", help="Default: the min size."),
    tag: list[str] = typer.Option([], "--tag", help="KEY=VALUE, repeatable; propagated to the instances."),
    default_instance_warmup: int | None = typer.Option(None, "--default-instance-warmup", help="Seconds."),
    health_check_grace_period: int | None = typer.Option(None, "--health-check-grace-period", help="Seconds."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Create a group (its instances are launched by the next reconcile pass); prints its ARN."""
    from kiln.services.fleet import autoscaling

    result = autoscaling.create_auto_scaling_group(
        name, launch_template=_template(launch_template), min_size=min_size, max_size=max_size,
        desired_capacity=desired_capacity, tags=_tags(tag), default_instance_warmup=default_instance_warmup,
        health_check_grace_period=health_check_grace_period, account=account, region=region,
    )
    emit(output, result, result["AutoScalingGroupARN"])


@app.command("update")
def update(
    name: str = Group,
    launch_template: str | None = typer.Option(None, "--launch-template", help=TEMPLATE_HELP),
    min_size: int | None = typer.Option(None, "--min-size"),
    max_size: int | None = typer.Option(None, "--max-size"),
    desired_capacity: int | None = typer.Option(None, "--desired-capacity"),
    default_instance_warmup: int | None = typer.Option(None, "--default-instance-warmup", help="Seconds."),
    health_check_grace_period: int | None = typer.Option(None, "--health-check-grace-period", help="Seconds."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Change a group's template, sizes or timings (instances are not replaced: see start-instance-refresh)."""
    from kiln.services.fleet import autoscaling

    result = autoscaling.update_auto_scaling_group(
        name, launch_template=_template(launch_template) if launch_template else None, min_size=min_size,
        max_size=max_size, desired_capacity=desired_capacity, default_instance_warmup=default_instance_warmup,
        health_check_grace_period=health_check_grace_period, account=account, region=region,
    )
    emit(output, result, lambda: _groups_table([result]))


@app.command("set-desired-capacity")
def set_desired_capacity(
    name: str = Group,
    desired_capacity: int = typer.Option(..., "--desired-capacity"),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Set the number of instances the group should have; prints it."""
    from kiln.services.fleet import autoscaling

    result = autoscaling.set_desired_capacity(name, desired_capacity, account=account, region=region)
    emit(output, result, str(result["DesiredCapacity"]))


@app.command("describe")
def describe(
    names: list[str] = typer.Argument(None, help="Group names (default: all; unknown names are left out)."),
    filter_: list[str] = typer.Option([], "--filter", help="NAME=V1,V2: tag:KEY, tag-key, tag-value."),
    instances: bool = typer.Option(False, "--instances", help="List each group's instances instead."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """List groups with their sizes and in-service instances."""
    from kiln.cli.resource_input import filters
    from kiln.services.fleet import autoscaling

    result = autoscaling.describe_auto_scaling_groups(names or [], filters=filters(filter_), account=account,
                                                       region=region)
    groups = result["AutoScalingGroups"]

    def text() -> None:
        if not instances:
            _groups_table(groups)
            return
        table(["Group", "InstanceId", "LifecycleState", "Health", "LaunchTemplate", "Version", "ImageId"],
              [(g["AutoScalingGroupName"], i["InstanceId"], i["LifecycleState"], i["HealthStatus"],
                i["LaunchTemplate"]["LaunchTemplateId"], i["LaunchTemplate"]["Version"], i["ImageId"])
               for g in groups for i in g["Instances"]])

    emit(output, result, text)


@app.command("delete")
def delete(
    name: str = Group,
    force_delete: bool = typer.Option(False, "--force-delete", help="Terminate the group's instances too."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Delete a group (refused while it has instances or activity, unless --force-delete); prints its name."""
    from kiln.services.fleet import autoscaling

    result = autoscaling.delete_auto_scaling_group(name, force_delete=force_delete, account=account, region=region)
    emit(output, result, name)


@app.command("reconcile")
def reconcile(
    name: str | None = typer.Argument(None, help="Group name (default: every group of the account in the region)."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Run one reconcile pass now (what the scheduler does every minute); lists what it did."""
    from kiln.cli.output import progress
    from kiln.services.fleet import asg_reconcile

    result = asg_reconcile.reconcile_request(name, account=account, region=region)
    reports = result["Groups"]
    emit(output, result, lambda: table(
        ["Group", "Launched", "Terminated", "Refresh", "Note"],
        [(r["AutoScalingGroupName"], " ".join(r["Launched"]), " ".join(r["Terminated"]),
          r.get("InstanceRefreshStatus", ""), r.get("Skipped", "")) for r in reports]))
    for report in reports:
        for error in report.get("Errors", []):
            progress(f"error: {report['AutoScalingGroupName']}: {error}")
    if any(report.get("Errors") for report in reports):
        raise typer.Exit(1)


@app.command("start-instance-refresh")
def start_instance_refresh(
    name: str = Group,
    desired_launch_template: str | None = typer.Option(
        None, "--desired-launch-template", help=f"DesiredConfiguration: {TEMPLATE_HELP}"),
    min_healthy_percentage: int | None = typer.Option(None, "--min-healthy-percentage", help="0-100 (default 90)."),
    max_healthy_percentage: int | None = typer.Option(None, "--max-healthy-percentage", help="100-200."),
    instance_warmup: int | None = typer.Option(None, "--instance-warmup", help="Seconds."),
    skip_matching: bool | None = typer.Option(None, "--skip-matching/--no-skip-matching"),
    auto_rollback: bool | None = typer.Option(None, "--auto-rollback/--no-auto-rollback"),
    checkpoint_percentages: str | None = typer.Option(None, "--checkpoint-percentages", help="e.g. 50,100"),
    checkpoint_delay: int | None = typer.Option(None, "--checkpoint-delay", help="Seconds (default 3600)."),
    preferences: str | None = typer.Option(
        None, "--preferences", help="RefreshPreferences as JSON or YAML (inline, file://PATH, a path, -)."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Start replacing the group's instances in batches; prints the refresh id."""
    from kiln.cli.resource_input import document
    from kiln.services.fleet import instance_refresh

    prefs: dict[str, Any] = dict(document(preferences, "--preferences")) if preferences else {}
    given = {"MinHealthyPercentage": min_healthy_percentage, "MaxHealthyPercentage": max_healthy_percentage,
             "InstanceWarmup": instance_warmup, "SkipMatching": skip_matching, "AutoRollback": auto_rollback,
             "CheckpointDelay": checkpoint_delay}
    prefs.update({key: value for key, value in given.items() if value is not None})
    if checkpoint_percentages is not None:
        try:
            prefs["CheckpointPercentages"] = [int(part) for part in checkpoint_percentages.split(",")]
        except ValueError:
            raise typer.BadParameter("a comma-separated list of whole percentages, e.g. 50,100",
                                     param_hint="--checkpoint-percentages") from None
    desired = {"LaunchTemplate": _template(desired_launch_template)} if desired_launch_template else None
    result = instance_refresh.start_instance_refresh(
        name, preferences=prefs, desired_configuration=desired, account=account, region=region)
    emit(output, result, result["InstanceRefreshId"])


@app.command("describe-instance-refreshes")
def describe_instance_refreshes(
    name: str = Group,
    instance_refresh_id: list[str] = typer.Option([], "--instance-refresh-id", help="Repeatable."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """The group's instance refreshes, newest first, with status, percentage complete and reason."""
    from kiln.services.fleet import instance_refresh

    result = instance_refresh.describe_instance_refreshes(
        name, instance_refresh_ids=instance_refresh_id or None, account=account, region=region)
    emit(output, result, lambda: table(
        ["InstanceRefreshId", "Status", "Percent", "ToUpdate", "Started", "StatusReason"],
        [(r["InstanceRefreshId"], r["Status"], r["PercentageComplete"], r["InstancesToUpdate"],
          r["StartTime"].strftime("%Y-%m-%dT%H:%M:%SZ"), r.get("StatusReason", ""))
         for r in result["InstanceRefreshes"]]))


@app.command("cancel-instance-refresh")
def cancel_instance_refresh(
    name: str = Group, region: Region = DEFAULT_REGION, account: Account = "", output: Output = "text"
) -> None:
    """Stop the group's active refresh (replacements made so far stay); prints its id."""
    from kiln.services.fleet import instance_refresh

    result = instance_refresh.cancel_instance_refresh(name, account=account, region=region)
    emit(output, result, result["InstanceRefreshId"])


# The AWS CLI's names for the same commands.
for _alias, _command in (
    ("create-auto-scaling-group", create),
    ("update-auto-scaling-group", update),
    ("describe-auto-scaling-groups", describe),
    ("delete-auto-scaling-group", delete),
):
    app.command(_alias, hidden=True)(_command)
