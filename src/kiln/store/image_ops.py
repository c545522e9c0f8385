"""Changes to registered AMIs: tags, deprecation, disable/enable, deregistration protection,
launch permissions, last launched time, and deregistration (which leaves snapshots, as on EC2)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kiln.db.base import utcnow
from kiln.db.engine import session
from kiln.db.tables.store import (
    StoreBlockPublicAccess,
    StoreImage,
    StoreLaunchPermission,
    StoreSnapshot,
    StoreSnapshotPermission,
    StoreTag,
)
from kiln.ec2_errors import (
    ImageDeregistrationProtected,
    IncorrectState,
    InvalidAMIAttributeItemValue,
    InvalidAMIIDDisabled,
    InvalidAMIIDUnavailable,
    InvalidID,
    InvalidParameterValue,
    OperationNotPermitted,
)
from kiln.errors import InvalidInput, NotFound
from kiln.home import DEFAULT_ACCOUNT
from kiln.model.ec2_model import enum
from kiln.model.ids import is_id
from kiln.model.organizations import ACCOUNT_ID, ORGANIZATION_ARN, OU_ARN
from kiln.model.sharing import Principal
from kiln.store.access import image_for, snapshot_for, volume_permissions
from kiln.store.images import ImageInfo, ec2_time, no_extras, to_info
from kiln.store.layout import Layout
from kiln.store.referrers import delete_unshared, detach_all
from kiln.store.snapshots import delete_blobs, delete_snapshot_in, get_snapshot, snapshot_layers
from kiln.store.watermarks import is_marked

COOLDOWN = timedelta(hours=24)
MAX_DEPRECATION = timedelta(days=365 * 10)
PERMISSION_KINDS = ("UserId", "Group", "OrganizationArn", "OrganizationalUnitArn")
BLOCKED = "block-new-sharing"


def block_public_access_states() -> tuple[str, ...]:
    """``block-new-sharing`` and ``unblocked``, from EC2's model."""
    return enum("ImageBlockPublicAccessEnabledState") + enum("ImageBlockPublicAccessDisabledState")


@dataclass
class DeregisterResult:
    ami_id: str
    snapshot_ids: list[str]
    snapshot_bytes: int
    deleted_snapshots: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    dry_run: bool = False


def _context(caller: Principal | None, region: str) -> dict[str, str | None]:
    """Whom a refusal refused, and where (``Ec2Error.at``)."""
    return {"account": caller.account if caller else None, "region": region}


def _owned_resource(db: Session, resource_id: str, caller: Principal | None, region: str | None = None) -> None:
    """An AMI or snapshot the caller owns in ``region`` (None: any) (CreateTags, DeleteTags); an id it
    cannot see, or one in another region, is InvalidID."""
    table = StoreImage if resource_id.startswith("ami-") else StoreSnapshot
    row = db.get(table, resource_id) if is_id(resource_id, "ami") or is_id(resource_id, "snap") else None
    account = caller.account if caller else None
    if row is None or (region is not None and row.region != region):
        raise InvalidID(resource_id).at(account=account, region=region)
    try:
        if table is StoreImage:
            image_for(db, resource_id, row.region, caller, "own")
        else:
            snapshot_for(db, resource_id, row.region, caller, "own")
    except NotFound:
        raise InvalidID(resource_id).at(account=account, region=row.region) from None


def create_tags(
    resource_id: str, tags: dict[str, str], caller: Principal | None = None, region: str | None = None
) -> None:
    for key in tags:
        if not key or len(key) > 128 or key.lower().startswith("aws:"):
            raise InvalidInput("tag keys are 1-128 characters and may not start with 'aws:'", location=key)
    with session() as db:
        _owned_resource(db, resource_id, caller, region)
        for key, value in tags.items():
            row = db.get(StoreTag, (resource_id, key))
            if row is None:
                db.add(StoreTag(resource_id=resource_id, key=key, value=value))
            else:
                row.value = value


def delete_tags(
    resource_id: str, keys: list[str] | dict[str, str | None], caller: Principal | None = None,
    region: str | None = None,
) -> None:
    """EC2 DeleteTags: a key alone deletes it; a key with a value deletes it only if the value matches."""
    pairs = keys.items() if isinstance(keys, dict) else ((k, None) for k in keys)
    with session() as db:
        if caller is not None or region is not None:
            _owned_resource(db, resource_id, caller, region)
        for key, value in pairs:
            row = db.get(StoreTag, (resource_id, key))
            if row is not None and (value is None or row.value == value):
                db.delete(row)


