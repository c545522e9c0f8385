"""EC2 operations on the wire (the ``ec2`` protocol): each a call of ``services/ec2`` (and the reads of
``services/ec2_queries``) in the caller's region and as the caller's account (the one that signed the
request: ``account=caller.account_id``, so the store's sharing rules hold on the wire), answered in the
botocore output shape's members.

Every operation takes ``DryRun``: the checks the real call makes first run, and the answer is EC2's
``DryRunOperation`` (HTTP 412) when it would have succeeded, or the error it would have failed with.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kiln.api import query
from kiln.api.errors import ApiError, Dialect
from kiln.api.paging import Limits, Shaped
from kiln.api.protocol import Handler, Kept, Service
from kiln.api.sigv4 import Caller
from kiln.services import ec2_queries
from kiln.services.ec2 import allowed_images, key_pairs
from kiln.services.ec2 import images as ec2_images
from kiln.services.ec2 import instances as ec2_instances
from kiln.services.ec2 import snapshots as ec2_snapshots
from kiln.services.fleet import launch as fleet_launch
from kiln.services.fleet import launch_templates
from kiln.services.fleet.image_references import describe_image_references
from kiln.services.fleet.launch_templates import TemplateRef
from kiln.services.scanning import image_scans

DRY_RUN_MESSAGE = "Request would have succeeded, but DryRun flag is set."
MAX_INSTANCES_PER_RUN = 20  # kiln's RunInstances launches at most this many sandboxes in one call
# EC2's describe calls take MaxResults of 5 to 1000 (DescribeImages' range is not documented: the common
# rule, configurable); without MaxResults everything comes on one page.
MIN_MAX_RESULTS = int(os.environ.get("KILN_EC2_MIN_MAX_RESULTS", "5"))


# --- parameter helpers ---------------------------------------------------------------------------


def _filters(p: dict[str, Any]) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    for entry in p.get("Filters") or []:
        merged.setdefault(entry.get("Name") or "", []).extend(entry.get("Values") or [])
    return merged


def _tags(p: dict[str, Any], resource_type: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for spec in p.get("TagSpecifications") or []:
        if spec.get("ResourceType") in (None, resource_type):
            tags.update({tag["Key"]: tag.get("Value", "") for tag in spec.get("Tags") or [] if "Key" in tag})
    return tags


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _not_with_ids(p: dict[str, Any], ids: str) -> None:
    if p.get(ids) and p.get("MaxResults") is not None:
        raise ApiError("InvalidParameterCombination",
                       f"The parameter {ids.removesuffix('s')} cannot be used with the parameter maxResults")


def _reservation(caller: Caller, instances: list[dict[str, Any]]) -> dict[str, Any]:
    first = instances[0]["InstanceId"] if instances else "i-0"
    return {"ReservationId": "r-" + first.removeprefix("i-"), "OwnerId": caller.account_id, "Groups": [],
            "Instances": instances}


def _launch_permission_changes(p: dict[str, Any]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(add, remove) from the structured ``LaunchPermission`` or the flat ``OperationType`` form."""
    structured = p.get("LaunchPermission") or {}
    add = [{k: v for k, v in entry.items() if v is not None} for entry in structured.get("Add") or []]
    remove = [{k: v for k, v in entry.items() if v is not None} for entry in structured.get("Remove") or []]
    flat = [{"UserId": v} for v in p.get("UserIds") or []] + [{"Group": v} for v in p.get("UserGroups") or []]
    flat += [{"OrganizationArn": v} for v in p.get("OrganizationArns") or []]
    flat += [{"OrganizationalUnitArn": v} for v in p.get("OrganizationalUnitArns") or []]
    if flat:
        if p.get("Attribute") not in (None, "launchPermission"):
            raise ApiError("InvalidParameterCombination", "user and group lists go with Attribute=launchPermission")
        operation = p.get("OperationType")
        if operation not in ("add", "remove"):
            raise ApiError("MissingParameter", "The request must contain the parameter OperationType (add|remove)")
        (add if operation == "add" else remove).extend(flat)
    if not add and not remove:
        raise ApiError("UnsupportedOperation", "kiln modifies only the launchPermission attribute of an image")
    return add, remove


