"""EC2 reads and checks the API needs that ``services/ec2`` does not offer (yet): DescribeImages'
``ExecutableUsers`` and the caller's ``self``, DescribeImageAttribute, DescribeTags, snapshots and
instances by id and filter, per region, and the checks a ``DryRun`` makes. Built on the ``ec2`` family's
functions and the image store's reads; candidates to move into ``services/ec2`` with the sharing work.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from typing import Any

from kiln.ec2_errors import (
    Ec2Error,
    InvalidAMIIDNotFound,
    InvalidID,
    InvalidInstanceIDNotFound,
    InvalidParameterValue,
    InvalidSnapshotNotFound,
)
from kiln.errors import InvalidInput
from kiln.home import DEFAULT_REGION
from kiln.services.accounts.organizations import membership
from kiln.services.ec2 import images, instances, snapshots
from kiln.store import api

OWNER_ALIASES = ("self", "amazon", "aws-marketplace", "aws-backup-vault")


class InvalidUserIDMalformed(Ec2Error, InvalidInput):
    code = "InvalidUserID.Malformed"


def _match(value: Any, patterns: Iterable[str]) -> bool:
    return value is not None and any(fnmatch.fnmatchcase(str(value), p) for p in patterns)


# --- images ---------------------------------------------------------------------------------------


def _executable_by(image_id: str, users: list[str], caller: str, region: str) -> bool:
    permissions = api.get_image(image_id, region).launch_permissions
    granted = {entry.get("UserId") for entry in permissions}
    if "all" in users and {"Group": "all"} in permissions:
        return True
    if any(user in granted for user in users if user not in ("self", "all", caller)):
        return True
    if "self" in users or caller in users:
        organization, units = membership(caller)
        return caller in granted or any(
            entry.get("OrganizationArn") == organization or entry.get("OrganizationalUnitArn") in units
            for entry in permissions
            if organization
        )
    return False


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
    """EC2 ``DescribeImages`` for ``caller``: ``self`` is the caller's account; ``ExecutableUsers`` keeps
    the AMIs shared with those users (another account: its direct grants; ``self``: the caller's direct,
    organization and OU grants; ``all``: public AMIs)."""
    for owner in owners or []:
        if owner not in OWNER_ALIASES and not re.fullmatch(r"\d{12}", owner):
            raise InvalidUserIDMalformed(f"Invalid user id: '{owner}'")
    for user in executable_users or []:
        if user not in ("self", "all") and not re.fullmatch(r"\d{12}", user):
            raise InvalidUserIDMalformed(f"Invalid user id: '{user}'")
    found = images.describe_images(
        region=region,
        image_ids=image_ids,
        owners=[caller if owner == "self" else owner for owner in owners or []] or None,
        filters=filters,
        include_deprecated=include_deprecated,
        include_disabled=include_disabled,
    )["Images"]
    if executable_users:
        found = [image for image in found if _executable_by(image["ImageId"], executable_users, caller, region)]
    return {"Images": found}


def require_image(image_id: str, region: str = DEFAULT_REGION) -> dict[str, Any]:
    """The AMI's ``Image`` shape; InvalidAMIID.NotFound when it is not in ``region``."""
    return images.describe_image(image_id, region)


def check_launchable(image_id: str, region: str = DEFAULT_REGION) -> None:
    """What RunInstances and CopyImage check first (a disabled, deregistered or damaged AMI is refused)."""
    api.assert_launchable(image_id, region)


def describe_image_attribute(image_id: str, attribute: str, region: str = DEFAULT_REGION) -> dict[str, Any]:
    """EC2 ``DescribeImageAttribute``: one attribute, in the ``ImageAttribute`` shape."""
    info = api.get_image(image_id, region)
    if info.state == "deregistered":
        raise InvalidAMIIDNotFound(image_id)
    image = info.to_ec2()
    values: dict[str, Any] = {
        "description": {"Description": {"Value": info.description}},
        "launchPermission": {"LaunchPermissions": info.launch_permissions},
        "blockDeviceMapping": {"BlockDeviceMappings": image["BlockDeviceMappings"]},
        "bootMode": {"BootMode": {"Value": image["BootMode"]}},
        "lastLaunchedTime": {"LastLaunchedTime": {"Value": image.get("LastLaunchedTime")}},
        "deregistrationProtection": {"DeregistrationProtection": {"Value": info.deregistration_protection}},
        "productCodes": {"ProductCodes": []},
    }
    return {"ImageId": image_id, **values.get(attribute, {})}


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
    caller: str | None = None,
) -> dict[str, Any]:
    """EC2 ``DescribeSnapshots`` by id, owner (``self`` is the caller) and filter."""
    found = snapshots.describe_snapshots(region=region)["Snapshots"]
    if snapshot_ids:
        missing = sorted(set(snapshot_ids) - {s["SnapshotId"] for s in found})
        if missing:
            raise InvalidSnapshotNotFound(missing[0])
        found = [s for s in found if s["SnapshotId"] in snapshot_ids]
    if owner_ids:
        owners = {caller if owner == "self" else owner for owner in owner_ids}
        found = [s for s in found if s["OwnerId"] in owners]
    for key, values in (filters or {}).items():
        found = [s for s in found if _snapshot_filter(s, key, values)]
    return {"Snapshots": found}


