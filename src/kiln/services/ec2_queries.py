"""EC2 reads the API needs on top of ``services/ec2``: snapshots and instances by id and filter, per
region, DescribeTags, and the id checks a call (or its ``DryRun``) makes first. Every function takes
the calling ``account`` and goes through the ``services/ec2`` function that applies the sharing rules
(what the account may see, launch or change), so the wire and the CLI enforce one set of rules.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any

from kiln.ec2_errors import (
    InvalidAMIIDNotFound,
    InvalidID,
    InvalidInstanceIDNotFound,
    InvalidParameterValue,
    InvalidSnapshotNotFound,
)
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.services.ec2 import images, instances, snapshots


def _match(value: Any, patterns: Iterable[str]) -> bool:
    return value is not None and any(fnmatch.fnmatchcase(str(value), p) for p in patterns)


# --- images ---------------------------------------------------------------------------------------


def describe_images(
    *,
    caller: str,
    region: str = DEFAULT_REGION,
    image_ids: list[str] | None = None,
    owners: list[str] | None = None,
    executable_users: list[str] | None = None,
    filters: Mapping[str, list[str]] | None = None,
    include_deprecated: bool = False,
    include_disabled: bool = False,
) -> dict[str, Any]:
    """EC2 ``DescribeImages`` for ``caller`` (see :func:`kiln.services.ec2.images.describe_images`)."""
    return images.describe_images(
        region=region,
        image_ids=image_ids,
        owners=owners,
        executable_users=executable_users,
        filters=filters,
        include_deprecated=include_deprecated,
        include_disabled=include_disabled,
        account=caller,
    )


def require_image(image_id: str, region: str = DEFAULT_REGION, *, account: str = DEFAULT_ACCOUNT) -> dict[str, Any]:
    """The AMI's ``Image`` shape as ``account`` sees it; InvalidAMIID.NotFound when it is not in
    ``region`` or ``account`` may not see it."""
    return images.describe_image(image_id, region, account=account)


# --- snapshots ------------------------------------------------------------------------------------


def _snapshot_filter(snapshot: dict[str, Any], key: str, values: list[str]) -> bool:
    simple = {"snapshot-id": "SnapshotId", "owner-id": "OwnerId", "status": "State", "description": "Description",
              "volume-size": "VolumeSize", "storage-tier": "StorageTier"}
    tags = {tag["Key"]: tag["Value"] for tag in snapshot.get("Tags", [])}
    if key in simple:
        return _match(snapshot.get(simple[key]), values)
    if key.startswith("tag:"):
        return _match(tags.get(key[4:]), values)
    if key == "tag-key":
        return any(_match(k, values) for k in tags)
    raise InvalidParameterValue(f"The filter '{key}' is invalid", location=key)


def describe_snapshots(
    *,
    region: str = DEFAULT_REGION,
    snapshot_ids: list[str] | None = None,
    owner_ids: list[str] | None = None,
    filters: Mapping[str, list[str]] | None = None,
    caller: str = DEFAULT_ACCOUNT,
) -> dict[str, Any]:
    """EC2 ``DescribeSnapshots`` of what ``caller`` may see, by id (one it may not see is
    ``InvalidSnapshot.NotFound``), owner (``self`` is the caller) and filter."""
    found = snapshots.describe_snapshots(region=region, account=caller)["Snapshots"]
    if snapshot_ids:
        missing = sorted(set(snapshot_ids) - {s["SnapshotId"] for s in found})
        if missing:
            raise InvalidSnapshotNotFound(missing[0]).at(account=caller, region=region)
        found = [s for s in found if s["SnapshotId"] in snapshot_ids]
    if owner_ids:
        owners = {caller if owner == "self" else owner for owner in owner_ids}
        found = [s for s in found if s["OwnerId"] in owners]
    for key, values in (filters or {}).items():
        found = [s for s in found if _snapshot_filter(s, key, values)]
    return {"Snapshots": found}


def require_snapshot(
    snapshot_id: str, region: str = DEFAULT_REGION, *, account: str = DEFAULT_ACCOUNT
) -> dict[str, Any]:
    return describe_snapshots(region=region, snapshot_ids=[snapshot_id], caller=account)["Snapshots"][0]


# --- instances ------------------------------------------------------------------------------------


def _instance_filter(instance: dict[str, Any], key: str, values: list[str]) -> bool:
    simple = {
        "instance-id": instance["InstanceId"],
        "image-id": instance.get("ImageId"),
        "instance-type": instance.get("InstanceType"),
        "instance-state-name": instance["State"]["Name"],
        "instance-state-code": instance["State"]["Code"],
        "root-device-type": instance.get("RootDeviceType"),
        "availability-zone": instance.get("Placement", {}).get("AvailabilityZone"),
    }
    tags = {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}
    if key in simple:
        return _match(simple[key], values)
    if key.startswith("tag:"):
        return _match(tags.get(key[4:]), values)
    if key == "tag-key":
        return any(_match(k, values) for k in tags)
    raise InvalidParameterValue(f"The filter '{key}' is invalid", location=key)


def describe_instances(
    *,
    region: str = DEFAULT_REGION,
    instance_ids: list[str] | None = None,
    filters: Mapping[str, list[str]] | None = None,
    account: str = DEFAULT_ACCOUNT,
) -> dict[str, Any]:
    """EC2 ``DescribeInstances`` (flattened, as ``services/ec2``) of ``account``'s instances in one
    region, by id and filter; another account's instance is ``InvalidInstanceID.NotFound``."""
    found = [
        i for i in instances.describe_instances(account=account)["Instances"]
        if i.get("Kiln", {}).get("Region") == region
    ]
    if instance_ids:
        missing = sorted(set(instance_ids) - {i["InstanceId"] for i in found})
        if missing:
            raise InvalidInstanceIDNotFound(missing[0]).at(account=account, region=region)
        found = [i for i in found if i["InstanceId"] in instance_ids]
    for key, values in (filters or {}).items():
        found = [i for i in found if _instance_filter(i, key, values)]
    return {"Instances": found}