def _template_ref(p: dict[str, Any]) -> TemplateRef:
    return TemplateRef(p.get("LaunchTemplateId"), p.get("LaunchTemplateName"))


def _version_bound(p: dict[str, Any], member: str) -> int | None:
    value = p.get(member)
    if value is None:
        return None
    if not str(value).isdigit():
        raise ApiError("InvalidParameterValue", f"{member} must be a version number")
    return int(value)


# --- operations ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    run: Handler
    check: Callable[[dict[str, Any], Caller], object] | None = None  # what DryRun verifies


def _describe_images(p: dict[str, Any], c: Caller) -> dict[str, Any]:
    """The images as found; only those of the page the request asks for take EC2's shape (paging)."""
    _not_with_ids(p, "ImageIds")
    found = ec2_images.described_images(
        account=c.account_id, region=c.region, image_ids=p.get("ImageIds"), owners=p.get("Owners"),
        executable_users=p.get("ExecutableUsers"), filters=_filters(p),
        include_deprecated=bool(p.get("IncludeDeprecated")), include_disabled=bool(p.get("IncludeDisabled")),
    )
    return Kept({"Images": Shaped(found, ec2_images.wire_shape)}, (found,))


def _deregister_image(p: dict[str, Any], c: Caller) -> dict[str, Any]:
    delete = bool(p.get("DeleteAssociatedSnapshots"))
    result = ec2_images.deregister_image(p["ImageId"], region=c.region, delete_snapshots=delete,
                                        account=c.account_id)
    answer = {"Return": result["Return"]}
    if delete:  # EC2 lists the snapshots' fates only when asked to delete them
        answer["DeleteSnapshotResults"] = result["DeleteSnapshotResults"]
    return answer


def _copy_image(p: dict[str, Any], c: Caller) -> dict[str, Any]:
    tags = _tags(p, "image")
    if p.get("CopyImageTags"):
        source = ec2_queries.require_image(p["SourceImageId"], p["SourceRegion"], account=c.account_id)
        tags = {**{t["Key"]: t["Value"] for t in source.get("Tags", [])}, **tags}
    return dict(ec2_images.copy_image(p["SourceImageId"], source_region=p["SourceRegion"], region=c.region,
                                     name=p["Name"], description=p.get("Description"), tags=tags,
                                     account=c.account_id))


def _check_copy(p: dict[str, Any], c: Caller) -> None:
    from kiln.services.accounts.regions import require_region

    require_region(p["SourceRegion"], field="SourceRegion")
    ec2_images.check_copyable(p["SourceImageId"], source_region=p["SourceRegion"], account=c.account_id)


def _run_instances(p: dict[str, Any], c: Caller) -> dict[str, Any]:
    template = p.get("LaunchTemplate")
    if not p.get("ImageId") and not template:
        raise ApiError("MissingParameter", "The request must contain the parameter ImageId")
    low, high = p["MinCount"], p["MaxCount"]
    if not 1 <= low <= high:
        raise ApiError("InvalidParameterValue", "MinCount must be at least 1 and at most MaxCount")
    if low > MAX_INSTANCES_PER_RUN:
        raise ApiError("InstanceLimitExceeded", f"kiln launches at most {MAX_INSTANCES_PER_RUN} instances per "
                       "RunInstances call")
    high = min(high, MAX_INSTANCES_PER_RUN)
    kwargs: dict[str, Any] = {"region": c.region, "tags": _tags(p, "instance"), "account": c.account_id}
    if p.get("InstanceType"):
        kwargs["instance_type"] = p["InstanceType"]
    launched: list[Any] = []
    try:
        for _ in range(high):
            if template:
                launched.append(fleet_launch.run_from_template(
                    _template_ref(template), template.get("Version"), image_id=p.get("ImageId"), **kwargs))
            else:
                vm = ec2_instances.vm_options_from_request(p, kwargs["tags"])
                launched.append(ec2_instances.run_instance(p["ImageId"], **kwargs, vm=vm))
    except Exception:
        if len(launched) < low:
            for instance in launched:
                ec2_instances.terminate_instance(instance.id, account=c.account_id)
            raise
    return _reservation(c, [instance.describe() for instance in launched])