def set_last_launched(ami_id: str, when: datetime, region: str = "local") -> None:
    with session() as db:
        image_for(db, ami_id, region, None).last_launched_time = when


def assert_launchable(ami_id: str, region: str = "local", caller: Principal | None = None) -> ImageInfo:
    """The image if ``caller`` may launch it (owner, public or shared: else AuthFailure) and its
    state allows it: deprecated images may be launched, disabled/deregistered/failed may not."""
    return launchable_layers(ami_id, region, caller)[0]


def launchable_layers(
    ami_id: str, region: str = "local", caller: Principal | None = None, *, described: bool = True
) -> tuple[ImageInfo, list[str]]:
    """:func:`assert_launchable`'s image, and the digests of its root snapshot's layers (base first),
    each blob checked present and not quarantined. Not ``described``: the image without what only
    describing or judging it needs (tags, launch permissions, watermarks, scan results, the owner's
    alias: four queries less), for a launch that does neither."""
    with session() as db:
        row = image_for(db, ami_id, region, caller, "launch")
        info = to_info(db, row) if described else to_info(db, row, aliases={}, preloaded=no_extras())
    context = _context(caller, region)
    if info.state == "disabled":
        raise InvalidAMIIDDisabled(
            f"The image {ami_id} is disabled",
            hint=f"`kiln image enable {ami_id}` re-enables it",
        ).at(**context)
    if info.state == "deregistered":
        raise InvalidAMIIDUnavailable(f"The image {ami_id} is deregistered").at(**context)
    if info.state != "available":
        raise InvalidAMIIDUnavailable(f"The image {ami_id} is {info.state}").at(**context)
    blobs = Layout.for_region(region).blobs
    with session() as db:
        digests = [layer.digest for layer in snapshot_layers(db, info.snapshot_ids[0])] if info.snapshot_ids else []
    for digest in digests:
        blobs.path(digest)  # raises for a quarantined or missing blob
    return info, digests


def enable_image_deprecation(
    ami_id: str, when: datetime, region: str = "local", caller: Principal | None = None
) -> None:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when - utcnow() > MAX_DEPRECATION:
        raise InvalidInput("DeprecateAt may be at most 10 years in the future", location=when.isoformat())
    with session() as db:
        image_for(db, ami_id, region, caller, "own").deprecation_time = when.replace(second=0, microsecond=0)


def disable_image_deprecation(ami_id: str, region: str = "local", caller: Principal | None = None) -> None:
    with session() as db:
        image_for(db, ami_id, region, caller, "own").deprecation_time = None


def disable_image(ami_id: str, region: str = "local", caller: Principal | None = None) -> None:
    """EC2 DisableImage: the AMI stops being launchable and its sharing is removed."""
    with session() as db:
        row = image_for(db, ami_id, region, caller, "own")
        if row.state not in ("available", "disabled"):
            raise IncorrectState(f"The image {ami_id} is {row.state}").at(**_context(caller, region))
        row.state = "disabled"
        db.execute(delete(StoreLaunchPermission).where(StoreLaunchPermission.image_id == ami_id))


def enable_image(ami_id: str, region: str = "local", caller: Principal | None = None) -> None:
    with session() as db:
        row = image_for(db, ami_id, region, caller, "own")
        if row.state not in ("available", "disabled"):
            raise IncorrectState(f"The image {ami_id} is {row.state}").at(**_context(caller, region))
        row.state = "available"


def enable_deregistration_protection(
    ami_id: str, with_cooldown: bool = False, region: str = "local", caller: Principal | None = None
) -> str:
    with session() as db:
        row = image_for(db, ami_id, region, caller, "own")
        row.protection, row.protection_cooldown, row.protection_until = True, with_cooldown, None
        return "enabled-with-cooldown" if with_cooldown else "enabled"


def disable_deregistration_protection(ami_id: str, region: str = "local", caller: Principal | None = None) -> str:
    """With cooldown, deregistration stays blocked for 24 hours after protection is disabled."""
    with session() as db:
        row = image_for(db, ami_id, region, caller, "own")
        if row.protection and row.protection_cooldown:
            row.protection_until = utcnow() + COOLDOWN
        row.protection, row.protection_cooldown = False, False
        if row.protection_until and row.protection_until > utcnow():
            return f"disabled-until {ec2_time(row.protection_until)}"
        return "disabled"


