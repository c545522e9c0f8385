"""What lifecycle does to an AWS account's AMIs: deprecate, disable, deregister, delete snapshots,
each honouring ``DryRun``."""

from __future__ import annotations

from datetime import datetime

from kiln.aws.calls import Api


def deprecate(ec2: Api, image_id: str, when: datetime, *, dry_run: bool) -> bool:
    return ec2.mutate("enable_image_deprecation", image_id, dry_run=dry_run, ImageId=image_id, DeprecateAt=when)


def disable(ec2: Api, image_id: str, *, dry_run: bool) -> bool:
    return ec2.mutate("disable_image", image_id, dry_run=dry_run, ImageId=image_id)


def deregister(ec2: Api, image_id: str, *, dry_run: bool) -> bool:
    return ec2.mutate("deregister_image", image_id, dry_run=dry_run, ImageId=image_id)


def delete_snapshot(ec2: Api, snapshot_id: str, *, dry_run: bool) -> bool:
    return ec2.mutate("delete_snapshot", snapshot_id, dry_run=dry_run, SnapshotId=snapshot_id)