def _check_run(p: dict[str, Any], c: Caller) -> None:
    """RunInstances' DryRun: the template version (if any) exists, and the AMI it or the request names
    may be launched by the caller."""
    image_id = p.get("ImageId")
    template = p.get("LaunchTemplate")
    if template:
        _, _, data = fleet_launch.launch_settings(_template_ref(template), template.get("Version"),
                                                  account=c.account_id, region=c.region)
        image_id = fleet_launch.resolve_image(image_id or data.get("ImageId") or "", account=c.account_id,
                                              region=c.region)
    ec2_images.check_launchable(image_id or "", c.region, account=c.account_id)


def _describe_instances(p: dict[str, Any], c: Caller) -> dict[str, Any]:
    _not_with_ids(p, "InstanceIds")
    found = ec2_queries.describe_instances(region=c.region, instance_ids=p.get("InstanceIds"), filters=_filters(p),
                                          account=c.account_id)
    return {"Reservations": [_reservation(c, [instance]) for instance in found["Instances"]]}


def _change(action: str, output: str) -> Operation:
    """Start/Stop/Terminate/RebootInstances: the instances must be the caller's, in its region."""

    def run(p: dict[str, Any], c: Caller) -> dict[str, Any]:
        _require_instances(p["InstanceIds"], c)
        kwargs = {"force": bool(p.get("Force"))} if action in ("stop_instances", "terminate_instances") else {}
        changes = getattr(ec2_instances, action)(p["InstanceIds"], **kwargs, account=c.account_id)["Instances"]
        return {output: changes} if output else {}

    return Operation(run, lambda p, c: _require_instances(p["InstanceIds"], c))


def _require_instances(instance_ids: list[str], c: Caller) -> None:
    ec2_queries.require_instances(instance_ids, c.region, account=c.account_id)


def _create_tags(p: dict[str, Any], c: Caller) -> dict[str, Any]:
    kinds = {resource: ec2_queries.require_resource(resource, c.region, account=c.account_id)
             for resource in p["Resources"]}
    if "instance" in kinds.values():
        raise ApiError("UnsupportedOperation", "kiln tags instances when they are launched (TagSpecifications)")
    tags = {tag["Key"]: tag.get("Value", "") for tag in p["Tags"]}
    for resource in p["Resources"]:
        ec2_images.create_tags(resource, tags, account=c.account_id)
    return {}


def _delete_tags(p: dict[str, Any], c: Caller) -> dict[str, Any]:
    for resource in p["Resources"]:
        if p.get("Tags") is None:  # no Tag list: every tag of the resource
            current = ec2_queries.describe_tags(region=c.region, filters={"resource-id": [resource]},
                                               account=c.account_id)["Tags"]
            tags: dict[str, str | None] = {row["Key"]: None for row in current}
        else:
            tags = {tag["Key"]: tag.get("Value") for tag in p["Tags"]}
        ec2_queries.delete_tags(resource, tags, c.region, account=c.account_id)
    return {}


def _check_resources(p: dict[str, Any], c: Caller) -> None:
    for resource in p["Resources"]:
        ec2_queries.require_resource(resource, c.region, account=c.account_id)


def _image_check(p: dict[str, Any], c: Caller) -> None:
    """What an owner-only image action checks first: NotFound if unseen, AuthFailure if not the caller's."""
    ec2_images.check_owner(p["ImageId"], c.region, account=c.account_id)


def _image_call(action: str, answer: Callable[[dict[str, Any]], dict[str, Any]] = lambda r: {"Return": True},
                **extra: Callable[[dict[str, Any]], Any]) -> Operation:
    """An operation on one AMI of the caller's region: ``action(ImageId, **extra, region=…)``."""

    def run(p: dict[str, Any], c: Caller) -> dict[str, Any]:
        kwargs = {name: read(p) for name, read in extra.items()}
        return answer(getattr(ec2_images, action)(p["ImageId"], **kwargs, region=c.region, account=c.account_id))

    return Operation(run, _image_check)


def _done(_result: object) -> dict[str, Any]:
    """The answer of an operation whose output has no members (EC2 says ``<return>true</return>``)."""
    return {}


def _modify_image_attribute(p: dict[str, Any], c: Caller) -> dict[str, Any]:
    add, remove = _launch_permission_changes(p)
    return _done(ec2_images.modify_launch_permission(p["ImageId"], add=add, remove=remove, region=c.region,
                                                    account=c.account_id))


