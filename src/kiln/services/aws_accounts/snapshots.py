"""``kiln snapshot list --orphaned --backend aws``: the account's snapshots no AMI of its own uses."""

from __future__ import annotations

from typing import Any

from kiln.aws import inventory
from kiln.services.aws_accounts.account import Account


def orphaned_snapshots(account: Account) -> dict[str, Any]:
    """Snapshots owned by the account that none of its AMIs (any state) references. An AMI of another
    account built on a shared snapshot cannot be seen from here: see the README."""
    used = {snap for ami in inventory.own_amis(account.ec2) for snap in ami.snapshot_ids}
    orphans = [
        {
            "SnapshotId": s["SnapshotId"],
            "OwnerId": s["OwnerId"],
            "VolumeId": s.get("VolumeId") or "",
            "VolumeSize": s.get("VolumeSize") or 0,
            "State": s.get("State") or "",
            "StartTime": s["StartTime"].isoformat() if s.get("StartTime") else "",
            "Description": s.get("Description") or "",
            "Tags": s.get("Tags") or [],
        }
        for s in inventory.own_snapshots(account.ec2, account.account_id)
        if s["SnapshotId"] not in used
    ]
    orphans.sort(key=lambda s: (s["StartTime"], s["SnapshotId"]))
    return {"AccountId": account.account_id, "Region": account.region, "Snapshots": orphans}
