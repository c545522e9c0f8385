"""From a completed EBS snapshot to an AMI: wait for the snapshot, RegisterImage, tag it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kiln.aws.errors import AwsError, as_kiln_error
from kiln.aws.retry import Backoff, with_retries

ROOT_DEVICE = "/dev/xvda"


@dataclass(frozen=True)
class AmiSpec:
    name: str
    description: str
    architecture: str
    volume_size: int  # GiB
    boot_mode: str = "uefi-preferred"
    ena_support: bool = True
    volume_type: str = "gp3"


def _call(client: Any, name: str, backoff: Backoff, **params: Any) -> Any:
    try:
        return with_retries(lambda: getattr(client, name)(**params), backoff)
    except Exception as error:
        label = "".join(part.title() for part in name.split("_"))
        raise as_kiln_error(error, f"ec2 {label}") from None


def snapshot_state(ec2: Any, snapshot_id: str, backoff: Backoff = Backoff()) -> str | None:
    """The snapshot's state (``pending``, ``completed``, ``error``...), None when EC2 doesn't know it."""
    try:
        answer = with_retries(lambda: ec2.describe_snapshots(SnapshotIds=[snapshot_id]), backoff)
    except Exception as error:
        if "NotFound" in str(getattr(error, "response", {}).get("Error", {}).get("Code", "")):
            return None
        raise as_kiln_error(error, "ec2 DescribeSnapshots", snapshot_id) from None
    snapshots = answer.get("Snapshots") or []
    return str(snapshots[0]["State"]) if snapshots else None


def wait_completed(ec2: Any, snapshot_id: str, *, timeout: float = 3600, poll: float = 2.0,
                   backoff: Backoff = Backoff()) -> None:
    """Until EC2 says ``completed`` (after CompleteSnapshot AWS seals the snapshot asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        state = snapshot_state(ec2, snapshot_id, backoff)
        if state == "completed":
            return
        if state in (None, "error"):
            raise AwsError(f"snapshot is {state or 'gone'}, not completed", location=snapshot_id)
        if time.monotonic() > deadline:
            raise AwsError(f"snapshot still {state} after {timeout:.0f} s", location=snapshot_id)
        time.sleep(poll)


def register(ec2: Any, snapshot_id: str, spec: AmiSpec, tags: Mapping[str, str],
             backoff: Backoff = Backoff()) -> str:
    """RegisterImage with the snapshot as the root volume, then its tags (CreateTags)."""
    answer = _call(
        ec2, "register_image", backoff,
        Name=spec.name,
        Description=spec.description,
        Architecture=spec.architecture,
        RootDeviceName=ROOT_DEVICE,
        BlockDeviceMappings=[{
            "DeviceName": ROOT_DEVICE,
            "Ebs": {"SnapshotId": snapshot_id, "VolumeSize": spec.volume_size, "VolumeType": spec.volume_type,
                    "DeleteOnTermination": True},
        }],
        VirtualizationType="hvm",
        BootMode=spec.boot_mode,
        EnaSupport=spec.ena_support,
    )  # fmt: skip
    image_id = str(answer["ImageId"])
    if tags:
        _call(ec2, "create_tags", backoff, Resources=[image_id],
              Tags=[{"Key": key, "Value": value} for key, value in tags.items()])
    return image_id


LAUNCH_PERMISSION_KINDS = ("UserId", "Group", "OrganizationArn", "OrganizationalUnitArn")


def share(ec2: Any, image_id: str, permissions: list[dict[str, str]], backoff: Backoff = Backoff()) -> None:
    """Add launch permissions (ModifyImageAttribute): accounts, ``Group=all``, organizations, OUs."""
    if permissions:
        _call(ec2, "modify_image_attribute", backoff, ImageId=image_id, LaunchPermission={"Add": permissions})