def _create_image(p: dict[str, Any], c: Caller) -> dict[str, Any]:
    _require_instances([p["InstanceId"]], c)
    image_id = ec2_instances.create_image(p["InstanceId"], name=p["Name"], description=p.get("Description"),
                                         tags=_tags(p, "image"), no_reboot=bool(p.get("NoReboot")),
                                         account=c.account_id)
    return {"ImageId": image_id}


def _console_output(p: dict[str, Any], c: Caller) -> dict[str, Any]:
    _require_instances([p["InstanceId"]], c)
    output = ec2_instances.get_console_output(p["InstanceId"], account=c.account_id)["Output"]
    return {"InstanceId": p["InstanceId"], "Output": base64.b64encode(output.encode()).decode(),
            "Timestamp": datetime.now(UTC)}


def _describe_regions(p: dict[str, Any], c: Caller) -> dict[str, Any]:
    from kiln.services.accounts.regions import list_regions

    wanted = set(p.get("RegionNames") or [])
    return {"Regions": [region for region in list_regions() if not wanted or region["RegionName"] in wanted]}


OPERATIONS: dict[str, Operation] = {
    # images
    "DescribeImages": Operation(_describe_images),
    "DescribeImageAttribute": Operation(
        lambda p, c: dict(ec2_images.describe_image_attribute(p["ImageId"], p["Attribute"], c.region,
                                                             account=c.account_id)),
        lambda p, c: ec2_images.describe_image_attribute(p["ImageId"], p["Attribute"], c.region,
                                                        account=c.account_id),
    ),
    "ModifyImageAttribute": Operation(_modify_image_attribute, lambda p, c: (_launch_permission_changes(p),
                                                                             _image_check(p, c))),
    "DeregisterImage": Operation(_deregister_image, lambda p, c: ec2_images.deregister_image(
        p["ImageId"], region=c.region, delete_snapshots=bool(p.get("DeleteAssociatedSnapshots")), dry_run=True,
        account=c.account_id,
    )),
    "CopyImage": Operation(_copy_image, _check_copy),
    "EnableImage": _image_call("enable_image"),
    "DisableImage": _image_call("disable_image"),
    "EnableImageDeprecation": _image_call("enable_image_deprecation", deprecate_at=lambda p: p["DeprecateAt"]),
    "DisableImageDeprecation": _image_call("disable_image_deprecation"),
    "EnableImageDeregistrationProtection": _image_call(
        "enable_deregistration_protection", lambda r: {"Return": r["DeregistrationProtection"]},
        with_cooldown=lambda p: bool(p.get("WithCooldown")),
    ),
    "DisableImageDeregistrationProtection": _image_call(
        "disable_deregistration_protection", lambda r: {"Return": r["DeregistrationProtection"]}
    ),
    "CreateImage": Operation(_create_image, lambda p, c: _require_instances([p["InstanceId"]], c)),
    "AttachImageWatermark": _image_call("attach_image_watermark", lambda r: r, name=lambda p: p["WatermarkName"]),
    "DetachImageWatermark": _image_call("detach_image_watermark", lambda r: r, key=lambda p: p["WatermarkKey"]),
    "GetImageAncestry": Operation(
        lambda p, c: ec2_images.get_image_ancestry(p["ImageId"], c.region, account=c.account_id),
        lambda p, c: ec2_images.describe_image(p["ImageId"], c.region, account=c.account_id),
    ),
    "GetImageFindings": Operation(
        lambda p, c: image_scans.get_image_findings(p["ImageId"], c.region, account=c.account_id),
        lambda p, c: ec2_images.describe_image(p["ImageId"], c.region, account=c.account_id),
    ),
    # snapshots
    "DescribeSnapshots": Operation(lambda p, c: dict(ec2_queries.describe_snapshots(
        region=c.region, snapshot_ids=p.get("SnapshotIds"), owner_ids=p.get("OwnerIds"), filters=_filters(p),
        caller=c.account_id,
    ))),
    "DeleteSnapshot": Operation(
        lambda p, c: _done(ec2_snapshots.delete_snapshot(p["SnapshotId"], region=c.region, account=c.account_id)),
        lambda p, c: ec2_snapshots.delete_snapshot(p["SnapshotId"], region=c.region, dry_run=True,
                                                  account=c.account_id),
    ),
    "ModifySnapshotAttribute": Operation(
        lambda p, c: _done(ec2_snapshots.modify_snapshot_attribute(
            p["SnapshotId"], attribute=p.get("Attribute"), operation_type=p.get("OperationType"),
            create_volume_permission=p.get("CreateVolumePermission"), user_ids=p.get("UserIds"),
            group_names=p.get("GroupNames"), region=c.region, account=c.account_id,
        )),
        lambda p, c: ec2_snapshots.describe_snapshot_attribute(p["SnapshotId"], region=c.region,
                                                              account=c.account_id),
    ),
    "DescribeSnapshotAttribute": Operation(
        lambda p, c: dict(ec2_snapshots.describe_snapshot_attribute(
            p["SnapshotId"], p["Attribute"], c.region, account=c.account_id
        )),
        lambda p, c: ec2_snapshots.describe_snapshot_attribute(p["SnapshotId"], p["Attribute"], c.region,
                                                              account=c.account_id),
    ),
    "ResetSnapshotAttribute": Operation(
        lambda p, c: _done(ec2_snapshots.reset_snapshot_attribute(
            p["SnapshotId"], p["Attribute"], c.region, account=c.account_id
        )),
        lambda p, c: ec2_snapshots.describe_snapshot_attribute(p["SnapshotId"], p["Attribute"], c.region,
                                                              account=c.account_id),
    ),
    # instances
    "RunInstances": Operation(_run_instances, _check_run),
    "DescribeInstances": Operation(_describe_instances),
    "StopInstances": _change("stop_instances", "StoppingInstances"),
    "StartInstances": _change("start_instances", "StartingInstances"),
    "TerminateInstances": _change("terminate_instances", "TerminatingInstances"),
    "RebootInstances": _change("reboot_instances", ""),
    "GetConsoleOutput": Operation(_console_output, lambda p, c: _require_instances([p["InstanceId"]], c)),
    # key pairs
    "CreateKeyPair": Operation(lambda p, c: key_pairs.create_key_pair(
        p["KeyName"], key_type=p.get("KeyType") or "rsa", tags=_tags(p, "key-pair"), account=c.account_id,
        region=c.region)),
    "ImportKeyPair": Operation(lambda p, c: key_pairs.import_key_pair(
        p["KeyName"], _text(p["PublicKeyMaterial"]), tags=_tags(p, "key-pair"), account=c.account_id,
        region=c.region)),
    "DescribeKeyPairs": Operation(lambda p, c: key_pairs.describe_key_pairs(
        names=p.get("KeyNames") or [], ids=p.get("KeyPairIds") or [],
        include_public_key=bool(p.get("IncludePublicKey")), account=c.account_id, region=c.region)),
    "DeleteKeyPair": Operation(lambda p, c: key_pairs.delete_key_pair(
        p.get("KeyPairId") or p.get("KeyName") or "", account=c.account_id, region=c.region)),
    # tags
    "CreateTags": Operation(_create_tags, _check_resources),
    "DeleteTags": Operation(_delete_tags, _check_resources),
    "DescribeTags": Operation(lambda p, c: dict(ec2_queries.describe_tags(region=c.region, filters=_filters(p),
                                                                         account=c.account_id))),
    # regions
    "DescribeRegions": Operation(_describe_regions),
    # launch templates
    "CreateLaunchTemplate": Operation(lambda p, c: launch_templates.create_launch_template(
        p["LaunchTemplateName"], p["LaunchTemplateData"], version_description=p.get("VersionDescription"),
        tags=_tags(p, "launch-template"), client_token=p.get("ClientToken"), account=c.account_id, region=c.region,
    )),
    "CreateLaunchTemplateVersion": Operation(lambda p, c: launch_templates.create_launch_template_version(
        _template_ref(p), p["LaunchTemplateData"], source_version=p.get("SourceVersion"),
        version_description=p.get("VersionDescription"), resolve_alias=bool(p.get("ResolveAlias")),
        client_token=p.get("ClientToken"), account=c.account_id, region=c.region,
    )),
    "ModifyLaunchTemplate": Operation(lambda p, c: launch_templates.modify_launch_template(
        _template_ref(p), default_version=p.get("DefaultVersion") or "$Default", account=c.account_id,
        region=c.region,
    )),
    "DescribeLaunchTemplates": Operation(lambda p, c: launch_templates.describe_launch_templates(
        launch_template_ids=p.get("LaunchTemplateIds") or [], launch_template_names=p.get("LaunchTemplateNames") or [],
        filters=_filters(p), account=c.account_id, region=c.region,
    )),
    "DescribeLaunchTemplateVersions": Operation(lambda p, c: launch_templates.describe_launch_template_versions(
        _template_ref(p) if p.get("LaunchTemplateId") or p.get("LaunchTemplateName") else None,
        versions=p.get("Versions") or [], min_version=_version_bound(p, "MinVersion"),
        max_version=_version_bound(p, "MaxVersion"), filters=_filters(p), resolve_alias=bool(p.get("ResolveAlias")),
        account=c.account_id, region=c.region,
    )),
    "DeleteLaunchTemplate": Operation(lambda p, c: launch_templates.delete_launch_template(
        _template_ref(p), account=c.account_id, region=c.region)),
    "DeleteLaunchTemplateVersions": Operation(lambda p, c: launch_templates.delete_launch_template_versions(
        _template_ref(p), p["Versions"], account=c.account_id, region=c.region)),
    "DescribeImageReferences": Operation(lambda p, c: describe_image_references(
        p["ImageIds"], include_all_resource_types=bool(p.get("IncludeAllResourceTypes")),
        resource_types=p.get("ResourceTypes"), account=c.account_id, region=c.region)),
    # allowed images
    "GetAllowedImagesSettings": Operation(lambda p, c: {
        key: value for key, value in allowed_images.get_allowed_images_settings(c.region, account=c.account_id)
        .items() if key != "Kiln"}),
    "EnableAllowedImagesSettings": Operation(lambda p, c: allowed_images.enable_allowed_images_settings(
        p["AllowedImagesSettingsState"], c.region, account=c.account_id)),
    "DisableAllowedImagesSettings": Operation(lambda p, c: allowed_images.disable_allowed_images_settings(
        c.region, account=c.account_id)),
    "ReplaceImageCriteriaInAllowedImagesSettings": Operation(lambda p, c: allowed_images.replace_image_criteria(
        p.get("ImageCriteria") or [], c.region, account=c.account_id)),
}


