"""Who may do what with an AMI or a snapshot of the store: the checks every store call makes for a caller.

A caller is a :class:`kiln.model.sharing.Principal` (built by the services from live organization
membership). Without one — kiln's own work: builds, lifecycle, recovery — nothing is checked.

* ``see``: the owner, or an account allowed to launch it (public, or shared with it). Anything else
  is ``InvalidAMIID.NotFound``, exactly as for an id that does not exist, so existence is not revealed.
* ``launch``: RunInstances. An AMI that exists but is not shared with the caller is ``AuthFailure``
  ("Not authorized for images: [ami-…]"), as EC2 answers.
* ``own``: changes only the owner may make (attributes, sharing, deprecation, disable, protection,
  deregistration). Invisible: NotFound; visible but not the caller's: ``AuthFailure``.
* Reading an AMI's storage (CopyImage, export) of another account also needs each snapshot's
  ``createVolumePermission`` (the caller's id or ``all``), else EC2's ``InvalidRequest``.

Every refusal carries the caller's account and the region.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiln.db.tables.store import StoreImage, StoreLaunchPermission, StoreSnapshot, StoreSnapshotPermission
from kiln.ec2_errors import (
    AuthFailure,
    ImageStorageNotAccessible,
    InvalidAMIIDNotFound,
    InvalidSnapshotNotFound,
    NotAuthorizedForImages,
)
from kiln.model.sharing import PUBLIC, Principal

Need = Literal["see", "launch", "own"]


def launch_permissions(db: Session, image_id: str) -> list[dict[str, str]]:
    return [
        {kind: value}
        for kind, value in db.execute(
            select(StoreLaunchPermission.kind, StoreLaunchPermission.value)
            .where(StoreLaunchPermission.image_id == image_id)
            .order_by(StoreLaunchPermission.kind, StoreLaunchPermission.value)
        )
    ]


def volume_permissions(db: Session, snapshot_id: str) -> list[dict[str, str]]:
    return [
        {kind: value}
        for kind, value in db.execute(
            select(StoreSnapshotPermission.kind, StoreSnapshotPermission.value)
            .where(StoreSnapshotPermission.snapshot_id == snapshot_id)
            .order_by(StoreSnapshotPermission.kind, StoreSnapshotPermission.value)
        )
    ]


def image_for(db: Session, ami_id: str, region: str, caller: Principal | None, need: Need = "see") -> StoreImage:
    """The AMI's row if ``caller`` may do what ``need`` says with it, else EC2's refusal."""
    account = caller.account if caller else None
    not_found = InvalidAMIIDNotFound(
        ami_id, hint=f"`kiln image list --region {region}` shows the AMIs this account may use"
    ).at(account=account, region=region)  # the same words whether it does not exist or is not shared
    row = db.get(StoreImage, ami_id)
    if row is None or row.region != region:
        raise not_found
    if caller is None or row.owner_id == caller.account:
        return row
    allowed = caller.may_launch(row.owner_id, launch_permissions(db, ami_id))
    if allowed and need in ("see", "launch"):
        return row
    if allowed or need == "launch":
        raise NotAuthorizedForImages(ami_id).at(account=account, region=region)
    raise not_found


def may_read_snapshot(db: Session, snapshot: StoreSnapshot, account: str) -> bool:
    if snapshot.owner_id == account:
        return True
    permissions = volume_permissions(db, snapshot.id)
    return {"UserId": account} in permissions or PUBLIC in permissions


def check_storage_readable(db: Session, row: StoreImage, caller: Principal | None) -> None:
    """CopyImage and export of another account's AMI: each snapshot must be readable by the caller."""
    if caller is None or row.owner_id == caller.account or row.snapshot_id is None:
        return
    snapshot = db.get(StoreSnapshot, row.snapshot_id)
    if snapshot is None or not may_read_snapshot(db, snapshot, caller.account):
        raise ImageStorageNotAccessible().at(account=caller.account, region=row.region)


def snapshot_for(
    db: Session, snapshot_id: str, region: str, caller: Principal | None, need: Literal["see", "own"] = "see"
) -> StoreSnapshot:
    """The snapshot's row if ``caller`` may see it (owner, or createVolumePermission) or, for
    ``own``, change it."""
    account = caller.account if caller else None
    row = db.get(StoreSnapshot, snapshot_id)
    if row is None or row.region != region:
        raise InvalidSnapshotNotFound(snapshot_id).at(account=account, region=region)
    if caller is None or row.owner_id == caller.account:
        return row
    if not may_read_snapshot(db, row, caller.account):
        raise InvalidSnapshotNotFound(snapshot_id).at(account=account, region=region)
    if need == "own":
        raise AuthFailure(f"Not authorized for snapshots: [{snapshot_id}]").at(account=account, region=region)
    return row
