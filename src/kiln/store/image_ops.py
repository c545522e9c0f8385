"""Changes to registered AMIs: tags, deprecation, disable/enable, deregistration protection,
launch permissions, last launched time, and deregistration (which leaves snapshots, as on EC2)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from kiln.db.base import utcnow
from kiln.db.engine import session
from kiln.db.tables.store import (
    StoreBlockPublicAccess,
    StoreImage,
    StoreLaunchPermission,
    StoreSnapshot,
    StoreTag,
)
from kiln.ec2_errors import (
    ImageDeregistrationProtected,
    IncorrectState,
    InvalidAMIIDDisabled,
    InvalidAMIIDUnavailable,
    InvalidID,
    OperationNotPermitted,
)
from kiln.errors import InvalidInput, NotFound
from kiln.home import DEFAULT_ACCOUNT
from kiln.model.ids import is_id
from kiln.model.organizations import ORGANIZATION_ARN, OU_ARN
from kiln.store.images import ImageInfo, ec2_time, image_row, to_info
from kiln.store.layout import Layout
from kiln.store.snapshots import delete_blobs, delete_snapshot_in, get_snapshot, snapshot_layers

COOLDOWN = timedelta(hours=24)
MAX_DEPRECATION = timedelta(days=365 * 10)
PERMISSION_KINDS = ("UserId", "Group", "OrganizationArn", "OrganizationalUnitArn")


@dataclass
class DeregisterResult:
    ami_id: str
    snapshot_ids: list[str]
    snapshot_bytes: int
    deleted_snapshots: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    dry_run: bool = False


def _region_of(resource_id: str) -> str | None:
    with session() as db:
        table = StoreImage if resource_id.startswith("ami-") else StoreSnapshot
        row = db.get(table, resource_id)
        return row.region if row is not None else None


def create_tags(resource_id: str, tags: dict[str, str]) -> None:
    if not (is_id(resource_id, "ami") or is_id(resource_id, "snap")) or _region_of(resource_id) is None:
        raise InvalidID(resource_id)
    for key in tags:
        if not key or len(key) > 128 or key.lower().startswith("aws:"):
            raise InvalidInput("tag keys are 1-128 characters and may not start with 'aws:'", location=key)
    with session() as db:
        for key, value in tags.items():
            row = db.get(StoreTag, (resource_id, key))
            if row is None:
                db.add(StoreTag(resource_id=resource_id, key=key, value=value))
            else:
                row.value = value


def delete_tags(resource_id: str, keys: list[str] | dict[str, str | None]) -> None:
    """EC2 DeleteTags: a key alone deletes it; a key with a value deletes it only if the value matches."""
    pairs = keys.items() if isinstance(keys, dict) else ((k, None) for k in keys)
    with session() as db:
        for key, value in pairs:
            row = db.get(StoreTag, (resource_id, key))
            if row is not None and (value is None or row.value == value):
                db.delete(row)


def set_last_launched(ami_id: str, when: datetime, region: str = "local") -> None:
    with session() as db:
        image_row(db, ami_id, region).last_launched_time = when


def assert_launchable(ami_id: str, region: str = "local") -> ImageInfo:
    """The image if it may be launched; deprecated images may, disabled/deregistered/failed may not."""
    with session() as db:
        info = to_info(db, image_row(db, ami_id, region))
    if info.state == "disabled":
        raise InvalidAMIIDDisabled(
            f"The image {ami_id} is disabled",
            hint=f"`kiln image enable {ami_id}` re-enables it",
        )
    if info.state == "deregistered":
        raise InvalidAMIIDUnavailable(f"The image {ami_id} is deregistered")
    if info.state != "available":
        raise InvalidAMIIDUnavailable(f"The image {ami_id} is {info.state}")
    blobs = Layout.for_region(region).blobs
    with session() as db:
        for layer in snapshot_layers(db, info.snapshot_ids[0]) if info.snapshot_ids else []:
            blobs.path(layer.digest)  # raises for a quarantined or missing blob
    return info


def enable_image_deprecation(ami_id: str, when: datetime, region: str = "local") -> None:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when - utcnow() > MAX_DEPRECATION:
        raise InvalidInput("DeprecateAt may be at most 10 years in the future", location=when.isoformat())
    with session() as db:
        image_row(db, ami_id, region).deprecation_time = when.replace(second=0, microsecond=0)


def disable_image_deprecation(ami_id: str, region: str = "local") -> None:
    with session() as db:
        image_row(db, ami_id, region).deprecation_time = None


def disable_image(ami_id: str, region: str = "local") -> None:
    """EC2 DisableImage: the AMI stops being launchable and its sharing is removed."""
    with session() as db:
        row = image_row(db, ami_id, region)
        if row.state not in ("available", "disabled"):
            raise IncorrectState(f"The image {ami_id} is {row.state}")
        row.state = "disabled"
        db.execute(delete(StoreLaunchPermission).where(StoreLaunchPermission.image_id == ami_id))


def enable_image(ami_id: str, region: str = "local") -> None:
    with session() as db:
        row = image_row(db, ami_id, region)
        if row.state not in ("available", "disabled"):
            raise IncorrectState(f"The image {ami_id} is {row.state}")
        row.state = "available"


def enable_deregistration_protection(ami_id: str, with_cooldown: bool = False, region: str = "local") -> str:
    with session() as db:
        row = image_row(db, ami_id, region)
        row.protection, row.protection_cooldown, row.protection_until = True, with_cooldown, None
        return "enabled-with-cooldown" if with_cooldown else "enabled"


def disable_deregistration_protection(ami_id: str, region: str = "local") -> str:
    """With cooldown, deregistration stays blocked for 24 hours after protection is disabled."""
    with session() as db:
        row = image_row(db, ami_id, region)
        if row.protection and row.protection_cooldown:
            row.protection_until = utcnow() + COOLDOWN
        row.protection, row.protection_cooldown = False, False
        if row.protection_until and row.protection_until > utcnow():
            return f"disabled-until {ec2_time(row.protection_until)}"
        return "disabled"


def set_image_block_public_access(state: str, region: str = "local", account: str = DEFAULT_ACCOUNT) -> None:
    """``block-new-sharing`` or ``unblocked`` (EC2 Enable/DisableImageBlockPublicAccess)."""
    if state not in ("block-new-sharing", "unblocked"):
        raise InvalidInput("state must be block-new-sharing or unblocked", location=state)
    with session() as db:
        row = db.get(StoreBlockPublicAccess, (account, region))
        if row is None:
            db.add(StoreBlockPublicAccess(account_id=account, region=region, state=state))
        else:
            row.state = state


def image_block_public_access(region: str = "local", account: str = DEFAULT_ACCOUNT) -> str:
    with session() as db:
        row = db.get(StoreBlockPublicAccess, (account, region))
        return row.state if row else "unblocked"


def _check_permission(entry: dict[str, str]) -> tuple[str, str]:
    if len(entry) != 1:
        raise InvalidInput(
            "a launch permission has exactly one of " + ", ".join(PERMISSION_KINDS), location=str(entry)
        )
    ((kind, value),) = entry.items()
    valid = {
        "UserId": lambda v: bool(re.fullmatch(r"\d{12}", v)),
        "Group": lambda v: v == "all",
        "OrganizationArn": lambda v: bool(ORGANIZATION_ARN.match(v)),
        "OrganizationalUnitArn": lambda v: bool(OU_ARN.match(v)),
    }
    if kind not in valid or not valid[kind](value):
        raise InvalidInput(f"invalid launch permission {kind}={value!r}", location=kind)
    return kind, value


def modify_launch_permission(
    ami_id: str,
    add: list[dict[str, str]] | None = None,
    remove: list[dict[str, str]] | None = None,
    region: str = "local",
) -> list[dict[str, str]]:
    adds = [_check_permission(e) for e in add or []]
    removes = [_check_permission(e) for e in remove or []]
    with session() as db:
        row = image_row(db, ami_id, region)
        if row.state != "available":
            raise IncorrectState(f"The image {ami_id} is {row.state}; it cannot be shared")
        if ("Group", "all") in adds:
            bpa = db.get(StoreBlockPublicAccess, (row.owner_id, region))
            if bpa is not None and bpa.state == "block-new-sharing":
                raise OperationNotPermitted(
                    "Image block public access is enabled for this account and region; the image cannot be "
                    "made public",
                    hint="disable image block public access first",
                )
        for kind, value in removes:
            db.execute(
                delete(StoreLaunchPermission).where(
                    StoreLaunchPermission.image_id == ami_id,
                    StoreLaunchPermission.kind == kind,
                    StoreLaunchPermission.value == value,
                )
            )
        for kind, value in adds:
            if db.get(StoreLaunchPermission, (ami_id, kind, value)) is None:
                db.add(StoreLaunchPermission(image_id=ami_id, kind=kind, value=value))
        db.flush()
        return to_info(db, row).launch_permissions


def deregister_image(
    ami_id: str, *, region: str = "local", delete_snapshots: bool = False, dry_run: bool = False
) -> DeregisterResult:
    """EC2 DeregisterImage: snapshots stay (and keep their bytes) unless ``delete_snapshots``."""
    layout = Layout.for_region(region)
    doomed: list[str] = []
    with session() as db:
        row = image_row(db, ami_id, region)
        if row.state == "deregistered":
            raise InvalidAMIIDUnavailable(f"The image {ami_id} is already deregistered")
        if row.protection or (row.protection_until is not None and row.protection_until > utcnow()):
            raise ImageDeregistrationProtected(
                f"The image {ami_id} has deregistration protection "
                f"({to_info(db, row).deregistration_protection})",
                hint=f"`kiln image protect {ami_id} --disable` (a cooldown keeps it blocked for 24 h)",
            )
        snapshot_ids = [row.snapshot_id] if row.snapshot_id else []
        manifest = row.manifest_digest
        result = DeregisterResult(ami_id, snapshot_ids, 0, dry_run=dry_run)
        if not dry_run:
            row.state = "deregistered"
            row.deregistered_at = utcnow()
            db.execute(delete(StoreLaunchPermission).where(StoreLaunchPermission.image_id == ami_id))
        if delete_snapshots:
            for snap_id in snapshot_ids:
                others = db.execute(
                    select(StoreImage.id).where(
                        StoreImage.snapshot_id == snap_id,
                        StoreImage.state != "deregistered",
                        StoreImage.id != ami_id,
                    )
                ).first()
                if others:
                    continue  # EC2 reports "skipped": another AMI still uses it
                db.flush()
                freed, blobs = delete_snapshot_in(db, region, snap_id, dry_run=dry_run, ignoring=ami_id)
                result.deleted_snapshots.append(snap_id)
                result.freed_bytes += freed
                doomed += blobs
    if not dry_run:
        layout.remove_ref(ami_id)
        delete_blobs(layout, doomed)
        if manifest:
            _drop_manifest(layout, manifest)
    for snap_id in snapshot_ids:
        if snap_id not in result.deleted_snapshots:
            result.snapshot_bytes += get_snapshot(snap_id, region).unique_bytes
    return result


def _drop_manifest(layout: Layout, manifest: str) -> None:
    """The manifest and config belong to the AMI alone; layers belong to the snapshot."""
    try:
        config = layout.read_json_blob(manifest)["config"]["digest"]
    except (NotFound, KeyError, ValueError):
        config = None
    layout.blobs.delete(manifest)
    if config:
        layout.blobs.delete(config)