def set_image_block_public_access(state: str, region: str = "local", account: str = DEFAULT_ACCOUNT) -> None:
    """``block-new-sharing`` or ``unblocked`` (EC2 Enable/DisableImageBlockPublicAccess)."""
    if state not in block_public_access_states():
        raise InvalidParameterValue("state must be block-new-sharing or unblocked", location=state)
    with session() as db:
        row = db.get(StoreBlockPublicAccess, (account, region))
        if row is None:
            db.add(StoreBlockPublicAccess(account_id=account, region=region, state=state))
        else:
            row.state = state


def _block_public_access(db: Session, region: str, account: str) -> str:
    row = db.get(StoreBlockPublicAccess, (account, region))
    return row.state if row else default_block_public_access()


def default_block_public_access() -> str:
    """The state of an account and region never set: ``KILN_IMAGE_BLOCK_PUBLIC_ACCESS_DEFAULT``
    (``unblocked`` unless set; AWS's default for new accounts is not confirmed)."""
    state = os.environ.get("KILN_IMAGE_BLOCK_PUBLIC_ACCESS_DEFAULT")
    if not state:
        return "unblocked"
    if state not in block_public_access_states():
        raise InvalidInput(
            f"must be one of {', '.join(block_public_access_states())}",
            location="KILN_IMAGE_BLOCK_PUBLIC_ACCESS_DEFAULT",
        )
    return state


def image_block_public_access(region: str = "local", account: str = DEFAULT_ACCOUNT) -> str:
    with session() as db:
        return _block_public_access(db, region, account)


def _check_permission(entry: dict[str, str], kinds: tuple[str, ...] = PERMISSION_KINDS) -> tuple[str, str]:
    """One launch (or create-volume) permission entry: exactly one of ``kinds``, with a valid value."""
    if len(entry) != 1 or next(iter(entry)) not in kinds:
        raise InvalidParameterValue(
            f"a permission has exactly one of {', '.join(kinds)}", location=str(entry)
        )
    ((kind, value),) = entry.items()
    if kind == "UserId" and not ACCOUNT_ID.fullmatch(value):
        raise InvalidAMIAttributeItemValue(
            f'Invalid attribute item value "{value}" for userId item type.', location=kind
        )
    if kind == "Group" and value != "all":
        raise InvalidAMIAttributeItemValue(
            f'Invalid attribute item value "{value}" for group item type.', location=kind
        )
    pattern = {"OrganizationArn": ORGANIZATION_ARN, "OrganizationalUnitArn": OU_ARN}.get(kind)
    if pattern is not None and not pattern.match(value):
        raise InvalidParameterValue(
            f"{kind} {value!r} is not a full {kind.removesuffix('Arn')} ARN",
            location=kind,
            hint="arn:aws:organizations::<management account>:organization/o-… or …:ou/o-…/ou-…",
        )
    return kind, value


def modify_launch_permission(
    ami_id: str,
    add: list[dict[str, str]] | None = None,
    remove: list[dict[str, str]] | None = None,
    region: str = "local",
    caller: Principal | None = None,
) -> list[dict[str, str]]:
    """EC2 ModifyImageAttribute ``launchPermission`` (owner only). The owner's own id is never a
    grant (it always may launch). Public sharing is refused while the owner's image block public
    access is on; grants to accounts, organizations and OUs are not affected by it."""
    adds = [_check_permission(e) for e in add or []]
    removes = [_check_permission(e) for e in remove or []]
    with session() as db:
        row = image_for(db, ami_id, region, caller, "own")
        if row.state != "available":
            raise IncorrectState(f"The image {ami_id} is {row.state}; it cannot be shared").at(
                **_context(caller, region)
            )
        if ("Group", "all") in adds and _block_public_access(db, region, row.owner_id) == BLOCKED:
            raise OperationNotPermitted(
                "You can't publicly share this image because block public access for AMIs is enabled for "
                "this account. To publicly share the image, you must call the DisableImageBlockPublicAccess API.",
                hint="`kiln image block-public-access disable` (existing public images stay public meanwhile)",
            ).at(account=row.owner_id, region=region)
        if ("Group", "all") in adds and is_marked(db, ami_id):
            raise InvalidParameterValue(f"{ami_id} carries a watermark; a watermarked AMI cannot be made public",
                                        location="LaunchPermission.Add",
                                        hint=f"detach its watermarks first: kiln image watermark detach {ami_id} KEY")
        adds = [(kind, value) for kind, value in adds if (kind, value) != ("UserId", row.owner_id)]
        _apply(db, StoreLaunchPermission, "image_id", ami_id, adds, removes)
        return to_info(db, row).launch_permissions


