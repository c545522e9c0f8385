"""The publications table: one row per image and destination, its blocks, its progress."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from kiln.db.base import utcnow
from kiln.db.engine import session
from kiln.db.tables.publishing import Publication, PublishedBlock

UPLOADING, COMPLETING, REGISTERED = "uploading", "completing", "registered"


@dataclass(frozen=True)
class Place:
    """Where an image is published: target, region, account, endpoint ("" for AWS's own)."""

    target: str
    region: str
    account: str
    endpoint: str


@dataclass(frozen=True)
class PublicationInfo:
    id: int
    image_id: str
    state: str
    client_token: str
    snapshot_id: str | None
    parent_snapshot_id: str | None
    remote_image_id: str | None
    volume_size: int
    disk_size: int
    disk_identity: str
    disk_epoch: int
    disk_fs_size: int | None
    disk_base_layers: int | None
    blocks_sent: int
    bytes_sent: int
    started_at: datetime
    finished_at: datetime | None
    source_region: str = ""
    region: str = ""
    account: str = ""
    endpoint: str = ""
    profile: str | None = None


def _info(row: Publication) -> PublicationInfo:
    return PublicationInfo(
        row.id, row.image_id, row.state, row.client_token, row.snapshot_id, row.parent_snapshot_id,
        row.remote_image_id, row.volume_size, row.disk_size, row.disk_identity, row.disk_epoch, row.disk_fs_size,
        row.disk_base_layers, row.blocks_sent,
        row.bytes_sent, row.started_at, row.finished_at, row.source_region, row.region, row.account, row.endpoint,
        row.profile,
    )  # fmt: skip


def find(image_id: str, source_region: str, place: Place) -> PublicationInfo | None:
    with session() as db:
        row = db.scalars(
            select(Publication).where(
                Publication.image_id == image_id, Publication.source_region == source_region,
                Publication.target == place.target, Publication.region == place.region,
                Publication.account == place.account, Publication.endpoint == place.endpoint,
            )
        ).one_or_none()  # fmt: skip
        return _info(row) if row else None


def find_by_id(publication_id: int) -> PublicationInfo:
    with session() as db:
        return _info(db.get_one(Publication, publication_id))


def of_image(image_id: str, source_region: str) -> list[PublicationInfo]:
    """Every publication of a local image, wherever it went."""
    with session() as db:
        rows = db.scalars(select(Publication).where(Publication.image_id == image_id,
                                                    Publication.source_region == source_region)
                          .order_by(Publication.id))
        return [_info(row) for row in rows]


def find_by_snapshot(snapshot_id: str) -> PublicationInfo | None:
    with session() as db:
        row = db.scalars(select(Publication).where(Publication.snapshot_id == snapshot_id)).first()
        return _info(row) if row else None


def create(image_id: str, source_region: str, place: Place, *, parent_snapshot_id: str | None, volume_size: int,
           disk_size: int, disk_identity: str, disk_epoch: int, disk_fs_size: int | None = None,
           disk_base_layers: int | None = None, profile: str | None = None) -> PublicationInfo:
    with session() as db:
        row = Publication(
            image_id=image_id, source_region=source_region, target=place.target, region=place.region,
            account=place.account, endpoint=place.endpoint, state=UPLOADING, client_token=str(uuid.uuid4()),
            parent_snapshot_id=parent_snapshot_id, volume_size=volume_size, disk_size=disk_size,
            disk_identity=disk_identity, disk_epoch=disk_epoch, disk_fs_size=disk_fs_size,
            disk_base_layers=disk_base_layers, profile=profile, blocks_sent=0, blocks_skipped=0, bytes_sent=0,
            started_at=utcnow(),
        )  # fmt: skip
        db.add(row)
        db.flush()
        return _info(row)


def set_snapshot(publication_id: int, snapshot_id: str) -> None:
    with session() as db:
        db.get_one(Publication, publication_id).snapshot_id = snapshot_id


def restart(publication_id: int) -> PublicationInfo:
    """Forget the snapshot (AWS no longer has it pending) and what was written to it."""
    with session() as db:
        db.execute(delete(PublishedBlock).where(PublishedBlock.publication_id == publication_id))
        row = db.get_one(Publication, publication_id)
        row.snapshot_id = None
        row.state = UPLOADING
        row.client_token = str(uuid.uuid4())
        return _info(row)


def blocks(publication_id: int, *, sent_only: bool = False) -> dict[int, bytes]:
    """index -> sha256 of the publication's recorded blocks (all, or those written to its snapshot)."""
    with session() as db:
        query = select(PublishedBlock.block_index, PublishedBlock.sha256).where(
            PublishedBlock.publication_id == publication_id
        )
        if sent_only:
            query = query.where(PublishedBlock.sent.is_(True))
        return {index: bytes(sha) for index, sha in db.execute(query)}


def record_blocks(publication_id: int, entries: list[tuple[int, bytes, bool]]) -> None:
    """Blocks finished (written, or found unchanged): one transaction, counters with them."""
    with session() as db:
        row = db.get_one(Publication, publication_id)
        for index, sha, sent in entries:
            existing = db.get(PublishedBlock, (publication_id, index))
            if existing is None:
                db.add(PublishedBlock(publication_id=publication_id, block_index=index, sha256=sha, sent=sent))
            else:
                existing.sha256, existing.sent = sha, existing.sent or sent
            if sent:
                row.blocks_sent += 1
                row.bytes_sent += 512 * 1024


def set_state(publication_id: int, state: str, *, remote_image_id: str | None = None,
              blocks_skipped: int | None = None) -> PublicationInfo:
    with session() as db:
        row = db.get_one(Publication, publication_id)
        row.state = state
        if remote_image_id is not None:
            row.remote_image_id = remote_image_id
        if blocks_skipped is not None:
            row.blocks_skipped = blocks_skipped
        if state == REGISTERED:
            row.finished_at = utcnow()
        return _info(row)


def forget(publication_id: int) -> None:
    """Drop the publication and its blocks (what it published on AWS was removed)."""
    with session() as db:
        db.execute(delete(PublishedBlock).where(PublishedBlock.publication_id == publication_id))
        db.execute(delete(Publication).where(Publication.id == publication_id))