def require_snapshot(snapshot_id: str, region: str = DEFAULT_REGION) -> dict[str, Any]:
    return describe_snapshots(region=region, snapshot_ids=[snapshot_id])["Snapshots"][0]


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
) -> dict[str, Any]:
    """EC2 ``DescribeInstances`` (flattened, as ``services/ec2``) of one region, by id and filter."""
    found = [i for i in instances.describe_instances()["Instances"] if i.get("Kiln", {}).get("Region") == region]
    if instance_ids:
        missing = sorted(set(instance_ids) - {i["InstanceId"] for i in found})
        if missing:
            raise InvalidInstanceIDNotFound(missing[0])
        found = [i for i in found if i["InstanceId"] in instance_ids]
    for key, values in (filters or {}).items():
        found = [i for i in found if _instance_filter(i, key, values)]
    return {"Instances": found}


def require_instances(instance_ids: list[str], region: str = DEFAULT_REGION) -> None:
    describe_instances(region=region, instance_ids=instance_ids)


# --- tags -----------------------------------------------------------------------------------------


def require_resource(resource_id: str, region: str = DEFAULT_REGION) -> str:
    """The resource type (``image``, ``snapshot``, ``instance``) of an id in ``region``; InvalidID else."""
    try:
        if resource_id.startswith("ami-"):
            require_image(resource_id, region)
            return "image"
        if resource_id.startswith("snap-"):
            require_snapshot(resource_id, region)
            return "snapshot"
        if resource_id.startswith("i-"):
            require_instances([resource_id], region)
            return "instance"
    except (InvalidAMIIDNotFound, InvalidSnapshotNotFound, InvalidInstanceIDNotFound):
        pass
    raise InvalidID(resource_id)


def delete_tags(resource_id: str, tags: Mapping[str, str | None], region: str = DEFAULT_REGION) -> None:
    """EC2 ``DeleteTags``: a key alone deletes the tag; a key with a value only when the value matches."""
    require_resource(resource_id, region)
    api.delete_tags(resource_id, dict(tags))


def _tag_rows(region: str) -> list[dict[str, str]]:
    rows = []
    described = images.describe_images(region=region, include_deprecated=True, include_disabled=True)["Images"]
    sources: list[tuple[str, list[dict[str, Any]], str]] = [
        ("image", described, "ImageId"),
        ("snapshot", snapshots.describe_snapshots(region=region)["Snapshots"], "SnapshotId"),
        ("instance", describe_instances(region=region)["Instances"], "InstanceId"),
    ]
    for kind, resources, id_key in sources:
        for resource in resources:
            for tag in resource.get("Tags", []):
                rows.append({"ResourceId": resource[id_key], "ResourceType": kind, "Key": tag["Key"],
                             "Value": tag["Value"]})
    return rows


def describe_tags(*, region: str = DEFAULT_REGION, filters: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    """EC2 ``DescribeTags`` over the region's AMIs, snapshots and instances (filters ``resource-id``,
    ``resource-type``, ``key``, ``value``, ``tag:<key>``)."""
    fields = {"resource-id": "ResourceId", "resource-type": "ResourceType", "key": "Key", "value": "Value"}
    rows = _tag_rows(region)
    for key, values in (filters or {}).items():
        if key in fields:
            rows = [row for row in rows if _match(row[fields[key]], values)]
        elif key.startswith("tag:"):
            rows = [row for row in rows if row["Key"] == key[4:] and _match(row["Value"], values)]
        else:
            raise InvalidParameterValue(f"The filter '{key}' is invalid", location=key)
    return {"Tags": rows}
