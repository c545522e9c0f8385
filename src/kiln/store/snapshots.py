"""Snapshots: ordered layer lists (base first), incremental like EBS, with unique-bytes accounting."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from kiln.db.base import utcnow
from kiln.db.engine import session
from kiln.db.tables.store import (
    StoreImage,
    StoreLayer,
    StoreSnapshot,
    StoreSnapshotLayer,
    StoreSnapshotPermission,
    StoreTag,
)
from kiln.ec2_errors import InvalidSnapshotInUse, InvalidSnapshotNotFound
from kiln.home import DEFAULT_ACCOUNT
from kiln.model.ids import new_id
from kiln.model.sharing import Principal, visible_tags
from kiln.store.access import snapshot_for
from kiln.store.layers import LayerInfo
from kiln.store.layout import Layout
from kiln.store.pins import pinned_digests


@dataclass
class SnapshotInfo:
    id: str
    region: str
    size: int
    unique_bytes: int
    layers: list[str]
    image_ids: list[str]
    orphaned: bool
    created: datetime
    parent_id: str | None = None
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    owner_id: str = DEFAULT_ACCOUNT

    def seen_by(self, account: str | None) -> SnapshotInfo:
        """Another account sees only the ``ec2:SharedTag/`` tags."""
        return replace(self, tags=visible_tags(self.tags, self.owner_id, account))

    def to_ec2(self) -> dict[str, object]:
        """EC2 ``Snapshot`` field names, plus kiln's byte accounting."""
        return {
            "SnapshotId": self.id,
            "OwnerId": self.owner_id,
            "State": "completed",
            "StartTime": self.created,
            "Progress": "100%",
            "VolumeSize": max(1, -(-self.size // (1 << 30))),
            "FullSnapshotSizeInBytes": self.size,
            "UniqueBytes": self.unique_bytes,
            "Description": self.description,
            "Encrypted": False,
            "StorageTier": "standard",
            "Tags": [{"Key": k, "Value": v} for k, v in sorted(self.tags.items())],
            "ImageIds": self.image_ids,
            "Orphaned": self.orphaned,
            "Layers": self.layers,
        }


def record_layers(db: Session, region: str, layers: list[LayerInfo]) -> None:
    for layer in layers:
        if db.get(StoreLayer, (region, layer.digest)) is None:
            db.add(
                StoreLayer(
                    region=region,
                    digest=layer.digest,
                    media_type=layer.media_type,
                    size=layer.size,
                    diff_id=layer.diff_id,
                    created_at=utcnow(),
                )
            )


def create_snapshot(
    db: Session,
    region: str,
    digests: list[str],
    *,
    parent_id: str | None = None,
    description: str = "",
    owner: str = DEFAULT_ACCOUNT,
) -> str:
    snap_id = new_id("snap")
    db.add(
        StoreSnapshot(
            id=snap_id,
            region=region,
            owner_id=owner,
            parent_id=parent_id,
            description=description,
            created_at=utcnow(),
        )
    )
    db.flush()
    for position, digest in enumerate(digests):
        db.add(StoreSnapshotLayer(snapshot_id=snap_id, position=position, digest=digest))
    return snap_id


def snapshot_layers(db: Session, snapshot_id: str) -> list[StoreLayer]:
    snap = db.get(StoreSnapshot, snapshot_id)
    if snap is None:
        raise InvalidSnapshotNotFound(snapshot_id)
    rows = db.execute(
        select(StoreLayer)
        .join(StoreSnapshotLayer, StoreSnapshotLayer.digest == StoreLayer.digest)
        .where(StoreSnapshotLayer.snapshot_id == snapshot_id, StoreLayer.region == snap.region)
        .order_by(StoreSnapshotLayer.position)
    ).scalars()
    return list(rows)


def _references(db: Session, region: str) -> dict[str, set[str]]:
    """digest -> ids of the snapshots (in ``region``) referencing it."""
    refs: dict[str, set[str]] = {}
    rows = db.execute(
        select(StoreSnapshotLayer.digest, StoreSnapshotLayer.snapshot_id)
        .join(StoreSnapshot, StoreSnapshot.id == StoreSnapshotLayer.snapshot_id)
        .where(StoreSnapshot.region == region)
    )
    for digest, snap_id in rows:
        refs.setdefault(digest, set()).add(snap_id)
    return refs


def referenced_digests(db: Session, region: str) -> set[str]:
    return set(_references(db, region))


def _sizes(db: Session, region: str) -> dict[str, int]:
    return dict(
        db.execute(select(StoreLayer.digest, StoreLayer.size).where(StoreLayer.region == region)).all()
    )


def _users(db: Session, snapshot_id: str) -> list[StoreImage]:
    return list(
        db.execute(
            select(StoreImage).where(
                StoreImage.snapshot_id == snapshot_id, StoreImage.state != "deregistered"
            )
        ).scalars()
    )


def _infos(db: Session, region: str, snapshot_id: str | None = None) -> list[SnapshotInfo]:
    """Snapshots of ``region`` (or just ``snapshot_id``) with their byte accounting, in a fixed number
    of queries whatever the number of snapshots."""
    snaps_query = select(StoreSnapshot).where(StoreSnapshot.region == region).order_by(StoreSnapshot.created_at)
    if snapshot_id is not None:
        snaps_query = snaps_query.where(StoreSnapshot.id == snapshot_id)
    snaps = list(db.execute(snaps_query).scalars())
    if not snaps:
        return []
    layer_query = (
        select(StoreSnapshotLayer.snapshot_id, StoreSnapshotLayer.digest)
        .join(StoreSnapshot, StoreSnapshot.id == StoreSnapshotLayer.snapshot_id)
        .where(StoreSnapshot.region == region)
        .order_by(StoreSnapshotLayer.snapshot_id, StoreSnapshotLayer.position)
    )
    user_query = select(StoreImage.snapshot_id, StoreImage.id).where(StoreImage.state != "deregistered")
    tag_query = select(StoreTag.resource_id, StoreTag.key, StoreTag.value)
    if snapshot_id is not None:
        layer_query = layer_query.where(StoreSnapshotLayer.snapshot_id == snapshot_id)
        user_query = user_query.where(StoreImage.snapshot_id == snapshot_id)
        tag_query = tag_query.where(StoreTag.resource_id == snapshot_id)
    else:
        tag_query = tag_query.where(StoreTag.resource_id.like("snap-%"))
    layers: dict[str, list[str]] = {}
    for snap_id, digest in db.execute(layer_query):
        layers.setdefault(snap_id, []).append(digest)
    users: dict[str, list[str]] = {}
    for snap_id, image_id in db.execute(user_query.order_by(StoreImage.id)):
        users.setdefault(snap_id, []).append(image_id)
    tags: dict[str, dict[str, str]] = {}
    for resource_id, key, value in db.execute(tag_query):
        tags.setdefault(resource_id, {})[key] = value
    refs = _references(db, region)
    sizes = _sizes(db, region)
    result = []
    for snap in snaps:
        digests = layers.get(snap.id, [])
        unique = {d for d in digests if refs.get(d) == {snap.id}}
        using = users.get(snap.id, [])
        result.append(
            SnapshotInfo(
                id=snap.id,
                region=region,
                size=sum(sizes.get(d, 0) for d in set(digests)),
                unique_bytes=sum(sizes.get(d, 0) for d in unique),
                layers=digests,
                image_ids=using,
                orphaned=not using,
                created=snap.created_at,
                parent_id=snap.parent_id,
                description=snap.description,
                tags=tags.get(snap.id, {}),
                owner_id=snap.owner_id,
            )
        )
    return result


def list_snapshots(
    region: str = "local", orphaned: bool = False, caller: Principal | None = None
) -> list[SnapshotInfo]:
    """Snapshots of ``region``; with a ``caller``: those it owns or may create volumes from, their
    tags as it sees them."""
    with session() as db:
        infos = [info for info in _infos(db, region) if info.orphaned or not orphaned]
        if caller is None:
            return infos
        permission = StoreSnapshotPermission
        shared = set(
            db.scalars(
                select(permission.snapshot_id).where(
                    or_(
                        and_(permission.kind == "UserId", permission.value == caller.account),
                        and_(permission.kind == "Group", permission.value == "all"),
                    )
                )
            )
        )
    return [info.seen_by(caller.account) for info in infos if info.owner_id == caller.account or info.id in shared]


def get_snapshot(snapshot_id: str, region: str = "local", caller: Principal | None = None) -> SnapshotInfo:
    with session() as db:
        snapshot_for(db, snapshot_id, region, caller)
        found = _infos(db, region, snapshot_id)
    if not found:
        raise InvalidSnapshotNotFound(snapshot_id)
    return found[0].seen_by(caller and caller.account)


def delete_snapshot_in(
    db: Session, region: str, snapshot_id: str, *, dry_run: bool, ignoring: str | None = None
) -> tuple[int, list[str]]:
    """Delete a snapshot inside an open transaction.

    Returns the bytes freed (or that would be) and the blobs to delete once the transaction commits.
    """
    snap = db.get(StoreSnapshot, snapshot_id)
    if snap is None or snap.region != region:
        raise InvalidSnapshotNotFound(snapshot_id)
    users = [u for u in _users(db, snapshot_id) if u.id != ignoring]
    if users:
        raise InvalidSnapshotInUse(
            snapshot_id,
            users[0].id,
            hint=f"deregister {', '.join(u.id for u in users)} first (or use --delete-snapshots there)",
        )
    refs = _references(db, region)
    sizes = _sizes(db, region)
    digests = {d for d, owners in refs.items() if snapshot_id in owners}
    freed = [d for d in digests if refs[d] == {snapshot_id}]
    total = sum(sizes.get(d, 0) for d in freed)
    if dry_run:
        return total, []
    db.execute(delete(StoreSnapshotLayer).where(StoreSnapshotLayer.snapshot_id == snapshot_id))
    db.execute(delete(StoreTag).where(StoreTag.resource_id == snapshot_id))
    db.delete(snap)
    pins = pinned_digests(region, db) if freed else set()
    doomed = [d for d in freed if d not in pins]  # a pinned blob waits for gc
    for digest in doomed:
        db.execute(delete(StoreLayer).where(StoreLayer.region == region, StoreLayer.digest == digest))
    return total, doomed


def delete_blobs(layout: Layout, digests: list[str]) -> int:
    return sum(layout.blobs.delete(d) for d in digests)
