"""EC2 snapshots for every front end: the layers behind root volumes, the bytes they hold, and who may
read them (``createVolumePermission``: what another account needs to copy or export an AMI, not to
launch it)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from kiln.ec2_errors import InvalidParameterValue
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.model import ec2_model
from kiln.services.ec2.callers import principal
from kiln.store import api


def describe_snapshots(
    *, region: str = DEFAULT_REGION, orphaned: bool = False, account: str = DEFAULT_ACCOUNT
) -> dict[str, Any]:
    """EC2 ``DescribeSnapshots`` for ``account`` (its own and those it may create volumes from) with
    each snapshot's unique bytes (what deleting it frees); ``orphaned``: only those no registered AMI
    uses."""
    found = api.list_snapshots(region, orphaned=orphaned, caller=principal(account))
    return {"Snapshots": [snapshot.to_ec2() for snapshot in found]}


def delete_snapshot(
    snapshot_id: str, *, region: str = DEFAULT_REGION, dry_run: bool = False, account: str = DEFAULT_ACCOUNT
) -> dict[str, Any]:
    """EC2 ``DeleteSnapshot`` (owner only): refused (``InvalidSnapshot.InUse``) while a registered
    AMI uses it."""
    freed = api.delete_snapshot(snapshot_id, region=region, dry_run=dry_run, caller=principal(account))
    return {"SnapshotId": snapshot_id, "DryRun": dry_run, "FreedBytes": freed}


def delete_orphaned_snapshots(
    *,
    region: str = DEFAULT_REGION,
    older_than: timedelta | None = None,
    dry_run: bool = False,
    account: str = DEFAULT_ACCOUNT,
) -> dict[str, Any]:
    """Every snapshot of ``account`` no registered AMI uses (created more than ``older_than`` ago),
    with the bytes each deletion freed in turn and the total."""
    deleted, total = api.delete_orphaned_snapshots(
        region=region, older_than=older_than, dry_run=dry_run, owner=account
    )
    return {
        "Snapshots": [{"SnapshotId": snapshot_id, "FreedBytes": freed} for snapshot_id, freed in deleted],
        "DryRun": dry_run,
        "FreedBytes": total,
    }


_FLAT_PERMISSIONS = (("UserIds", "UserId"), ("GroupNames", "Group"))


def modify_snapshot_attribute(
    snapshot_id: str,
    *,
    attribute: str | None = None,
    operation_type: str | None = None,
    create_volume_permission: Mapping[str, list[dict[str, str]]] | None = None,
    user_ids: list[str] | None = None,
    group_names: list[str] | None = None,
    region: str = DEFAULT_REGION,
    account: str = DEFAULT_ACCOUNT,
) -> dict[str, Any]:
    """EC2 ``ModifySnapshotAttribute`` (owner only), ``createVolumePermission`` in either form:
    structured (``CreateVolumePermission={"Add": [{"UserId"|"Group"}], "Remove": [...]}``) or flat
    (``OperationType=add|remove`` with ``UserIds`` / ``GroupNames``). There is no organization form."""
    if attribute is not None:
        ec2_model.check_enum(attribute, "SnapshotAttributeName", "Attribute")
        if attribute != "createVolumePermission":
            raise InvalidParameterValue(f"kiln snapshots have no {attribute}", location="Attribute")
    flat = [{"UserId": user} for user in user_ids or []] + [{"Group": group} for group in group_names or []]
    if flat:
        if create_volume_permission is not None:
            raise InvalidParameterValue("give the permission in one form", location="CreateVolumePermission")
        operation = ec2_model.check_enum(operation_type or "", "OperationType", "OperationType")
        create_volume_permission = {"Add" if operation == "add" else "Remove": flat}
    change = create_volume_permission or {}
    permissions = api.modify_create_volume_permission(
        snapshot_id,
        add=list(change.get("Add") or []),
        remove=list(change.get("Remove") or []),
        region=region,
        caller=principal(account),
    )
    return {"SnapshotId": snapshot_id, "CreateVolumePermissions": permissions}


def describe_snapshot_attribute(
    snapshot_id: str,
    attribute: str = "createVolumePermission",
    region: str = DEFAULT_REGION,
    *,
    account: str = DEFAULT_ACCOUNT,
) -> dict[str, Any]:
    """EC2 ``DescribeSnapshotAttribute`` (owner only), in its result shape (``CreateVolumePermissions``
    or ``ProductCodes``, which kiln snapshots never have)."""
    ec2_model.check_enum(attribute, "SnapshotAttributeName", "Attribute")
    permissions = api.create_volume_permissions(snapshot_id, region, principal(account))
    member, _ = ec2_model.attribute_member("DescribeSnapshotAttributeResult", attribute)
    return {"SnapshotId": snapshot_id, member: permissions if member == "CreateVolumePermissions" else []}


def reset_snapshot_attribute(
    snapshot_id: str,
    attribute: str = "createVolumePermission",
    region: str = DEFAULT_REGION,
    *,
    account: str = DEFAULT_ACCOUNT,
) -> dict[str, Any]:
    """EC2 ``ResetSnapshotAttribute`` (owner only): every create-volume permission goes."""
    ec2_model.check_enum(attribute, "SnapshotAttributeName", "Attribute")
    api.create_volume_permissions(snapshot_id, region, principal(account), reset=True)
    return {"SnapshotId": snapshot_id, "Return": True}