def require_instances(instance_ids: list[str], region: str = DEFAULT_REGION, *, account: str = DEFAULT_ACCOUNT) -> None:
    describe_instances(region=region, instance_ids=instance_ids, account=account)


# --- tags -----------------------------------------------------------------------------------------


def require_resource(resource_id: str, region: str = DEFAULT_REGION, *, account: str = DEFAULT_ACCOUNT) -> str:
    """The resource type (``image``, ``snapshot``, ``instance``) of an id in ``region`` that
    ``account`` may see; InvalidID else."""
    try:
        if resource_id.startswith("ami-"):
            require_image(resource_id, region, account=account)
            return "image"
        if resource_id.startswith("snap-"):
            require_snapshot(resource_id, region, account=account)
            return "snapshot"
        if resource_id.startswith("i-"):
            require_instances([resource_id], region, account=account)
            return "instance"
    except (InvalidAMIIDNotFound, InvalidSnapshotNotFound, InvalidInstanceIDNotFound):
        pass
    raise InvalidID(resource_id).at(account=account, region=region)


def delete_tags(
    resource_id: str, tags: Mapping[str, str | None], region: str = DEFAULT_REGION, *, account: str = DEFAULT_ACCOUNT
) -> None:
    """EC2 ``DeleteTags`` (owner only): a key alone deletes the tag; a key with a value only when the
    value matches."""
    require_resource(resource_id, region, account=account)
    images.delete_tags(resource_id, tags, account=account)


def _tag_rows(region: str, account: str) -> list[dict[str, str]]:
    rows = []
    described = images.describe_images(
        region=region, include_deprecated=True, include_disabled=True, account=account
    )["Images"]
    sources: list[tuple[str, list[dict[str, Any]], str]] = [
        ("image", described, "ImageId"),
        ("snapshot", snapshots.describe_snapshots(region=region, account=account)["Snapshots"], "SnapshotId"),
        ("instance", describe_instances(region=region, account=account)["Instances"], "InstanceId"),
    ]
    for kind, resources, id_key in sources:
        for resource in resources:
            for tag in resource.get("Tags", []):
                rows.append({"ResourceId": resource[id_key], "ResourceType": kind, "Key": tag["Key"],
                             "Value": tag["Value"]})
    return rows


def describe_tags(
    *, region: str = DEFAULT_REGION, filters: Mapping[str, list[str]] | None = None, account: str = DEFAULT_ACCOUNT
) -> dict[str, Any]:
    """EC2 ``DescribeTags`` over the AMIs, snapshots and instances of the region that ``account`` may
    see, each resource's tags as it sees them (filters ``resource-id``, ``resource-type``, ``key``,
    ``value``, ``tag:<key>``)."""
    fields = {"resource-id": "ResourceId", "resource-type": "ResourceType", "key": "Key", "value": "Value"}
    rows = _tag_rows(region, account)
    for key, values in (filters or {}).items():
        if key in fields:
            rows = [row for row in rows if _match(row[fields[key]], values)]
        elif key.startswith("tag:"):
            rows = [row for row in rows if row["Key"] == key[4:] and _match(row["Value"], values)]
        else:
            raise InvalidParameterValue(f"The filter '{key}' is invalid", location=key)
    return {"Tags": rows}
