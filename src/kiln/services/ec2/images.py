"""EC2 images (AMIs) for every front end: the calls and the response shapes of the image store.

Each function is one EC2 action (``DescribeImages``, ``DeregisterImage``, ...) over ``kiln.store.api``
and answers with EC2's field names, plus kiln's own where EC2 has none (byte accounting). Each takes
the calling ``account``; the store checks it against the AMI's launch permissions, evaluated at that
moment (an organization or OU grant follows the caller's current membership):

* an AMI the caller may not see (not its own, not public, not shared with it) is
  ``InvalidAMIID.NotFound`` to describe, copy or export, and ``AuthFailure`` to launch;
* only the owner may change an AMI (attributes, sharing, tags, deprecation, disable, protection,
  deregistration);
* another account's AMI can be copied or exported only with ``createVolumePermission`` on its snapshot.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from kiln.ec2_errors import InvalidParameterValue
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.model import ec2_model
from kiln.services.ec2.callers import principal
from kiln.store import api
from kiln.store.disk_image import check_boot_mode


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
    account: str = DEFAULT_ACCOUNT,
) -> dict[str, Any]:
    """A parent image from a rootfs tarball, a directory, an OCI layout or an oci-archive, owned by
    ``account``."""
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
        owner=account,
    )
    return {"ImageId": image_id}


def bootstrap_image(
    source: str,
    *,
    name: str | None = None,
    region: str = DEFAULT_REGION,
    include: Iterable[str] = (),
    account: str = DEFAULT_ACCOUNT,
) -> dict[str, Any]:
    """A minbase parent image from mmdebstrap (``debian:bookworm``), cached and idempotent."""
    image_id = api.bootstrap_image(source, name=name, region=region, include=list(include), owner=account)
    return {"ImageId": image_id}


def describe_images(
    *,
    region: str = DEFAULT_REGION,
    image_ids: list[str] | None = None,
    names: list[str] | None = None,
    owners: list[str] | None = None,
    executable_users: list[str] | None = None,
    filters: Mapping[str, list[str]] | None = None,
    include_deprecated: bool = False,
    include_disabled: bool = False,
    account: str = DEFAULT_ACCOUNT,
) -> dict[str, Any]:
    """EC2 ``DescribeImages`` for ``account``: its own AMIs, public ones and those shared with it
    (directly, through its organization or an OU it is in). ``Owners``: account ids, ``self``,
    ``amazon`` / ``aws-marketplace`` / ``aws-backup-vault``; ``ExecutableUsers``: ``self``, account
    ids (explicit grants only), ``all``. Deregistered, deprecated (except the caller's own) and
    disabled AMIs are hidden unless asked for; grantees see only ``ec2:SharedTag/`` tags. Under allowed
    images settings each shows ``ImageAllowed`` (filter ``image-allowed``: true | false), and in
    ``enabled`` mode other accounts' disallowed AMIs are left out."""
    found = described_images(region=region, image_ids=image_ids, names=names, owners=owners,
                             executable_users=executable_users, filters=filters,
                             include_deprecated=include_deprecated, include_disabled=include_disabled,
                             account=account)
    return {"Images": [image_shape(entry) for entry in found]}


DescribedImage = tuple[Any, "bool | None"]  # a store ImageInfo as the caller sees it, and its ImageAllowed


def described_images(
    *,
    region: str = DEFAULT_REGION,
    image_ids: list[str] | None = None,
    names: list[str] | None = None,
    owners: list[str] | None = None,
    executable_users: list[str] | None = None,
    filters: Mapping[str, list[str]] | None = None,
    include_deprecated: bool = False,
    include_disabled: bool = False,
    account: str = DEFAULT_ACCOUNT,
) -> list[DescribedImage]:
    """What :func:`describe_images` answers, before each image takes EC2's shape (:func:`image_shape`):
    a caller that pages shapes only its page."""
    from kiln.services.ec2 import allowed_images

    filters = dict(filters or {})
    allowed_filter = filters.pop("image-allowed", None)
    found = api.kept_images(
        region,
        image_ids=image_ids,
        names=names,
        owners=owners,
        executable_users=executable_users,
        filters=filters,
        include_deprecated=include_deprecated,
        include_disabled=include_disabled,
        caller=principal(account),
    )
    if allowed_filter is None and not allowed_images.judging(account=account, region=region):
        return _unjudged(found)
    shown = allowed_images.judge_shown(found, account=account, region=region)
    if allowed_filter is not None:
        shown = [(image, allowed) for image, allowed in shown if str(allowed).lower() in allowed_filter]
    return shown


_unjudged_kept: dict[int, tuple[tuple[Any, ...], list[DescribedImage]]] = {}  # id(store answer) -> it, its pairs
_unjudged_lock = threading.Lock()
MAX_UNJUDGED = 64


def _unjudged(found: tuple[Any, ...]) -> list[DescribedImage]:
    """Every image of a store answer shown, none judged: one list per store answer object (the store hands
    out the same object while the answer holds), so an unchanged answer is the same object here too and
    the API may reuse what it encoded from it (``kiln.api.encoded``). Read-only."""
    kept = _unjudged_kept.get(id(found))
    if kept is not None and kept[0] is found:
        return kept[1]
    pairs: list[DescribedImage] = [(image, None) for image in found]
    with _unjudged_lock:
        if len(_unjudged_kept) >= MAX_UNJUDGED:
            _unjudged_kept.clear()
        _unjudged_kept[id(found)] = (found, pairs)  # the answer is held here: its id is not reused meanwhile
    return pairs


def image_shape(described: DescribedImage) -> dict[str, Any]:
    """The EC2 ``Image`` shape of one of :func:`described_images`."""
    image, allowed = described
    shape = image.to_ec2()
    return shape if allowed is None else {**shape, "ImageAllowed": allowed}


def wire_shape(described: DescribedImage) -> dict[str, Any]:
    """:func:`image_shape` for an answer that is only rendered, never changed (the API's pages): the
    image's shared read-only shape when there is no ``ImageAllowed`` to add (no copy per answer)."""
    image, allowed = described
    return image.shared_ec2() if allowed is None else {**image.to_ec2(), "ImageAllowed": allowed}


def describe_image(image_id: str, region: str = DEFAULT_REGION, *, account: str = DEFAULT_ACCOUNT) -> dict[str, Any]:
    """One AMI's ``Image`` shape, whatever its state (also deprecated, disabled, deregistered), as
    ``account`` sees it (with ``ImageAllowed`` while allowed images settings are on)."""
    from kiln.services.ec2 import allowed_images

    info = api.get_image(image_id, region, principal(account))
    shape = info.to_ec2()
    allowed = allowed_images.image_allowed(info, account=account, region=region)
    return shape if allowed is None else {**shape, "ImageAllowed": allowed}


def check_launchable(image_id: str, region: str = DEFAULT_REGION, *, account: str = DEFAULT_ACCOUNT) -> None:
    """What RunInstances checks first (its ``DryRun``): ``account`` may launch the AMI (else
    ``AuthFailure`` "Not authorized for images") and its state allows a launch."""
    api.assert_launchable(image_id, region, principal(account))


def check_copyable(
    source_image_id: str, *, source_region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT
) -> None:
    """What CopyImage checks first (its ``DryRun``): the source visible to ``account``, its snapshot
    readable, the AMI launchable."""
    api.check_copyable(source_image_id, source_region, principal(account))


def check_owner(image_id: str, region: str = DEFAULT_REGION, *, account: str = DEFAULT_ACCOUNT) -> None:
    """What an owner-only action checks first (its ``DryRun``): ``InvalidAMIID.NotFound`` for an AMI
    ``account`` cannot see, ``AuthFailure`` for one it sees but does not own."""
    api.image_attributes(image_id, region, principal(account))


def copy_image(
    source_image_id: str,
    *,
    source_region: str = DEFAULT_REGION,
    region: str = DEFAULT_REGION,
    name: str | None = None,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    account: str = DEFAULT_ACCOUNT,
) -> dict[str, Any]:
    """EC2 ``CopyImage`` (called for the destination region): the source must be launchable by
    ``account`` and, if another account's, its snapshot readable; the copy is ``account``'s."""
    image_id = api.copy_image(
        source_image_id,
        source_region=source_region,
        region=region,
        name=name,
        description=description,
        tags=dict(tags or {}),
        caller=principal(account),
    )
    from kiln.services.inventory.artifacts import carry_sboms

    carry_sboms(source_image_id, source_region, image_id, region)  # the copy's own SBOMs, as its source had
    return {"ImageId": image_id}


def export_image(
    image_id: str, fmt: str, dest: Path, region: str = DEFAULT_REGION, *, account: str = DEFAULT_ACCOUNT,
    volume_size: int | None = None, boot_mode: str | None = None,
) -> dict[str, Any]:
    """A flattened tar, an OCI archive or a disk image (raw, qcow2, vmdk, vhd; bootable when the image
    has a kernel) or the bare root file system (rootfs-ext4) of the AMI; another account's AMI needs
    what CopyImage needs. ``volume_size`` (GiB, EC2's ``VolumeSize``) sizes a bootable disk."""
    if volume_size is not None and volume_size < 1:
        raise InvalidParameterValue(
            "VolumeSize is a whole number of GiB, 1 or more", location=f"VolumeSize={volume_size}"
        )
    if boot_mode is not None:
        check_boot_mode(boot_mode, "BootMode")
    exported = api.export_image_detailed(image_id, fmt, dest, region, principal(account),
                                         size=None if volume_size is None else volume_size << 30, boot_mode=boot_mode)
    path = exported.path
    result: dict[str, Any] = {"ImageId": image_id, "Format": fmt, "Path": str(path), "Size": path.stat().st_size}
    if path.is_dir():  # an oci layout directory: the bytes of its files
        result["Size"] = sum(file.stat().st_size for file in path.rglob("*") if file.is_file())
    if exported.bootable is not None:
        result["Bootable"] = exported.bootable
        result["VirtualSize"] = exported.virtual_size
    if exported.boot_mode:
        result["BootMode"] = exported.boot_mode
    if exported.note:
        result["Note"] = exported.note
    return result


def deregister_image(
    image_id: str,
    *,
    region: str = DEFAULT_REGION,
    delete_snapshots: bool = False,
    dry_run: bool = False,
    account: str = DEFAULT_ACCOUNT,
) -> dict[str, Any]:
    """EC2 ``DeregisterImage``: the snapshots stay (and keep their bytes) unless ``delete_snapshots``.

    Besides EC2's ``Return`` and ``DeleteSnapshotResults`` (``skipped`` for a snapshot another AMI
    uses), the answer says what the kept snapshots still hold and what deleting them freed.
    """
    result = api.deregister_image(
        image_id, region=region, delete_snapshots=delete_snapshots, dry_run=dry_run, caller=principal(account)
    )
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


def create_tags(
    resource_id: str, tags: Mapping[str, str], *, account: str = DEFAULT_ACCOUNT, region: str | None = None
) -> dict[str, Any]:
    """EC2 ``CreateTags`` on an AMI or a snapshot of ``account`` in ``region`` (None: any): add or overwrite."""
    api.create_tags(resource_id, dict(tags), principal(account), region)
    return {"ResourceId": resource_id, "Tags": dict(tags)}


def delete_tags(
    resource_id: str, keys: list[str] | Mapping[str, str | None], *, account: str = DEFAULT_ACCOUNT,
    region: str | None = None,
) -> dict[str, Any]:
    """EC2 ``DeleteTags`` on an AMI or a snapshot of ``account``: by key, or by key and value (a
    ``None`` value: whatever it is; a value: only if it matches)."""
    api.delete_tags(resource_id, keys if isinstance(keys, list) else dict(keys), principal(account), region)
    return {"ResourceId": resource_id, "Keys": list(keys)}


def enable_image_deprecation(
    image_id: str, deprecate_at: datetime, region: str = DEFAULT_REGION, *, account: str = DEFAULT_ACCOUNT
) -> dict[str, Any]:
    """EC2 ``EnableImageDeprecation``; the answer has the time as stored (rounded to the minute)."""
    api.enable_image_deprecation(image_id, deprecate_at, region, principal(account))
    stored = describe_image(image_id, region, account=account).get("DeprecationTime")
    return {"ImageId": image_id, "DeprecationTime": stored}


def disable_image_deprecation(
    image_id: str, region: str = DEFAULT_REGION, *, account: str = DEFAULT_ACCOUNT
) -> dict[str, Any]:
    api.disable_image_deprecation(image_id, region, principal(account))
    return {"ImageId": image_id, "DeprecationTime": None}


def disable_image(image_id: str, region: str = DEFAULT_REGION, *, account: str = DEFAULT_ACCOUNT) -> dict[str, Any]:
    """EC2 ``DisableImage``: not launchable, every launch permission removed."""
    api.disable_image(image_id, region, principal(account))
    return {"ImageId": image_id, "State": "disabled"}


def enable_image(image_id: str, region: str = DEFAULT_REGION, *, account: str = DEFAULT_ACCOUNT) -> dict[str, Any]:
    """EC2 ``EnableImage``: available again; removed launch permissions are not restored."""
    api.enable_image(image_id, region, principal(account))
    return {"ImageId": image_id, "State": "available"}


def enable_deregistration_protection(
    image_id: str, *, with_cooldown: bool = False, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT
) -> dict[str, Any]:
    state = api.enable_deregistration_protection(image_id, with_cooldown, region, principal(account))
    return {"ImageId": image_id, "DeregistrationProtection": state}


def disable_deregistration_protection(
    image_id: str, region: str = DEFAULT_REGION, *, account: str = DEFAULT_ACCOUNT
) -> dict[str, Any]:
    """With a cooldown, deregistration stays refused for 24 hours."""
    state = api.disable_deregistration_protection(image_id, region, principal(account))
    return {"ImageId": image_id, "DeregistrationProtection": state}


# --- watermarks and ancestry ----------------------------------------------------------------------

ANCESTRY_LIMIT = 50
VERIFIED_PROVIDERS = ("amazon", "aws-marketplace", "aws-backup-vault")


def attach_image_watermark(image_id: str, name: str, region: str = DEFAULT_REGION, *,
                           account: str = DEFAULT_ACCOUNT) -> dict[str, Any]:
    """EC2 ``AttachImageWatermark`` (owner only; see :mod:`kiln.store.watermarks`)."""
    return {"WatermarkKey": api.attach_watermark(image_id, name, region, principal(account))}


def detach_image_watermark(image_id: str, key: str, region: str = DEFAULT_REGION, *,
                           account: str = DEFAULT_ACCOUNT) -> dict[str, Any]:
    """EC2 ``DetachImageWatermark`` (owner only; a key the AMI does not carry is not an error)."""
    api.detach_watermark(image_id, key, region, principal(account))
    return {"Return": True}


def get_image_ancestry(image_id: str, region: str = DEFAULT_REGION, *,
                       account: str = DEFAULT_ACCOUNT) -> dict[str, Any]:
    """EC2 ``GetImageAncestry``: the AMI (which ``account`` must see) first, then each parent it was made
    or copied from, across regions and accounts, to an AMI with no recorded parent, a public AMI of a
    verified provider, or the 50th entry. Ancestors are listed whoever owns them and also when
    deregistered (AWS leaves both unsaid); one whose record is gone ends the chain."""
    info: api.ImageInfo | None = api.get_image(image_id, region, principal(account))
    entries: list[dict[str, Any]] = []
    while info is not None and len(entries) < ANCESTRY_LIMIT:
        entry: dict[str, Any] = {"ImageId": info.id, "CreationDate": info.to_ec2()["CreationDate"]}
        if info.source_image_id:
            entry["SourceImageId"] = info.source_image_id
            entry["SourceImageRegion"] = info.source_region or info.region
        if info.owner_alias:
            entry["ImageOwnerAlias"] = info.owner_alias
        entries.append(entry)
        if not info.source_image_id or (info.public and info.owner_alias in VERIFIED_PROVIDERS):
            break
        info = _recorded(info.source_image_id, info.source_region or info.region)
    return {"ImageAncestryEntries": entries}


def _recorded(image_id: str, region: str) -> api.ImageInfo | None:
    from kiln.errors import NotFound

    try:
        return api.get_image(image_id, region)
    except NotFound:
        return None


# --- attributes and sharing ------------------------------------------------------------------------

def modify_image_attribute(
    image_id: str,
    *,
    attribute: str | None = None,
    operation_type: str | None = None,
    launch_permission: Mapping[str, list[dict[str, str]]] | None = None,
    user_ids: list[str] | None = None,
    user_groups: list[str] | None = None,
    organization_arns: list[str] | None = None,
    organizational_unit_arns: list[str] | None = None,
    description: str | None = None,
    value: str | None = None,
    region: str = DEFAULT_REGION,
    account: str = DEFAULT_ACCOUNT,
) -> dict[str, Any]:
    """EC2 ``ModifyImageAttribute`` (owner only), one attribute per call, in either of EC2's forms:
    structured (``LaunchPermission={"Add": [...], "Remove": [...]}``, ``Description``) or flat
    (``Attribute=launchPermission``, ``OperationType=add|remove`` with ``UserIds``, ``UserGroups``,
    ``OrganizationArns``, ``OrganizationalUnitArns``; ``Attribute=description`` with ``Value``)."""
    if attribute is not None:
        ec2_model.check_enum(attribute, "ImageAttributeName", "Attribute")
    flat = (
        [{"UserId": item} for item in user_ids or []]
        + [{"Group": item} for item in user_groups or []]
        + [{"OrganizationArn": item} for item in organization_arns or []]
        + [{"OrganizationalUnitArn": item} for item in organizational_unit_arns or []]
    )
    if flat or (attribute == "launchPermission" and launch_permission is None):
        if launch_permission is not None or attribute not in (None, "launchPermission"):
            raise InvalidParameterValue("give the launch permission in one form", location="LaunchPermission")
        operation = ec2_model.check_enum(operation_type or "", "OperationType", "OperationType")
        launch_permission = {"Add" if operation == "add" else "Remove": flat}
    if launch_permission is not None:
        return modify_launch_permission(
            image_id,
            add=list(launch_permission.get("Add") or []),
            remove=list(launch_permission.get("Remove") or []),
            region=region,
            account=account,
        )
    if attribute == "description" or description is not None:
        text = description if description is not None else value
        if text is None:
            raise InvalidParameterValue("Description needs a value", location="Description")
        api.set_description(image_id, text, region, principal(account))
        return {"ImageId": image_id, "Description": {"Value": text}}
    raise InvalidParameterValue(
        f"kiln modifies launchPermission and description, not {attribute}", location="Attribute"
    )


def modify_launch_permission(
    image_id: str,
    *,
    add: list[dict[str, str]] | None = None,
    remove: list[dict[str, str]] | None = None,
    region: str = DEFAULT_REGION,
    account: str = DEFAULT_ACCOUNT,
) -> dict[str, Any]:
    """EC2 ``ModifyImageAttribute`` (``launchPermission``); each entry has one of ``UserId``,
    ``Group`` (``all``), ``OrganizationArn``, ``OrganizationalUnitArn`` (full ARNs; an OU grant
    covers the OUs below it). Public sharing is refused while image block public access is on."""
    permissions = api.modify_launch_permission(
        image_id, add=add or [], remove=remove or [], region=region, caller=principal(account)
    )
    return {"ImageId": image_id, "LaunchPermissions": permissions}


def describe_image_attribute(
    image_id: str, attribute: str, region: str = DEFAULT_REGION, *, account: str = DEFAULT_ACCOUNT
) -> dict[str, Any]:
    """EC2 ``DescribeImageAttribute`` (owner only): ``{"ImageId", <the attribute's member>}``, the
    member and its form (a list, or ``{"Value": …}``) as EC2's ``ImageAttribute`` shape has them."""
    ec2_model.check_enum(attribute, "ImageAttributeName", "Attribute")
    info = api.image_attributes(image_id, region, principal(account))
    member, shape = ec2_model.attribute_member("ImageAttribute", attribute)
    if member == "LaunchPermissions":
        found: Any = info.launch_permissions
    else:
        found = info.to_ec2().get(member)
    if shape.type_name == "list":
        return {"ImageId": image_id, member: list(found or [])}
    return {"ImageId": image_id, member: {} if found is None else {"Value": found}}


def reset_image_attribute(
    image_id: str, attribute: str = "launchPermission", region: str = DEFAULT_REGION, *, account: str = DEFAULT_ACCOUNT
) -> dict[str, Any]:
    """EC2 ``ResetImageAttribute``: only ``launchPermission``, and every grant goes."""
    ec2_model.check_enum(attribute, "ResetImageAttributeName", "Attribute")
    api.reset_launch_permission(image_id, region, principal(account))
    return {"ImageId": image_id, "Return": True}


# --- image block public access (per account and region) -------------------------------------------


def get_image_block_public_access_state(
    region: str = DEFAULT_REGION, *, account: str = DEFAULT_ACCOUNT
) -> dict[str, Any]:
    """EC2 ``GetImageBlockPublicAccessState``."""
    return {"ImageBlockPublicAccessState": api.image_block_public_access(region, account), "ManagedBy": "account"}


def enable_image_block_public_access(
    state: str = "block-new-sharing", region: str = DEFAULT_REGION, *, account: str = DEFAULT_ACCOUNT
) -> dict[str, Any]:
    """EC2 ``EnableImageBlockPublicAccess``: new public sharing is refused; AMIs already public stay
    public (as on EC2), and sharing with accounts, organizations and OUs is unaffected."""
    ec2_model.check_enum(state, "ImageBlockPublicAccessEnabledState", "ImageBlockPublicAccessState")
    api.set_image_block_public_access(state, region, account)
    return {"ImageBlockPublicAccessState": state}


def disable_image_block_public_access(
    region: str = DEFAULT_REGION, *, account: str = DEFAULT_ACCOUNT
) -> dict[str, Any]:
    """EC2 ``DisableImageBlockPublicAccess``."""
    (state,) = ec2_model.enum("ImageBlockPublicAccessDisabledState")
    api.set_image_block_public_access(state, region, account)
    return {"ImageBlockPublicAccessState": state}
