"""EC2 snapshots for every front end: the layers behind root volumes, and the bytes they hold."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kiln.home import DEFAULT_REGION
from kiln.store import api


def describe_snapshots(*, region: str = DEFAULT_REGION, orphaned: bool = False) -> dict[str, Any]:
    """EC2 ``DescribeSnapshots`` with each snapshot's unique bytes (what deleting it frees);
    ``orphaned``: only those no registered AMI uses."""
    return {"Snapshots": [snapshot.to_ec2() for snapshot in api.list_snapshots(region, orphaned=orphaned)]}


def delete_snapshot(snapshot_id: str, *, region: str = DEFAULT_REGION, dry_run: bool = False) -> dict[str, Any]:
    """EC2 ``DeleteSnapshot``: refused (``InvalidSnapshot.InUse``) while a registered AMI uses it."""
    freed = api.delete_snapshot(snapshot_id, region=region, dry_run=dry_run)
    return {"SnapshotId": snapshot_id, "DryRun": dry_run, "FreedBytes": freed}


def delete_orphaned_snapshots(
    *, region: str = DEFAULT_REGION, older_than: timedelta | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """Every snapshot no registered AMI uses (created more than ``older_than`` ago), with the bytes
    each deletion freed in turn and the total."""
    deleted, total = api.delete_orphaned_snapshots(region=region, older_than=older_than, dry_run=dry_run)
    return {
        "Snapshots": [{"SnapshotId": snapshot_id, "FreedBytes": freed} for snapshot_id, freed in deleted],
        "DryRun": dry_run,
        "FreedBytes": total,
    }