def _apply(
    db: Session,
    table: type[StoreLaunchPermission] | type[StoreSnapshotPermission],
    key: str,
    resource_id: str,
    adds: list[tuple[str, str]],
    removes: list[tuple[str, str]],
) -> None:
    """Removals, then additions (an entry already there stays once)."""
    for kind, value in removes:
        db.execute(
            delete(table).where(getattr(table, key) == resource_id, table.kind == kind, table.value == value)
        )
    db.flush()
    for kind, value in adds:
        if db.get(table, (resource_id, kind, value)) is None:
            db.add(table(**{key: resource_id, "kind": kind, "value": value}))
    db.flush()


def set_description(ami_id: str, description: str, region: str = "local", caller: Principal | None = None) -> None:
    """EC2 ModifyImageAttribute ``description`` (owner only; at most 255 characters)."""
    if len(description) > 255:
        raise InvalidParameterValue("a description is at most 255 characters", location="Description")
    with session() as db:
        image_for(db, ami_id, region, caller, "own").description = description


def reset_launch_permission(ami_id: str, region: str = "local", caller: Principal | None = None) -> None:
    """EC2 ResetImageAttribute ``launchPermission``: every grant goes (public included)."""
    with session() as db:
        image_for(db, ami_id, region, caller, "own")
        db.execute(delete(StoreLaunchPermission).where(StoreLaunchPermission.image_id == ami_id))


def image_attributes(ami_id: str, region: str = "local", caller: Principal | None = None) -> ImageInfo:
    """The AMI with its launch permissions, for DescribeImageAttribute (owner only)."""
    with session() as db:
        return to_info(db, image_for(db, ami_id, region, caller, "own"))


def modify_create_volume_permission(
    snapshot_id: str,
    add: list[dict[str, str]] | None = None,
    remove: list[dict[str, str]] | None = None,
    region: str = "local",
    caller: Principal | None = None,
) -> list[dict[str, str]]:
    """EC2 ModifySnapshotAttribute ``createVolumePermission`` (owner only): ``UserId`` or ``Group:
    all``, no organizations. Needed by another account to copy (or export) an AMI of this snapshot,
    not to launch it."""
    kinds = ("UserId", "Group")
    adds = [_check_permission(e, kinds) for e in add or []]
    removes = [_check_permission(e, kinds) for e in remove or []]
    with session() as db:
        row = snapshot_for(db, snapshot_id, region, caller, "own")
        adds = [(kind, value) for kind, value in adds if (kind, value) != ("UserId", row.owner_id)]
        _apply(db, StoreSnapshotPermission, "snapshot_id", snapshot_id, adds, removes)
        return volume_permissions(db, snapshot_id)


def create_volume_permissions(
    snapshot_id: str, region: str = "local", caller: Principal | None = None, *, reset: bool = False
) -> list[dict[str, str]]:
    """DescribeSnapshotAttribute ``createVolumePermission`` (owner only); ``reset``: drop them all
    first (ResetSnapshotAttribute)."""
    with session() as db:
        snapshot_for(db, snapshot_id, region, caller, "own")
        if reset:
            db.execute(delete(StoreSnapshotPermission).where(StoreSnapshotPermission.snapshot_id == snapshot_id))
        return volume_permissions(db, snapshot_id)


def deregister_image(
    ami_id: str,
    *,
    region: str = "local",
    delete_snapshots: bool = False,
    dry_run: bool = False,
    caller: Principal | None = None,
) -> DeregisterResult:
    """EC2 DeregisterImage: snapshots stay (and keep their bytes) unless ``delete_snapshots``."""
    layout = Layout.for_region(region)
    doomed: list[str] = []
    with session() as db:
        row = image_for(db, ami_id, region, caller, "own")
        if row.state == "deregistered":
            raise InvalidAMIIDUnavailable(f"The image {ami_id} is already deregistered").at(
                **_context(caller, region)
            )
        if row.protection or (row.protection_until is not None and row.protection_until > utcnow()):
            raise ImageDeregistrationProtected(
                f"The image {ami_id} has deregistration protection "
                f"({to_info(db, row).deregistration_protection})",
                hint=f"`kiln image protect {ami_id} --disable` (a cooldown keeps it blocked for 24 h)",
            ).at(**_context(caller, region))
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
            delete_unshared(layout, detach_all(layout, manifest))  # its SBOMs go with it
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
