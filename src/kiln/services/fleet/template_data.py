"""``LaunchTemplateData``: what a version may hold, checked against botocore's
``RequestLaunchTemplateData`` shape; the members kiln acts on (``ImageId``, ``InstanceType``,
``TagSpecifications``, ``UserData``) are checked in full, the others are kept as given (EC2 too checks
most of them only at launch)."""

from __future__ import annotations

import base64
import binascii
import copy
import re
from typing import Any

from kiln.ec2_errors import InvalidParameterValue
from kiln.model import ec2_model

FIELD = "LaunchTemplateData"
AMI_ID = re.compile(r"^ami-([0-9a-f]{8}|[0-9a-f]{17})$")
SSM_PREFIX = "resolve:ssm:"
# TagSpecifications inside launch template data tag what a launch creates.
TAGGABLE_AT_LAUNCH = ("instance", "volume", "network-interface", "spot-instances-request")
MAX_USER_DATA = 16 * 1024  # bytes, before base64


def _bad(message: str, member: str | None = None) -> InvalidParameterValue:
    return InvalidParameterValue(message, location=f"{FIELD}.{member}" if member else FIELD)


def check(data: Any) -> dict[str, Any]:
    """``data`` if it is launch template data kiln can keep, else one error naming the member."""
    if not isinstance(data, dict):
        raise _bad("launch template data is an object (e.g. {\"ImageId\": \"ami-…\"})")
    members = ec2_model.shape("RequestLaunchTemplateData").members
    for key in data:
        if key not in members:
            raise _bad(f"unknown parameter {key!r}; RequestLaunchTemplateData has {', '.join(members)}", key)
    image_id = data.get("ImageId")
    if image_id is not None and not (
        isinstance(image_id, str) and (AMI_ID.match(image_id) or (image_id.startswith(SSM_PREFIX) and
                                                                   len(image_id) > len(SSM_PREFIX)))
    ):
        raise _bad(f"{image_id!r} is neither an AMI id (ami-…) nor resolve:ssm:<parameter>", "ImageId")
    if "InstanceType" in data:
        _check_instance_type(data["InstanceType"])
    if "TagSpecifications" in data:
        check_tag_specifications(data["TagSpecifications"], TAGGABLE_AT_LAUNCH, f"{FIELD}.TagSpecifications")
    if "UserData" in data:
        user_data(data)
    return data


def _check_instance_type(value: Any) -> None:
    from kiln.runtime.instance_types import INSTANCE_TYPES

    if value not in INSTANCE_TYPES:
        raise _bad(f"instance type {value!r} is not one kiln runs; one of {', '.join(INSTANCE_TYPES)}",
                   "InstanceType")


def check_tag_specifications(specs: Any, resource_types: tuple[str, ...], field: str) -> dict[str, dict[str, str]]:
    """``[{ResourceType, Tags: [{Key, Value}]}]`` → tags by resource type."""
    if not isinstance(specs, list):
        raise InvalidParameterValue("TagSpecifications is a list of {ResourceType, Tags}", location=field)
    found: dict[str, dict[str, str]] = {}
    for index, spec in enumerate(specs):
        where = f"{field}[{index}]"
        if not isinstance(spec, dict) or set(spec) - {"ResourceType", "Tags"}:
            raise InvalidParameterValue("a tag specification has ResourceType and Tags", location=where)
        kind = spec.get("ResourceType")
        if kind not in resource_types:
            raise InvalidParameterValue(
                f"ResourceType {kind!r} cannot be tagged here; use one of {', '.join(resource_types)}",
                location=f"{where}.ResourceType",
            )
        tags = spec.get("Tags") or []
        if not isinstance(tags, list):
            raise InvalidParameterValue("Tags is a list of {Key, Value}", location=f"{where}.Tags")
        for number, tag in enumerate(tags):
            key = tag.get("Key") if isinstance(tag, dict) else None
            if not isinstance(key, str) or not key or not isinstance(tag.get("Value", ""), str):
                raise InvalidParameterValue("a tag is {Key, Value} with a non-empty Key",
                                            location=f"{where}.Tags[{number}]")
            found.setdefault(kind, {})[tag["Key"]] = tag.get("Value", "")
    return found


def user_data(data: dict[str, Any]) -> bytes | None:
    """The decoded ``UserData`` (base64 in the request, as EC2 takes it), or None."""
    encoded = data.get("UserData")
    if encoded is None:
        return None
    if not isinstance(encoded, str):
        raise _bad("UserData is base64 text", "UserData")
    try:
        decoded = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _bad("UserData is not valid base64", "UserData") from None
    if len(decoded) > MAX_USER_DATA:
        raise _bad(f"UserData is {len(decoded)} bytes; the limit is {MAX_USER_DATA}", "UserData")
    return decoded


def instance_tags(data: dict[str, Any]) -> dict[str, str]:
    return check_tag_specifications(data.get("TagSpecifications") or [], TAGGABLE_AT_LAUNCH,
                                    f"{FIELD}.TagSpecifications").get("instance", {})


def inherit(source: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """A new version's data from ``SourceVersion``: the source's members, overridden by the given ones;
    inherited block device mappings lose their snapshot ids, as EC2 drops them unless given again."""
    merged = copy.deepcopy(source)
    if "BlockDeviceMappings" not in given:
        for mapping in merged.get("BlockDeviceMappings") or []:
            if isinstance(mapping, dict) and isinstance(mapping.get("Ebs"), dict):
                mapping["Ebs"].pop("SnapshotId", None)
    merged.update(copy.deepcopy(given))
    return merged