def _handler(operation: Operation) -> Handler:
    def handle(p: dict[str, Any], c: Caller) -> dict[str, Any]:
        if p.get("DryRun"):
            if operation.check is not None:
                operation.check(p, c)
            raise ApiError("DryRunOperation", DRY_RUN_MESSAGE, 412)
        return operation.run(p, c)

    return handle


DIALECT = Dialect(
    missing="MissingParameter",
    invalid="InvalidParameterValue",
    unknown_parameter="UnknownParameter",
    unknown_operation="InvalidAction",
    unsupported="UnsupportedOperation",
    malformed="MalformedQueryString",
    bad_token="InvalidNextToken",
    bad_limit="InvalidMaxResults",
    flat=True,
    statuses={"AuthFailure": 401, "UnauthorizedOperation": 403, "DryRunOperation": 412, "InternalError": 500,
              "Unavailable": 503},
    kiln_codes={
        "InvalidParameterValueException": "InvalidParameterValue",
        "IdempotentParameterMismatchException": "IdempotentParameterMismatch",
        "InvalidRequestException": "InvalidRequest",
        "ResourceNotFoundException": "InvalidParameterValue",
        "ResourceAlreadyExistsException": "InvalidParameterValue",
        "ResourceInUseException": "IncorrectState",
        "ResourceDependencyException": "DependencyViolation",
        "ForbiddenException": "UnauthorizedOperation",
        "ServiceUnavailableException": "Unavailable",
        "ServiceException": "InternalError",
    },
)

SERVICE = Service("ec2", query, DIALECT, Limits(low=MIN_MAX_RESULTS, high=1000, default=None),
                  {name: _handler(operation) for name, operation in OPERATIONS.items()})
