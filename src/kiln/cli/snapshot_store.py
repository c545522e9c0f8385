"""``kiln snapshot list|delete``: the layers behind root volumes, and the bytes they hold
(``kiln.services.ec2.snapshots``)."""

from __future__ import annotations

from typing import Any

import typer

from kiln.cli.options import DEFAULT_REGION, Output, Region
from kiln.cli.output import emit, human_bytes, table

app = typer.Typer()


def _snapshots_table(snapshots: list[dict[str, Any]]) -> None:
    table(
        ["SnapshotId", "Size", "Unique", "Layers", "Images", "Orphaned", "Created"],
        [
            (
                s["SnapshotId"],
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


@app.command("list")
def list_(
    orphaned: bool = typer.Option(False, "--orphaned", help="Only snapshots no registered AMI uses."),
    region: Region = DEFAULT_REGION,
    output: Output = "text",
) -> None:
    """List snapshots with their size and unique bytes (what deleting each frees)."""
    from kiln.services.ec2 import snapshots

    result = snapshots.describe_snapshots(region=region, orphaned=orphaned)
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
        result = snapshots.delete_snapshot(snapshot_id, region=region, dry_run=dry_run)
        emit(output, result, _freed(verb, snapshot_id, result["FreedBytes"]))
        return
    result = snapshots.delete_orphaned_snapshots(
        region=region, older_than=parse_age(older_than) if older_than else None, dry_run=dry_run
    )
    lines = [_freed(verb, s["SnapshotId"], s["FreedBytes"]) for s in result["Snapshots"]]
    lines.append(_freed(verb, f"{len(result['Snapshots'])} orphaned snapshot(s)", result["FreedBytes"]))
    emit(output, result, "\n".join(lines))
