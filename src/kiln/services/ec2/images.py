"""EC2 images (AMIs) for every front end: the calls and the response shapes of the image store.

Each function is one EC2 action (``DescribeImages``, ``DeregisterImage``, ...) over ``kiln.store.api``
and answers with EC2's field names, plus kiln's own where EC2 has none (byte accounting).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from kiln.home import DEFAULT_REGION
from kiln.store import api


def import_image(
    source: Path,
    *,
    name: str,
    region: str = DEFAULT_REGION,
    architecture: str | None = None,
    description: str = "",
    tags: Mapping[str, str] | None = None,
    root_device_type: str = "ebs",
    allow_devices: bool = False,
    compression: str = "zstd",
) -> dict[str, Any]:
    """A parent image from a rootfs tarball, a directory, an OCI layout or an oci-archive."""
    image_id = api.import_rootfs(
        source,
        name=name,
        region=region,
        architecture=architecture,
        description=description,
        tags=dict(tags or {}),
        root_device_type=root_device_type,
        allow_devices=allow_devices,
        compression=compression,
    )
    return {"ImageId": image_id}


def bootstrap_image(
    source: str, *, name: str | None = None, region: str = DEFAULT_REGION, include: Iterable[str] = ()
) -> dict[str, Any]:
    """A minbase parent image from mmdebstrap (``debian:bookworm``), cached and idempotent."""
    return {"ImageId": api.bootstrap_image(source, name=name, region=region, include=list(include))}


def describe_images(
    *,
    region: str = DEFAULT_REGION,
    image_ids: list[str] | None = None,
    names: list[str] | None = None,
    owners: list[str] | None = None,
    filters: Mapping[str, list[str]] | None = None,
    include_deprecated: bool = False,
    include_disabled: bool = False,
) -> dict[str, Any]:
    """EC2 ``DescribeImages``: deregistered, deprecated and disabled AMIs hidden unless asked for."""
    found = api.describe_images(
        region,
        image_ids=image_ids,
        names=names,
        owners=owners,
        filters=dict(filters or {}),
        include_deprecated=include_deprecated,
        include_disabled=include_disabled,
    )
    return {"Images": [image.to_ec2() for image in found]}


def describe_image(image_id: str, region: str = DEFAULT_REGION) -> dict[str, Any]:
    """One AMI's ``Image`` shape, whatever its state (also deprecated, disabled, deregistered)."""
    return api.get_image(image_id, region).to_ec2()


def copy_image(
    source_image_id: str,
    *,
    source_region: str = DEFAULT_REGION,
    region: str = DEFAULT_REGION,
    name: str | None = None,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """EC2 ``CopyImage`` (called for the destination region); the source must be launchable."""
    image_id = api.copy_image(
        source_image_id,
        source_region=source_region,
        region=region,
        name=name,
        description=description,
        tags=dict(tags or {}),
    )
    return {"ImageId": image_id}


def export_image(image_id: str, fmt: str, dest: Path, region: str = DEFAULT_REGION) -> dict[str, Any]:
    """A flattened tar, an OCI archive or a disk image (raw, qcow2, vmdk, vhd) of the AMI."""
    path = api.export_image(image_id, fmt, dest, region)
    return {"ImageId": image_id, "Format": fmt, "Path": str(path), "Size": path.stat().st_size}


def deregister_image(
    image_id: str, *, region: str = DEFAULT_REGION, delete_snapshots: bool = False, dry_run: bool = False
) -> dict[str, Any]:
    """EC2 ``DeregisterImage``: the snapshots stay (and keep their bytes) unless ``delete_snapshots``.

    Besides EC2's ``Return`` and ``DeleteSnapshotResults`` (``skipped`` for a snapshot another AMI
    uses), the answer says what the kept snapshots still hold and what deleting them freed.
    """
    result = api.deregister_image(image_id, region=region, delete_snapshots=delete_snapshots, dry_run=dry_run)
    deleted = set(result.deleted_snapshots)
    return {
        "ImageId": image_id,
        "Return": True,
        "DryRun": dry_run,
        "SnapshotIds": result.snapshot_ids,
        "SnapshotBytes": result.snapshot_bytes,
        "FreedBytes": result.freed_bytes,
        "DeleteSnapshotResults": [
            {"SnapshotId": snapshot_id, "ReturnCode": "success" if snapshot_id in deleted else "skipped"}
            for snapshot_id in result.snapshot_ids
        ]
        if delete_snapshots
        else [],
    }


def create_tags(resource_id: str, tags: Mapping[str, str]) -> dict[str, Any]:
    """EC2 ``CreateTags`` on an AMI or a snapshot: add or overwrite."""
    api.create_tags(resource_id, dict(tags))
    return {"ResourceId": resource_id, "Tags": dict(tags)}


def delete_tags(resource_id: str, keys: list[str]) -> dict[str, Any]:
    """EC2 ``DeleteTags`` by key."""
    api.delete_tags(resource_id, keys)
    return {"ResourceId": resource_id, "Keys": keys}


def enable_image_deprecation(image_id: str, deprecate_at: datetime, region: str = DEFAULT_REGION) -> dict[str, Any]:
    """EC2 ``EnableImageDeprecation``; the answer has the time as stored (rounded to the minute)."""
    api.enable_image_deprecation(image_id, deprecate_at, region)
    return {"ImageId": image_id, "DeprecationTime": describe_image(image_id, region).get("DeprecationTime")}


def disable_image_deprecation(image_id: str, region: str = DEFAULT_REGION) -> dict[str, Any]:
    api.disable_image_deprecation(image_id, region)
    return {"ImageId": image_id, "DeprecationTime": None}


def disable_image(image_id: str, region: str = DEFAULT_REGION) -> dict[str, Any]:
    """EC2 ``DisableImage``: not launchable, every launch permission removed."""
    api.disable_image(image_id, region)
    return {"ImageId": image_id, "State": "disabled"}


def enable_image(image_id: str, region: str = DEFAULT_REGION) -> dict[str, Any]:
    """EC2 ``EnableImage``: available again; removed launch permissions are not restored."""
    api.enable_image(image_id, region)
    return {"ImageId": image_id, "State": "available"}


def enable_deregistration_protection(
    image_id: str, *, with_cooldown: bool = False, region: str = DEFAULT_REGION
) -> dict[str, Any]:
    state = api.enable_deregistration_protection(image_id, with_cooldown, region)
    return {"ImageId": image_id, "DeregistrationProtection": state}


def disable_deregistration_protection(image_id: str, region: str = DEFAULT_REGION) -> dict[str, Any]:
    """With a cooldown, deregistration stays refused for 24 hours."""
    state = api.disable_deregistration_protection(image_id, region)
    return {"ImageId": image_id, "DeregistrationProtection": state}


def modify_launch_permission(
    image_id: str,
    *,
    add: list[dict[str, str]] | None = None,
    remove: list[dict[str, str]] | None = None,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    """EC2 ``ModifyImageAttribute`` (``launchPermission``); each entry has one of ``UserId``,
    ``Group`` (``all``), ``OrganizationArn``, ``OrganizationalUnitArn``."""
    permissions = api.modify_launch_permission(image_id, add=add or [], remove=remove or [], region=region)
    return {"ImageId": image_id, "LaunchPermissions": permissions}
