"""``kiln snapshot list|delete|share|describe-attribute|reset-attribute``: the layers behind root
volumes, the bytes they hold, and who may read them (``kiln.services.ec2.snapshots``)."""

from __future__ import annotations

from typing import Any

import typer

from kiln.cli.aws_options import DEFAULT_RATE, Backend, EndpointUrl, Profile, Rate, aws_region, choose
from kiln.cli.options import DEFAULT_REGION, Account, Output, Region
from kiln.cli.output import check_format, emit, human_bytes, permissions_text, table

app = typer.Typer()


def _snapshots_table(snapshots: list[dict[str, Any]]) -> None:
    table(
        ["SnapshotId", "Owner", "Size", "Unique", "Layers", "Images", "Orphaned", "Created"],
        [
            (
                s["SnapshotId"],
                s["OwnerId"],
                human_bytes(s["FullSnapshotSizeInBytes"]),
                human_bytes(s["UniqueBytes"]),
                len(s["Layers"]),
                ",".join(s["ImageIds"]),
                "yes" if s["Orphaned"] else "",
                s["StartTime"].strftime("%Y-%m-%d %H:%M"),
            )
            for s in snapshots
        ],
    )


def _aws_orphans_table(snapshots: list[dict[str, Any]]) -> None:
    table(
        ["SnapshotId", "Size", "State", "Started", "Description"],
        [(s["SnapshotId"], f"{s['VolumeSize']} GiB", s["State"], s["StartTime"], s["Description"]) for s in snapshots],
    )


@app.command("list")
def list_(
    orphaned: bool = typer.Option(False, "--orphaned", help="Only snapshots no registered AMI uses."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
    backend: Backend = None,
    profile: Profile = None,
    endpoint_url: EndpointUrl = None,
    rate: Rate = DEFAULT_RATE,
) -> None:
    """List the account's snapshots (and those it may read) with their size and unique bytes (what
    deleting each frees). With --backend aws (and --orphaned): the AWS account's snapshots that none of
    its AMIs uses."""
    from kiln.errors import InvalidInput
    from kiln.services.ec2 import snapshots

    check_format(output)
    reach = choose(backend, region, account, profile, endpoint_url)
    if reach is not None:
        from kiln.services.aws_accounts import account as aws_account
        from kiln.services.aws_accounts import snapshots as aws_snapshots

        if not orphaned:
            raise InvalidInput("with --backend aws, snapshot list takes --orphaned", location="--orphaned")
        found = aws_snapshots.orphaned_snapshots(
            aws_account.connect(aws_region(region), reach.profile, reach.endpoint_url, rate))
        emit(output, found, lambda: _aws_orphans_table(found["Snapshots"]))
        return
    result = snapshots.describe_snapshots(region=region, orphaned=orphaned, account=account)
    emit(output, result, lambda: _snapshots_table(result["Snapshots"]))


def _freed(verb: str, what: str, size: int) -> str:
    return f"{verb} {what}, freeing {human_bytes(size)} ({size} bytes)"


@app.command("delete")
def delete(
    snapshot_id: str = typer.Argument(None, help="Snapshot id (or --orphaned for every orphan)."),
    orphaned: bool = typer.Option(False, "--orphaned", help="Delete every snapshot no registered AMI uses."),
    older_than: str = typer.Option(None, "--older-than", help="With --orphaned: only those older, e.g. 30d, 12h."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the bytes it would free; change nothing."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Delete a snapshot (refused while a registered AMI uses it), or every orphaned one."""
    from kiln.cli.resource_input import parse_age
    from kiln.errors import InvalidInput
    from kiln.services.ec2 import snapshots

    verb = "would delete" if dry_run else "deleted"
    if orphaned == bool(snapshot_id):
        raise InvalidInput("give a snapshot id or --orphaned (not both)")
    if older_than and not orphaned:
        raise InvalidInput("--older-than goes with --orphaned", location="--older-than")
    if not orphaned:
        result = snapshots.delete_snapshot(snapshot_id, region=region, dry_run=dry_run, account=account)
        emit(output, result, _freed(verb, snapshot_id, result["FreedBytes"]))
        return
    result = snapshots.delete_orphaned_snapshots(
        region=region, older_than=parse_age(older_than) if older_than else None, dry_run=dry_run, account=account
    )
    lines = [_freed(verb, s["SnapshotId"], s["FreedBytes"]) for s in result["Snapshots"]]
    lines.append(_freed(verb, f"{len(result['Snapshots'])} orphaned snapshot(s)", result["FreedBytes"]))
    emit(output, result, "\n".join(lines))


@app.command("share")
def share(
    snapshot_id: str,
    add: list[str] = typer.Option([], "--add", help="KIND=VALUE: UserId=ACCOUNT or Group=all."),
    remove: list[str] = typer.Option([], "--remove", help="KIND=VALUE to remove."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Who may create volumes from the snapshot (EC2 ModifySnapshotAttribute createVolumePermission);
    another account needs it to copy or export an AMI of the snapshot, not to launch it."""
    from kiln.cli.resource_input import launch_permissions
    from kiln.services.ec2 import snapshots

    result = snapshots.modify_snapshot_attribute(
        snapshot_id,
        create_volume_permission={
            "Add": launch_permissions(add, "--add"),
            "Remove": launch_permissions(remove, "--remove"),
        },
        region=region,
        account=account,
    )
    emit(output, result, permissions_text(result["CreateVolumePermissions"]))


@app.command("describe-attribute")
def describe_attribute(
    snapshot_id: str,
    attribute: str = typer.Option(
        "createVolumePermission", "--attribute", help="createVolumePermission or productCodes."
    ),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """One attribute of a snapshot of the account (EC2 DescribeSnapshotAttribute)."""
    from kiln.services.ec2 import snapshots

    result = snapshots.describe_snapshot_attribute(snapshot_id, attribute, region, account=account)
    emit(output, result, permissions_text(result.get("CreateVolumePermissions") or []))


@app.command("reset-attribute")
def reset_attribute(
    snapshot_id: str,
    attribute: str = typer.Option("createVolumePermission", "--attribute"),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Drop every create-volume permission of the snapshot (EC2 ResetSnapshotAttribute)."""
    from kiln.services.ec2 import snapshots

    result = snapshots.reset_snapshot_attribute(snapshot_id, attribute, region, account=account)
    emit(output, result, permissions_text([]))
